//! Carrying out a plan: the coordinator's half of the reconfiguration protocol, as a pure
//! state machine (no sockets, no clock: the shell feeds it and sends what it asks for).
//!
//! Inputs: a plan started ([`Executor::start`]), the epoch-1 map formed ([`Executor::form`]),
//! a node's answer to a directive, a node's session up or down, a node declared failed, a
//! map published, and ticks. Outputs: directives to send on a node's session, and "plan done".
//!
//! A plan's actions run in stages, in the order the planner listed them: groups are created,
//! then members change, then slots move, then dissolved groups stop. Within a stage the
//! steps run side by side (they touch different groups or different slots).
//!
//! | step | directives | done when |
//! |---|---|---|
//! | create a group | `StartGroup` (no slots) to every member | a majority started it (the rest go on in the background) |
//! | change members | `JoinGroup` to each new member, `ChangeMembers` to one live old member | the StopSign is decided and every new member answered (or was declared failed) |
//! | move slots `from → to` | per batch: `Freeze` at one member of `from`; while pages remain, `InstallPart` of a page at one member of `to`, then `ReadFrozen` of the next page at one member of `from` (the one that froze first); `Install` of the last page with the sessions at one member of `to` | every batch installed |
//! | dissolve | `StopGroup` to every member, in the background | at once |
//!
//! A batch's pairs can be far larger than a frame, so they travel in pages of about
//! `page_bytes` (the freeze answers the first): each page is staged at the destination
//! through its log before the next is read, and the install that ends the batch checks that
//! the staged pairs add up to the sizes the freeze reported. Every step is idempotent (a
//! re-sent part stages the same pairs again; a re-read page is the same, the frozen pairs
//! never change), so retries and a change of member anywhere in the chain are harmless.
//!
//! Directives to one node ([`Route::Node`]) wait while its session is down and are sent
//! again when it reconnects, or after `retry_ticks` without an answer. Group directives
//! ([`Route::Group`]) go to one member at a time: a `NotLeader` hint naming another live
//! member is followed at once (a few hops at most), anything else (no hint, `Failed`, a
//! timeout, the session dropping) moves on to the next live member, after a short pause so
//! a group in the middle of an election is not hammered. All directives are idempotent, so
//! sending one twice (or to two members) is harmless, and any member's success counts.
//!
//! A formation's `StartGroup`s (each with the group's slots of the epoch-1 map) are background
//! directives too: they are sent before the map is pushed and again whenever the node
//! reconnects, until answered.

mod stages;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use kv_components::bootstrap::planner::Plan;
use kv_ports::ids::NodeId;
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};

use crate::native::{Directive, DirectiveId, DirectiveOutcome};
use stages::{Issue, Running, Target};

/// How patient the executor is, in ticks of the shell's clock.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// An unanswered directive is sent again after this many ticks (to the next member, for a
    /// group directive).
    pub retry_ticks: u64,
    /// After a refusal (`NotLeader` without a usable hint, `Failed`), wait this long before
    /// trying the next member.
    pub pause_ticks: u64,
    /// The most slots one `Freeze`/`Install` pair moves.
    pub batch_slots: usize,
    /// About how many bytes of pairs one page of a move carries (one `ReadFrozen` answer, one
    /// `InstallPart`, the last one in the `Install`); well below the frame limit.
    pub page_bytes: u32,
    /// The most `NotLeader` hints followed in a row before pausing.
    pub max_hops: u32,
}

impl Default for ExecutorConfig {
    /// For the shell's 100 ms tick: retry after 2 s, pause 200 ms, 64 slots a batch, pages
    /// of 1 MiB, 3 hops.
    fn default() -> Self {
        ExecutorConfig {
            retry_ticks: 20,
            pause_ticks: 2,
            batch_slots: 64,
            page_bytes: 1 << 20,
            max_hops: 3,
        }
    }
}

/// Something the shell must do for the executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Write `ServerFrame::Directive { id, peers, directive }` on `to`'s session.
    Send {
        /// The node.
        to: NodeId,
        /// Names the directive in the node's answer.
        id: DirectiveId,
        /// The nodes the directive names, other than `to`.
        peers: Vec<NodeInfo>,
        /// What to do.
        directive: Directive,
    },
    /// Every action of the plan targeting this epoch is done: publish its map.
    PlanDone(Epoch),
}

/// Where a directive goes.
#[derive(Clone, Debug)]
enum Route {
    /// To this node: each member does its own part.
    Node(NodeId),
    /// To any one member of a group, which carries it out through the group's log.
    Group(Rotation),
}

/// The members a group directive may go to, and which one has it now.
#[derive(Clone, Debug)]
struct Rotation {
    members: Vec<NodeId>,
    /// Index in `members` to try next.
    next: usize,
    /// The member it was last sent to.
    at: Option<NodeId>,
    /// Hints followed in a row.
    hops: u32,
}

/// Why a directive is sent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Purpose {
    /// Nothing waits for it (formation, the minority of a new group, stopping a group).
    Background,
    /// Step `n` of the current stage waits for it.
    Step(usize),
}

/// A directive not answered yet.
#[derive(Clone, Debug)]
struct Outstanding {
    directive: Directive,
    route: Route,
    /// The tick it was last sent at; `None` while it waits (no session, a pause).
    sent: Option<u64>,
    /// Not sent before this tick.
    not_before: u64,
    purpose: Purpose,
}

/// The executor; see the module documentation.
#[derive(Debug)]
pub struct Executor {
    config: ExecutorConfig,
    now: u64,
    next_id: u64,
    /// Addresses of every node seen in a map or plan, for `peers`.
    infos: BTreeMap<NodeId, NodeInfo>,
    /// Nodes with a session up.
    up: BTreeSet<NodeId>,
    /// Nodes declared failed: never waited for again.
    failed: BTreeSet<NodeId>,
    outstanding: BTreeMap<DirectiveId, Outstanding>,
    plan: Option<Running>,
}

impl Executor {
    /// An idle executor numbering its directives from `first_id`. Nodes remember which
    /// directive ids they carried out (to answer re-sends without acting twice), so a
    /// restarted coordinator must not reuse its predecessor's ids: the shell starts from a
    /// random point of the 63-bit range.
    pub fn new(config: ExecutorConfig, first_id: u64) -> Self {
        assert!(config.retry_ticks > 0 && config.batch_slots > 0 && config.page_bytes > 0);
        Executor {
            config,
            now: 0,
            next_id: first_id,
            infos: BTreeMap::new(),
            up: BTreeSet::new(),
            failed: BTreeSet::new(),
            outstanding: BTreeMap::new(),
            plan: None,
        }
    }

    /// The epoch of the plan being carried out, if any.
    pub fn running(&self) -> Option<Epoch> {
        self.plan.as_ref().map(|p| p.epoch)
    }

    /// Directives sent and not answered yet (plan and background).
    pub fn unanswered(&self) -> usize {
        self.outstanding.len()
    }

    /// The epoch-1 map was formed: every member of every group starts it with the group's
    /// slots. Send these before pushing the map.
    pub fn form(&mut self, map: &SlotMap) -> Vec<Output> {
        self.learn(map);
        let mut out = Vec::new();
        for g in &map.groups {
            let slots = map.slots_of(g.id);
            for &member in &g.members {
                let directive = Directive::StartGroup {
                    group: g.id,
                    config: g.config,
                    members: g.members.clone(),
                    slots: slots.clone(),
                };
                self.issue(
                    directive,
                    Route::Node(member),
                    Purpose::Background,
                    &mut out,
                );
            }
        }
        out
    }

    /// Starts carrying out `plan`, which leads from `current`.
    pub fn start(&mut self, plan: &Plan, current: &SlotMap) -> Vec<Output> {
        assert!(self.plan.is_none(), "one plan at a time");
        self.learn(current);
        self.learn(&plan.target);
        tracing::info!(epoch = %plan.target.epoch, actions = plan.actions.len(), "executing a plan");
        let (batch, page) = (self.config.batch_slots, self.config.page_bytes);
        self.plan = Some(Running::new(plan, current, batch, page));
        let mut out = Vec::new();
        self.advance(&mut out);
        out
    }

    /// `from` answered directive `id` on its session.
    pub fn answered(
        &mut self,
        from: NodeId,
        id: DirectiveId,
        outcome: DirectiveOutcome,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(o) = self.outstanding.get(&id) else {
            return out; // a duplicate, or an answer to a directive already done
        };
        let success = matches!(
            (&o.directive, &outcome),
            (Directive::Freeze { .. }, DirectiveOutcome::Frozen(_))
                | (Directive::ReadFrozen { .. }, DirectiveOutcome::Page(_))
                | (
                    Directive::StartGroup { .. }
                        | Directive::JoinGroup { .. }
                        | Directive::ChangeMembers { .. }
                        | Directive::InstallPart { .. }
                        | Directive::Install { .. }
                        | Directive::StopGroup { .. },
                    DirectiveOutcome::Done
                )
        );
        match (&o.route, success) {
            (Route::Node(n), _) if *n != from => {}
            (_, true) => self.complete(id, from, outcome, &mut out),
            (Route::Group(r), false) if r.at != Some(from) => {} // a late answer from before
            (_, false) => self.refused(id, from, outcome, &mut out),
        }
        out
    }

    /// `node`'s session is up (checked in): what it has not answered is sent again.
    pub fn session_up(&mut self, node: NodeId) -> Vec<Output> {
        let mut out = Vec::new();
        if self.failed.contains(&node) {
            return out;
        }
        self.up.insert(node);
        let ids: Vec<DirectiveId> = self.outstanding.keys().copied().collect();
        for id in ids {
            let o = self.outstanding.get_mut(&id).expect("listed");
            match &o.route {
                Route::Node(n) if *n == node => {
                    o.not_before = self.now;
                    self.dispatch(id, &mut out);
                }
                Route::Group(_) if o.sent.is_none() => self.dispatch(id, &mut out),
                _ => {}
            }
        }
        out
    }

    /// `node`'s session dropped: group directives it holds move on to another member.
    pub fn session_down(&mut self, node: NodeId) -> Vec<Output> {
        self.up.remove(&node);
        let mut out = Vec::new();
        let ids: Vec<DirectiveId> = self.outstanding.keys().copied().collect();
        for id in ids {
            let o = self.outstanding.get_mut(&id).expect("listed");
            match &mut o.route {
                Route::Node(n) if *n == node => o.sent = None,
                Route::Group(r) if r.at == Some(node) => {
                    r.at = None;
                    r.hops = 0;
                    self.dispatch(id, &mut out);
                }
                _ => {}
            }
        }
        out
    }

    /// `node` was declared failed: nothing waits for it any more.
    pub fn node_failed(&mut self, node: NodeId) -> Vec<Output> {
        self.failed.insert(node);
        self.up.remove(&node);
        let mut out = Vec::new();
        let ids: Vec<DirectiveId> = self.outstanding.keys().copied().collect();
        for id in ids {
            let o = self.outstanding.get_mut(&id).expect("listed");
            match &mut o.route {
                Route::Node(n) if *n == node => {
                    let o = self.outstanding.remove(&id).expect("listed");
                    if let Purpose::Step(step) = o.purpose {
                        self.step_gave_up(step, &o.directive, node);
                    }
                }
                Route::Group(r) => {
                    r.members.retain(|m| *m != node);
                    if r.at == Some(node) {
                        r.at = None;
                        self.dispatch(id, &mut out);
                    }
                }
                Route::Node(_) => {}
            }
        }
        self.advance(&mut out);
        out
    }

    /// A map was published: background directives to nodes it no longer names, or about
    /// groups it no longer has (other than stopping them), are dropped.
    pub fn published(&mut self, map: &SlotMap) {
        self.learn(map);
        self.outstanding.retain(|_, o| {
            let Route::Node(n) = o.route else {
                return true;
            };
            let background = o.purpose == Purpose::Background;
            let gone_node = map.node(n).is_none();
            let gone_group = !matches!(o.directive, Directive::StopGroup { .. })
                && map.group(o.directive.group()).is_none();
            !(background && (gone_node || gone_group))
        });
    }

    /// One tick: unanswered directives are sent again, waiting ones are sent when due.
    pub fn tick(&mut self) -> Vec<Output> {
        self.now += 1;
        let mut out = Vec::new();
        let ids: Vec<DirectiveId> = self.outstanding.keys().copied().collect();
        for id in ids {
            let o = self.outstanding.get_mut(&id).expect("listed");
            match o.sent {
                Some(at) if self.now >= at + self.config.retry_ticks => {
                    if let Route::Group(r) = &mut o.route {
                        tracing::debug!(?id, member = ?r.at, "group directive unanswered; next member");
                        r.at = None;
                        r.hops = 0;
                    }
                    o.not_before = self.now;
                    self.dispatch(id, &mut out);
                }
                None if self.now >= o.not_before => self.dispatch(id, &mut out),
                _ => {}
            }
        }
        out
    }

    /// Remembers the addresses `map` names.
    fn learn(&mut self, map: &SlotMap) {
        for n in &map.nodes {
            self.infos.insert(n.id, n.clone());
        }
    }

    /// Registers a new directive and sends it if it can go now.
    fn issue(
        &mut self,
        directive: Directive,
        route: Route,
        purpose: Purpose,
        out: &mut Vec<Output>,
    ) {
        let id = DirectiveId(self.next_id);
        self.next_id += 1;
        let o = Outstanding {
            directive,
            route,
            sent: None,
            not_before: self.now,
            purpose,
        };
        self.outstanding.insert(id, o);
        self.dispatch(id, out);
    }

    /// Sends directive `id` if its node (or some member) can take it now; else it waits.
    fn dispatch(&mut self, id: DirectiveId, out: &mut Vec<Output>) {
        let now = self.now;
        let Some(o) = self.outstanding.get_mut(&id) else {
            return;
        };
        o.sent = None;
        if now < o.not_before {
            return;
        }
        let live = |n: &NodeId| self.up.contains(n) && !self.failed.contains(n);
        let to = match &mut o.route {
            Route::Node(n) => live(n).then_some(*n),
            Route::Group(r) => {
                let to = r.at.filter(live).or_else(|| r.next_live(live));
                r.at = to;
                to
            }
        };
        let Some(to) = to else {
            return;
        };
        o.sent = Some(now);
        let peers = named(&o.directive)
            .iter()
            .filter(|n| **n != to)
            .filter_map(|n| self.infos.get(n).cloned())
            .collect();
        out.push(Output::Send {
            to,
            id,
            peers,
            directive: o.directive.clone(),
        });
    }

    /// A refusal from the node holding the directive: follow a hint, or pause and move on.
    fn refused(
        &mut self,
        id: DirectiveId,
        from: NodeId,
        outcome: DirectiveOutcome,
        out: &mut Vec<Output>,
    ) {
        let now = self.now;
        let (pause, max_hops, retry) = (
            self.config.pause_ticks,
            self.config.max_hops,
            self.config.retry_ticks,
        );
        let up = &self.up;
        let o = self
            .outstanding
            .get_mut(&id)
            .expect("checked by the caller");
        tracing::debug!(?id, %from, ?outcome, directive = ?o.directive.group(), "directive refused");
        match &mut o.route {
            Route::Node(_) => o.not_before = now + retry,
            Route::Group(r) => {
                let hint = match outcome {
                    DirectiveOutcome::NotLeader { hint: Some(h) } => Some(h),
                    _ => None,
                };
                let usable = hint.filter(|h| *h != from && r.members.contains(h) && up.contains(h));
                match usable {
                    Some(h) if r.hops < max_hops => {
                        r.hops += 1;
                        r.at = Some(h);
                    }
                    _ => {
                        r.hops = 0;
                        r.at = None;
                        o.not_before = now + pause;
                    }
                }
            }
        }
        self.dispatch(id, out);
    }

    /// Directive `id` succeeded (answered by `from`).
    fn complete(
        &mut self,
        id: DirectiveId,
        from: NodeId,
        outcome: DirectiveOutcome,
        out: &mut Vec<Output>,
    ) {
        let o = self.outstanding.remove(&id).expect("checked by the caller");
        let Purpose::Step(step) = o.purpose else {
            return;
        };
        let Some(plan) = self.plan.as_mut() else {
            return;
        };
        let follow_up = plan.progress(step, &o.directive, from, outcome);
        if plan.finished(step) {
            // A step can finish with directives still out (a new group's minority): they
            // go on in the background.
            for o in self.outstanding.values_mut() {
                if o.purpose == Purpose::Step(step) {
                    o.purpose = Purpose::Background;
                }
            }
        }
        if let Some(issue) = follow_up {
            self.issue_for_plan(issue, out);
        }
        self.advance(out);
    }

    /// The plan stops waiting for `node` in `step`.
    fn step_gave_up(&mut self, step: usize, directive: &Directive, node: NodeId) {
        if let Some(plan) = self.plan.as_mut() {
            plan.gave_up(step, directive, node);
        }
    }

    /// Starts the next stage while the current one is finished; reports the plan done at
    /// the end.
    fn advance(&mut self, out: &mut Vec<Output>) {
        loop {
            let Some(plan) = self.plan.as_mut() else {
                return;
            };
            if !plan.stage_finished() {
                return;
            }
            let Some(issued) = plan.next_stage(&self.failed) else {
                let epoch = plan.epoch;
                self.plan = None;
                tracing::info!(%epoch, "plan carried out");
                out.push(Output::PlanDone(epoch));
                return;
            };
            for issue in issued {
                self.issue_for_plan(issue, out);
            }
        }
    }

    /// Registers and sends what a step of the plan asks for.
    fn issue_for_plan(&mut self, issue: Issue, out: &mut Vec<Output>) {
        let route = match issue.to {
            Target::Node(n) => Route::Node(n),
            Target::Any(members) => Route::Group(Rotation {
                members: members
                    .into_iter()
                    .filter(|m| !self.failed.contains(m))
                    .collect(),
                next: 0,
                at: None,
                hops: 0,
            }),
        };
        let purpose = issue.step.map_or(Purpose::Background, Purpose::Step);
        self.issue(issue.directive, route, purpose, out);
    }
}

impl Rotation {
    /// The next member in turn that `live` accepts, advancing the turn.
    fn next_live(&mut self, live: impl Fn(&NodeId) -> bool) -> Option<NodeId> {
        let n = self.members.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if live(&self.members[i]) {
                self.next = i + 1;
                return Some(self.members[i]);
            }
        }
        None
    }
}

/// The nodes a directive names (whose addresses go with it as `peers`).
fn named(directive: &Directive) -> &[NodeId] {
    match directive {
        Directive::StartGroup { members, .. } | Directive::ChangeMembers { members, .. } => members,
        Directive::JoinGroup { sources, .. } => sources,
        Directive::Freeze { .. }
        | Directive::ReadFrozen { .. }
        | Directive::InstallPart { .. }
        | Directive::Install { .. }
        | Directive::StopGroup { .. } => &[],
    }
}
