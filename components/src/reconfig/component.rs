//! [`GroupComponent`]: the actor shell of one node's [`GroupNode`] in one replication group,
//! across its configurations. It replaces the three actors of [`crate::group`] (leader
//! election, Sequence Paxos, replica) in a data node.
//!
//! ```text
//!            KvPort (the router's commands; answers as indications)
//!                  │
//!            GroupComponent ── GroupNode (pure: BLE + Sequence Paxos + replica, per config)
//!                  │
//!          NetworkPort (GroupMsg, postcard, Topic::Consensus(group)), TimerPort (ticks)
//! ```
//!
//! The shell feeds the core every input (link messages, link events, ticks, client commands)
//! and calls `drain_into` after each one, so proposals arriving between two drains leave in
//! one batch. Groups share the node's link: each group's traffic travels under its own topic,
//! as the per-group BLE and Paxos components' did.
//!
//! Besides `KvPort`, the node's shell talks to it with four messages: [`ChangeMembers`]
//! (seal a configuration with a StopSign), [`Submit`] (a slot-move command through the log),
//! [`ReadFrozen`] (a page of frozen slots' pairs, read from the replica) and [`QueryGroup`]
//! (where the group stands). The first two answer on a oneshot channel once
//! the outcome is known, possibly many ticks later; the handler never waits. A configuration
//! change is logged and counted; when the core retires, the component tells the node (see
//! [`GroupArgs::stopped`]) and stops itself.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use kameo::actor::{ActorId, ActorRef};
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::component::Start;
use kv_ports::ids::{ClientId, GroupId, NodeId};
use kv_ports::kv::{KvCommand, KvError, KvOp, KvPort, KvReply, KvResult, RequestId, SlotPage};
use kv_ports::membership::{Epoch, Slot};
use kv_ports::network::{NetIndication, NetRequest, NetworkPort, Topic};
use kv_ports::port::{ConnectionId, Ind, ProvidedPort, Req, RequiredPort};
use kv_ports::timer::{TimerPort, Timers};
use tokio::sync::{mpsc, oneshot};

use super::messages::{ConfigEvent, GroupMsg};
use super::node::{ChangeError, GroupNode, GroupNodeConfig, GroupOutput, StageKind};
use crate::replica::{MemberMsg, Ownership};
use crate::sequence_paxos::{PaxosMsg, ProposeError, StopSign};
use crate::wire::{decode, encode};

/// Settings of a [`GroupNode`] run in real time by this shell, for a LAN: with 10 ms ticks,
/// 100 ms election rounds, a snapshot request again after 500 ms without progress (well above
/// one 1 MiB chunk's round trip on a LAN), retirement after 3 s without old traffic.
pub fn shell_config(pid: NodeId) -> GroupNodeConfig {
    GroupNodeConfig {
        round_ticks: 10,
        resend_ticks: 4,
        snapshot_retry_ticks: 50,
        retire_grace_ticks: 300,
        notice_ticks: 10,
        ..GroupNodeConfig::new(pid)
    }
}

/// The wall-clock length of one tick that [`shell_config`]'s timings assume.
pub const TICK: Duration = Duration::from_millis(10);

/// Sent to [`GroupArgs::stopped`] when a group component stops itself (its node retired).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GroupStopped {
    /// The group.
    pub group: GroupId,
    /// Which component it was (a later one of the same group may already run).
    pub actor: ActorId,
    /// The newest configuration it knew sealed (it is in no configuration after it).
    pub sealed: Option<u32>,
}

/// How to start a [`GroupComponent`].
pub struct GroupArgs {
    /// The group.
    pub group: GroupId,
    /// The core, as created (`GroupNode::new`, `joining`, …).
    pub node: GroupNode,
    /// Wall-clock length of one tick.
    pub tick: Duration,
    /// How many ticks a change or a slot-move command may wait for its outcome before it is
    /// answered "not here" (the asker retries, maybe at the leader it is told).
    pub answer_ticks: u64,
    /// Told when the component stops itself (the core retired), so the node detaches it.
    pub stopped: Option<mpsc::UnboundedSender<GroupStopped>>,
}

impl GroupArgs {
    /// A group run with [`TICK`] and answers bounded to 1.5 s.
    pub fn new(group: GroupId, node: GroupNode) -> Self {
        GroupArgs {
            group,
            node,
            tick: TICK,
            answer_ticks: 150,
            stopped: None,
        }
    }
}

/// Seal configuration `from_config` with `stopsign` (see [`GroupNode::change_members`]);
/// answered on `done` once this node holds the state at that StopSign (or runs a later
/// configuration), or at once when refused.
#[derive(Debug)]
pub struct ChangeMembers {
    /// The configuration to seal.
    pub from_config: u32,
    /// The StopSign naming the next configuration.
    pub stopsign: StopSign,
    /// Where the outcome goes.
    pub done: oneshot::Sender<ChangeOutcome>,
}

/// How a [`ChangeMembers`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The StopSign sealing `from_config` is decided and a majority of the next configuration
    /// holds the state at it (or a later configuration runs): the change happened, whoever
    /// proposed it, and the members that leave may go.
    Sealed,
    /// The core refused to start it; `leader` is the leader this node follows, if any.
    Refused {
        /// Why.
        error: ChangeError,
        /// The leader this node follows.
        leader: Option<NodeId>,
    },
    /// Not sealed within the wait: the proposal may be on its way (a follower forwarded it).
    Waiting {
        /// The leader this node follows.
        leader: Option<NodeId>,
    },
}

/// Run a coordinator's command (a slot move: `Freeze` or `Install`) through the group's log;
/// answered on `done` when it is applied here, or refused. Sent under a fresh request id.
#[derive(Debug)]
pub struct Submit {
    /// The operation.
    pub op: KvOp,
    /// Where the result goes.
    pub done: oneshot::Sender<Result<KvResult, KvError>>,
}

/// Read a page of the pairs of `slots` frozen by `epoch` from this member's replica: a read,
/// not through the log (see `Replica::frozen_page`). Answered at once on `done`; `NotLeader`
/// without a hint when no configuration runs here.
#[derive(Debug)]
pub struct ReadFrozen {
    /// The frozen slots.
    pub slots: Vec<Slot>,
    /// The epoch of the freeze.
    pub epoch: Epoch,
    /// The page starts after this key (at the first when `None`).
    pub after: Option<Bytes>,
    /// About how many bytes of pairs the page may hold.
    pub max_bytes: usize,
    /// Where the page goes.
    pub done: oneshot::Sender<Result<SlotPage, KvError>>,
}

/// Asks a [`GroupComponent`] where its group stands.
#[derive(Copy, Clone, Debug)]
pub struct QueryGroup;

/// One node's part in one group, for status pages and tests.
#[derive(Clone, Debug, PartialEq, Eq, kameo::Reply)]
pub struct GroupStatus {
    /// The group.
    pub group: GroupId,
    /// The newest configuration this node runs, joins or belonged to.
    pub config: u32,
    /// Its stage.
    pub stage: StageKind,
    /// Whether it runs a configuration it knows is sealed, waiting for the final state.
    pub catching_up: bool,
    /// The members of the configuration it runs (empty when not active).
    pub members: Vec<NodeId>,
    /// The leader this node follows, if it knows one.
    pub leader: Option<NodeId>,
    /// Whether this node leads, accepting proposals.
    pub leading: bool,
    /// Entries decided in the running configuration's log.
    pub decided: u64,
    /// Entries of that log its replica applied.
    pub applied: u64,
    /// The slots its replica serves and the last move applied per slot, as of `applied`
    /// (`None` when not active): how a restarted coordinator learns which group owns what.
    pub ownership: Option<Ownership>,
}

/// A [`ChangeMembers`] or [`Submit`] waiting for its outcome.
struct Parked<T> {
    deadline: u64,
    done: oneshot::Sender<T>,
}

/// See the module documentation.
pub struct GroupComponent {
    group: GroupId,
    me: NodeId,
    topic: Topic,
    tick: Duration,
    answer_ticks: u64,
    core: GroupNode,
    out: GroupOutput,
    kv: ProvidedPort<KvPort>,
    net: RequiredPort<NetworkPort>,
    timer: RequiredPort<TimerPort>,
    timers: Timers<()>,
    ticks: u64,
    /// Each router client's outstanding command and the connection waiting for it (one per
    /// client: a newer command replaces an older one, as in the replica).
    waiting: HashMap<ClientId, (u64, ConnectionId)>,
    /// Slot-move commands submitted by the node, by request id.
    submitted: HashMap<RequestId, Parked<Result<KvResult, KvError>>>,
    /// Changes waiting to be sealed: `(from_config, next_config, parked)`.
    changes: Vec<(u32, u32, Parked<ChangeOutcome>)>,
    told_leader: Option<NodeId>,
    stopped: Option<mpsc::UnboundedSender<GroupStopped>>,
    actor: ActorId,
}

impl Actor for GroupComponent {
    type Args = GroupArgs;
    type Error = Infallible;

    async fn on_start(args: GroupArgs, me: ActorRef<Self>) -> Result<Self, Infallible> {
        assert!(args.answer_ticks > 0, "answers need a positive wait");
        let pid = args.node.pid();
        tracing::info!(group = %args.group, node = %pid, state = %args.node.describe(),
            "group member starting");
        Ok(GroupComponent {
            group: args.group,
            me: pid,
            topic: Topic::Consensus(args.group),
            tick: args.tick,
            answer_ticks: args.answer_ticks,
            core: args.node,
            out: GroupOutput::default(),
            kv: ProvidedPort::default(),
            net: RequiredPort::default(),
            timer: RequiredPort::default(),
            timers: Timers::default(),
            ticks: 0,
            waiting: HashMap::new(),
            submitted: HashMap::new(),
            changes: Vec::new(),
            told_leader: None,
            stopped: args.stopped,
            actor: me.id(),
        })
    }
}

kv_ports::component!(GroupComponent);

kv_ports::provides!(GroupComponent: KvPort = kv);
kv_ports::requires!(GroupComponent: NetworkPort = net, TimerPort = timer);

impl Message<Start> for GroupComponent {
    type Reply = ();

    async fn handle(&mut self, _: Start, _: &mut Context<Self, ()>) {
        self.net.trigger(NetRequest::Subscribe(self.topic));
        self.timers.periodic(&mut self.timer, self.tick, ());
        self.flush();
    }
}

/// A command from the router.
impl Message<Req<KvPort>> for GroupComponent {
    type Reply = ();

    async fn handle(&mut self, req: Req<KvPort>, ctx: &mut Context<Self, ()>) {
        let cmd = req.event;
        let id = cmd.id;
        if let Some(leader) = self.redirect_to() {
            // Redirect rather than forward: the router learns the leader and sends there
            // directly from now on, saving a hop on every later command.
            let result = Err(KvError::NotLeader { hint: Some(leader) });
            self.kv.answer(req.from, KvReply { id, result });
            return;
        }
        match self.core.client_request(cmd) {
            Some(result) => {
                self.kv.answer(req.from, KvReply { id, result });
            }
            None => {
                self.waiting.insert(id.client, (id.seq, req.from));
            }
        }
        self.drain(ctx);
    }
}

impl Message<Ind<NetworkPort>> for GroupComponent {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<NetworkPort>, ctx: &mut Context<Self, ()>) {
        match ind.event {
            NetIndication::Deliver {
                from,
                topic,
                payload,
            } if topic == self.topic => match decode::<GroupMsg>(&payload) {
                Some(msg) => self.core.handle(from, msg),
                None => return,
            },
            NetIndication::PeerDown(peer) => self.core.connection_lost(peer),
            NetIndication::PeerUp(peer) => self.core.reconnected(peer),
            NetIndication::Deliver { .. } => return,
        }
        self.drain(ctx);
    }
}

impl Message<Ind<TimerPort>> for GroupComponent {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<TimerPort>, ctx: &mut Context<Self, ()>) {
        if self.timers.fired(ind.event).is_some() {
            self.ticks += 1;
            self.core.tick();
            self.expire();
            self.drain(ctx);
        }
    }
}

impl Message<ChangeMembers> for GroupComponent {
    type Reply = ();

    async fn handle(&mut self, msg: ChangeMembers, ctx: &mut Context<Self, ()>) {
        let ChangeMembers {
            from_config,
            stopsign,
            done,
        } = msg;
        let next = stopsign.next_config;
        if self.sealed_past(from_config, next) {
            let _ = done.send(ChangeOutcome::Sealed);
            return;
        }
        match self.core.change_members(from_config, stopsign) {
            // Proposed (or forwarded), or a StopSign is already in the log: wait for the seal.
            Ok(()) | Err(ChangeError::Refused(ProposeError::Sealed { .. })) => {
                tracing::info!(group = %self.group, from_config, next, "membership change asked");
                let deadline = self.ticks + self.answer_ticks;
                self.changes
                    .push((from_config, next, Parked { deadline, done }));
            }
            Err(error) => {
                let leader = self.leader();
                let _ = done.send(ChangeOutcome::Refused { error, leader });
            }
        }
        self.drain(ctx);
    }
}

impl Message<Submit> for GroupComponent {
    type Reply = ();

    async fn handle(&mut self, msg: Submit, ctx: &mut Context<Self, ()>) {
        // A fresh client per command: slot moves bypass the session table, and no two of the
        // node's commands can supersede each other.
        let id = RequestId {
            client: ClientId::random(),
            seq: 1,
        };
        let cmd = KvCommand { id, op: msg.op };
        match self.core.client_request(cmd) {
            Some(result) => {
                let _ = msg.done.send(result);
            }
            None => {
                let deadline = self.ticks + self.answer_ticks;
                let parked = Parked {
                    deadline,
                    done: msg.done,
                };
                self.submitted.insert(id, parked);
            }
        }
        self.drain(ctx);
    }
}

impl Message<ReadFrozen> for GroupComponent {
    type Reply = ();

    async fn handle(&mut self, msg: ReadFrozen, _: &mut Context<Self, ()>) {
        let page = match self.core.member() {
            Some(m) => {
                m.replica()
                    .frozen_page(&msg.slots, msg.epoch, msg.after.as_deref(), msg.max_bytes)
            }
            None => Err(KvError::NotLeader { hint: None }),
        };
        let _ = msg.done.send(page);
    }
}

impl Message<QueryGroup> for GroupComponent {
    type Reply = GroupStatus;

    async fn handle(&mut self, _: QueryGroup, _: &mut Context<Self, GroupStatus>) -> GroupStatus {
        let member = self.core.member();
        GroupStatus {
            group: self.group,
            config: self.core.epoch(),
            stage: self.core.stage(),
            catching_up: self.core.is_catching_up(),
            members: member.map(|m| m.members().to_vec()).unwrap_or_default(),
            leader: self.leader(),
            leading: member.is_some_and(|m| m.sp().is_accepting_leader()),
            decided: member.map_or(0, |m| m.sp().decided_idx()),
            applied: member.map_or(0, |m| m.replica().applied_idx()),
            ownership: member.map(|m| m.replica().ownership().clone()),
        }
    }
}

impl GroupComponent {
    /// The leader this node follows in the configuration it runs.
    fn leader(&self) -> Option<NodeId> {
        self.core.member().and_then(|m| m.sp().leader_hint())
    }

    /// Another member this node knows leads its running, unsealed configuration.
    fn redirect_to(&self) -> Option<NodeId> {
        if self.core.is_catching_up() {
            return None;
        }
        let member = self.core.member()?;
        if member.sp().stopsign_pending().is_some() {
            return None;
        }
        self.leader().filter(|&l| l != self.me)
    }

    /// Whether the change from `from_config` to `next` is established, as far as this node
    /// knows: `from_config` is sealed and a majority of the next configuration holds the state
    /// at its StopSign (this node, if it runs it, and the members heard running it), or a
    /// later configuration was sealed or runs. Only then may the members that leave go: a
    /// change answered as soon as the StopSign is decided let an operator stop a leaving node
    /// (`kv leave` had returned) that was the only one to have applied it, and the group was
    /// stuck without its state.
    fn sealed_past(&self, from_config: u32, next: u32) -> bool {
        let runs = self.core.config();
        if runs.is_some_and(|c| c > next) {
            return true;
        }
        match self.core.sealed() {
            Some(r) if r.config > from_config => true,
            Some(r) if r.config == from_config => {
                let mut holders = r.running().clone();
                if runs.is_some_and(|c| c >= r.stopsign.next_config) {
                    holders.insert(self.me);
                }
                holders.len() >= crate::quorum::majority(r.stopsign.members.len())
            }
            _ => runs.is_some_and(|c| c > from_config || c >= next),
        }
    }

    /// Answers what waited too long.
    fn expire(&mut self) {
        let now = self.ticks;
        let leader = self.leader();
        let expired: Vec<RequestId> = self
            .submitted
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let parked = self.submitted.remove(&id).expect("listed just now");
            let _ = parked.done.send(Err(KvError::NotLeader { hint: leader }));
        }
        let (late, waiting) = std::mem::take(&mut self.changes)
            .into_iter()
            .partition(|(_, _, p)| p.deadline <= now);
        self.changes = waiting;
        for (_, _, parked) in late {
            let _ = parked.done.send(ChangeOutcome::Waiting { leader });
        }
    }

    /// Collects what the core produced after an input and carries it out.
    fn drain(&mut self, ctx: &mut Context<Self, ()>) {
        if self.flush() {
            ctx.stop();
        }
    }

    /// Sends, answers and reports everything the core has ready; true when it retired.
    fn flush(&mut self) -> bool {
        let mut out = std::mem::take(&mut self.out);
        // Bounded: a message to itself (never expected) is handled at most a few rounds.
        for _ in 0..4 {
            self.core.drain_into(&mut out);
            let mut local = Vec::new();
            self.count_batch(&out.messages);
            for (to, msg) in out.messages.drain(..) {
                if to == self.me {
                    local.push(msg);
                    continue;
                }
                let payload = encode(&msg);
                let topic = self.topic;
                self.net.trigger(NetRequest::Send { to, topic, payload });
            }
            if local.is_empty() {
                break;
            }
            for msg in local {
                self.core.handle(self.me, msg);
            }
        }
        self.answer(&mut out);
        if !out.applied.is_empty() {
            metrics::counter!("kv_decided_entries_total").increment(out.applied.len() as u64);
            out.applied.clear();
        }
        let mut retired = false;
        for event in out.events.drain(..) {
            retired |= self.report(event);
        }
        self.out = out;
        self.watch_leader();
        self.settle_changes();
        if retired {
            self.retire();
        }
        retired
    }

    /// Sends each answer to whoever waits for it.
    fn answer(&mut self, out: &mut GroupOutput) {
        for (id, result) in out.replies.drain(..) {
            if let Some(parked) = self.submitted.remove(&id) {
                let _ = parked.done.send(result);
                continue;
            }
            let Some(&(seq, conn)) = self.waiting.get(&id.client) else {
                continue;
            };
            if seq == id.seq {
                self.waiting.remove(&id.client);
                self.kv.answer(conn, KvReply { id, result });
            }
        }
    }

    /// Logs and counts a configuration event; true for `Retired`.
    fn report(&mut self, event: ConfigEvent) -> bool {
        let (group, node) = (self.group, self.me);
        let kind = match &event {
            ConfigEvent::Sealed {
                config, hash, own, ..
            } => {
                tracing::info!(%group, %node, config, hash, own, "configuration sealed");
                "sealed"
            }
            ConfigEvent::Started {
                config, members, ..
            } => {
                tracing::info!(%group, %node, config, ?members, "configuration started");
                "started"
            }
            ConfigEvent::Leaving { config } => {
                tracing::info!(%group, %node, config, "leaving the group");
                "leaving"
            }
            ConfigEvent::CatchingUp { config, next } => {
                tracing::info!(%group, %node, config, next, "catching up to a sealed configuration");
                "catching-up"
            }
            ConfigEvent::Retired => {
                tracing::info!(%group, %node, "retired");
                "retired"
            }
        };
        metrics::counter!("kv_config_events_total", "group" => group.0.to_string(), "event" => kind)
            .increment(1);
        matches!(event, ConfigEvent::Retired)
    }

    /// Counts a change of the leader this node follows (a new configuration elects anew).
    fn watch_leader(&mut self) {
        let leader = self.leader();
        if leader != self.told_leader {
            if leader.is_some() {
                metrics::counter!("kv_leader_changes_total", "group" => self.group.0.to_string())
                    .increment(1);
            }
            self.told_leader = leader;
        }
    }

    /// Answers the changes whose configuration is now sealed here.
    fn settle_changes(&mut self) {
        if self.changes.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.changes);
        for (from, next, parked) in changes {
            if self.sealed_past(from, next) {
                let _ = parked.done.send(ChangeOutcome::Sealed);
            } else {
                self.changes.push((from, next, parked));
            }
        }
    }

    /// The core retired: answer what waits, and tell the node before stopping.
    fn retire(&mut self) {
        let leader = None;
        for (_, parked) in self.submitted.drain() {
            let _ = parked.done.send(Err(KvError::NotLeader { hint: leader }));
        }
        if let Some(stopped) = &self.stopped {
            let notice = GroupStopped {
                group: self.group,
                actor: self.actor,
                sealed: self.core.sealed().map(|r| r.config),
            };
            let _ = stopped.send(notice);
        }
    }

    /// Metrics: the leader's accept batch among one drain's messages, counted once (the same
    /// entries go to every follower); only batches that reach the end of the log count.
    fn count_batch(&self, messages: &[(NodeId, GroupMsg)]) {
        let Some(member) = self.core.member() else {
            return;
        };
        let log_len = member.sp().log_len();
        let batch = messages.iter().find_map(|(_, msg)| match msg {
            GroupMsg::Member {
                msg: MemberMsg::Sp(PaxosMsg::AcceptDecide { start, entries, .. }),
                ..
            } if !entries.is_empty() && start + entries.len() as u64 == log_len => {
                Some(entries.len() as u64)
            }
            _ => None,
        });
        if let Some(entries) = batch {
            metrics::counter!("kv_accept_batches_total").increment(1);
            metrics::counter!("kv_proposals_batched_total").increment(entries);
        }
    }
}
