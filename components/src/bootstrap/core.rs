//! The bootstrap coordinator as a pure state machine.
//!
//! Inputs: check-ins (a node's session is up), closed sessions, leave requests, suspicions
//! and restores from the nodes' failure detectors, ticks, map requests, and "plan done" from
//! the shell. Outputs: maps to send or publish, plans to execute, nodes declared failed.
//! Before formation it collects check-ins until `min_nodes` have arrived, then forms the
//! epoch-1 map. After formation every membership event becomes a [`Plan`]; one plan runs at a
//! time (the shell drives its actions through the groups' logs and reports back), later events
//! queue behind it. A plan that only touches standbys needs no group work and is published at
//! once.
//!
//! Failures: see [`super::suspicion`] for when a node is declared failed. A failed member is
//! replaced through its group's log, which needs a majority of the group's configuration
//! alive; when too few live members are left (any failure in a group of two, a second one in
//! a group of three) the failure is refused with [`PlanError::NoQuorum`] and the group is
//! reported under-replicated: nothing can reconfigure it without its lost members.
//!
//! A node removed from the map (it left or failed) is never taken back under the same id: its
//! groups retired it and it may hold stale state; restarted, it gets a fresh id.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};

use super::actions::needs_groups;
use super::formation::{form, in_given_order};
use super::planner::{plan, Event, Plan, PlanError};
use super::suspicion::Suspicions;
use crate::quorum::majority;

/// How the coordinator behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Members per group (δ).
    pub replication: u32,
    /// Check-ins to wait for before forming; at least δ.
    pub min_nodes: usize,
    /// Ticks a majority must keep suspecting a node before it is declared failed.
    pub grace_ticks: u32,
    /// The order groups are formed in: the nodes waiting at formation are sorted by the
    /// position of their address in this list (seed 001's `VIEW`), nodes not in it last.
    /// Empty: check-in order.
    pub formation_order: Vec<SocketAddr>,
}

impl CoordinatorConfig {
    /// δ as given, waiting for 2·δ nodes, thirty ticks of grace (3 s at the shell's 100 ms),
    /// groups formed in check-in order.
    pub fn new(replication: u32) -> Self {
        CoordinatorConfig {
            replication,
            min_nodes: 2 * replication as usize,
            grace_ticks: 30,
            formation_order: Vec::new(),
        }
    }
}

/// Something the shell must do for the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorOutput {
    /// Send this map to one node (the answer to its check-in).
    Send(NodeId, SlotMap),
    /// Send this map to every node it names and to every client that asked.
    Publish(SlotMap),
    /// Drive these actions, then call [`CoordinatorCore::plan_done`] with the target epoch.
    Execute(Plan),
    /// An event could not be planned; the map stays as it is.
    Refused(Event, PlanError),
    /// A majority suspected this node for the whole grace period: it is failed. Its
    /// replacement is planned like any event; the shell stops waiting for its answers now.
    Failed(NodeId),
}

/// What `status` shows about the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorStatus {
    /// The published epoch (0 before formation).
    pub epoch: Epoch,
    /// Check-ins still needed before formation (0 once formed).
    pub waiting_for: usize,
    /// Nodes suspected now, not yet declared failed.
    pub suspected: Vec<NodeId>,
    /// The epoch of the plan being executed, if any.
    pub in_flight: Option<Epoch>,
    /// Events waiting behind it.
    pub queued: usize,
    /// Groups below δ members, or that lost a member they cannot replace (no majority left).
    pub under_replicated: Vec<GroupId>,
}

/// The coordinator's state.
#[derive(Debug)]
pub struct CoordinatorCore {
    config: CoordinatorConfig,
    waiting: Vec<NodeInfo>,
    current: SlotMap,
    in_flight: Option<Plan>,
    queue: VecDeque<Event>,
    suspicions: Suspicions,
    /// Nodes whose session is up (they vote on suspicions).
    connected: BTreeSet<NodeId>,
    /// Nodes published out of the map; refused if they check in again.
    removed: BTreeSet<NodeId>,
    /// Failed nodes whose group could not replace them ([`PlanError::NoQuorum`]).
    unreplaced: BTreeMap<NodeId, GroupId>,
    /// Events queue but nothing is planned (see [`CoordinatorCore::hold`]).
    held: bool,
}

impl CoordinatorCore {
    /// A coordinator with no nodes yet.
    pub fn new(config: CoordinatorConfig) -> Self {
        assert!(config.replication >= 1, "groups need at least one member");
        let min_nodes = config.min_nodes.max(config.replication as usize);
        CoordinatorCore {
            config: CoordinatorConfig {
                min_nodes,
                ..config
            },
            waiting: Vec::new(),
            current: SlotMap::empty(config.replication),
            in_flight: None,
            queue: VecDeque::new(),
            suspicions: Suspicions::new(config.grace_ticks),
            connected: BTreeSet::new(),
            removed: BTreeSet::new(),
            unreplaced: BTreeMap::new(),
            held: false,
        }
    }

    /// Plan nothing until [`CoordinatorCore::release`]: events queue meanwhile. A restarted
    /// coordinator holds while it reconciles the map it adopted with the groups' own state
    /// (a plan must start from the truth, or it may reuse an epoch a group already saw).
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Whether planning is held.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Plans again: the events queued while held are planned now.
    pub fn release(&mut self) -> Vec<CoordinatorOutput> {
        self.held = false;
        if self.in_flight.is_some() {
            return Vec::new();
        }
        self.next_plan()
    }

    /// Whether `node` was published out of the map (it left or failed).
    pub fn is_removed(&self, node: NodeId) -> bool {
        self.removed.contains(&node)
    }

    /// The plan being executed, if any.
    pub fn in_flight(&self) -> Option<&Plan> {
        self.in_flight.as_ref()
    }

    /// The published map (epoch 0 and no groups before formation).
    pub fn current(&self) -> &SlotMap {
        &self.current
    }

    /// A node checks in (its session is up). A node already known (reconnecting, or
    /// re-reporting to a restarted coordinator) just gets the current map; a removed one is
    /// refused with [`PlanError::Removed`].
    pub fn check_in(&mut self, info: NodeInfo) -> Vec<CoordinatorOutput> {
        let id = info.id;
        if self.removed.contains(&id) {
            return vec![CoordinatorOutput::Refused(
                Event::Joined(info),
                PlanError::Removed(id),
            )];
        }
        self.connected.insert(id);
        if self.knows(id) {
            return self.welcome(id);
        }
        if !self.current.is_formed() {
            return self.wait_or_form(info);
        }
        let mut out = self.enqueue(Event::Joined(info));
        out.extend(self.welcome(id));
        out
    }

    /// A node re-reports the map it holds (to a coordinator that restarted and lost its own).
    /// A valid map newer than the current one is adopted, without a new publish: the nodes
    /// hold it already. Nodes that checked in meanwhile but are not in it join as usual.
    pub fn report_map(&mut self, map: SlotMap) -> Vec<CoordinatorOutput> {
        let usable = map.is_formed() && map.validate().is_ok();
        if !usable || map.epoch <= self.current.epoch || self.in_flight.is_some() {
            return Vec::new();
        }
        self.current = map;
        let mut waiting = std::mem::take(&mut self.waiting);
        waiting.retain(|n| self.current.node(n.id).is_none());
        waiting
            .into_iter()
            .flat_map(|n| self.enqueue(Event::Joined(n)))
            .collect()
    }

    /// A node's session closed. It stays in the map (sessions are not failure detectors),
    /// but it no longer votes on suspicions.
    pub fn disconnected(&mut self, node: NodeId) {
        self.connected.remove(&node);
    }

    /// A node asks to leave gracefully.
    pub fn leave(&mut self, node: NodeId) -> Vec<CoordinatorOutput> {
        self.suspicions.forget(node);
        if !self.current.is_formed() {
            self.waiting.retain(|n| n.id != node);
            return Vec::new();
        }
        self.enqueue(Event::Left(node))
    }

    /// `reporter`'s failure detector suspects `node`. Both must be in the map or in the plan
    /// being executed (a new member that dies while joining must be declared failed too).
    pub fn suspect(&mut self, reporter: NodeId, node: NodeId) {
        if self.in_cluster(reporter) && self.in_cluster(node) {
            self.suspicions.suspect(reporter, node);
        }
    }

    /// `reporter`'s failure detector no longer suspects `node`.
    pub fn restore(&mut self, reporter: NodeId, node: NodeId) {
        self.suspicions.restore(reporter, node);
    }

    /// One unit of time: suspicions age, and those past the grace period become failures.
    pub fn tick(&mut self) -> Vec<CoordinatorOutput> {
        let voters = self.voters();
        let failed = self.suspicions.tick(&voters);
        // All of this tick's failures are queued before any is planned, so each one's
        // quorum check sees the others.
        let mut out: Vec<CoordinatorOutput> = failed
            .iter()
            .map(|n| CoordinatorOutput::Failed(*n))
            .collect();
        if failed.is_empty() {
            return out;
        }
        self.queue.extend(failed.into_iter().map(Event::Failed));
        if self.in_flight.is_none() && !self.held {
            out.extend(self.next_plan());
        }
        out
    }

    /// A node or client holding `have` asks for the map; `None` if it is already up to date.
    pub fn map_request(&self, have: Epoch) -> Option<SlotMap> {
        (self.current.epoch > have).then(|| self.current.clone())
    }

    /// The shell finished the plan targeting `epoch`: publish it and start the next one.
    /// A report for any other epoch is stale and ignored.
    pub fn plan_done(&mut self, epoch: Epoch) -> Vec<CoordinatorOutput> {
        match self.in_flight.take() {
            Some(p) if p.target.epoch == epoch => {
                let mut out = self.install(p.target);
                out.extend(self.next_plan());
                out
            }
            other => {
                self.in_flight = other;
                Vec::new()
            }
        }
    }

    /// What `status` shows.
    pub fn status(&self) -> CoordinatorStatus {
        let needed = self.config.min_nodes.saturating_sub(self.waiting.len());
        CoordinatorStatus {
            epoch: self.current.epoch,
            waiting_for: if self.current.is_formed() { 0 } else { needed },
            suspected: self.suspicions.suspected(),
            in_flight: self.in_flight.as_ref().map(|p| p.target.epoch),
            queued: self.queue.len(),
            under_replicated: self.under_replicated(),
        }
    }

    fn under_replicated(&self) -> Vec<GroupId> {
        let mut groups: BTreeSet<GroupId> = self.current.under_replicated().into_iter().collect();
        groups.extend(self.unreplaced.values().copied());
        groups.into_iter().collect()
    }

    /// Named by the published map or by the plan under way.
    fn in_cluster(&self, id: NodeId) -> bool {
        self.current.node(id).is_some()
            || self
                .in_flight
                .as_ref()
                .is_some_and(|p| p.target.node(id).is_some())
    }

    /// The nodes whose word counts on suspicions: in the cluster, with a session up.
    fn voters(&self) -> BTreeSet<NodeId> {
        self.connected
            .iter()
            .copied()
            .filter(|n| self.in_cluster(*n))
            .collect()
    }

    /// Whether `failed`'s group keeps a live majority of its configuration without it, so
    /// the StopSign replacing it can be decided. Nodes failing now, failed but not yet
    /// replaced, or unreplaceable count as dead.
    fn can_replace(&self, failed: NodeId) -> Result<(), PlanError> {
        let Some(group) = self.current.group_of_node(failed) else {
            return Ok(());
        };
        let members = self.current.members_of(group);
        let mut down = self.suspicions.failing(&self.voters());
        down.extend(self.unreplaced.keys().copied());
        down.extend(self.queue.iter().filter_map(|e| match e {
            Event::Failed(n) => Some(*n),
            _ => None,
        }));
        let live = members
            .iter()
            .filter(|m| **m != failed && !down.contains(m))
            .count();
        if live >= majority(members.len()) {
            Ok(())
        } else {
            Err(PlanError::NoQuorum(group))
        }
    }

    fn knows(&self, id: NodeId) -> bool {
        self.current.node(id).is_some()
            || self.waiting.iter().any(|n| n.id == id)
            || self
                .queue
                .iter()
                .any(|e| matches!(e, Event::Joined(n) if n.id == id))
            || self
                .in_flight
                .as_ref()
                .is_some_and(|p| p.target.node(id).is_some())
    }

    fn welcome(&self, id: NodeId) -> Vec<CoordinatorOutput> {
        vec![CoordinatorOutput::Send(id, self.current.clone())]
    }

    fn wait_or_form(&mut self, info: NodeInfo) -> Vec<CoordinatorOutput> {
        self.waiting.push(info);
        if self.waiting.len() < self.config.min_nodes {
            return Vec::new();
        }
        let mut nodes = std::mem::take(&mut self.waiting);
        in_given_order(&mut nodes, &self.config.formation_order);
        let map = form(&nodes, self.config.replication).expect("min_nodes ≥ δ, ids unique");
        self.install(map)
    }

    fn install(&mut self, map: SlotMap) -> Vec<CoordinatorOutput> {
        assert!(map.epoch > self.current.epoch, "epochs only grow");
        debug_assert_eq!(map.validate(), Ok(()));
        for gone in self
            .current
            .nodes
            .iter()
            .filter(|n| map.node(n.id).is_none())
        {
            self.removed.insert(gone.id);
            self.suspicions.forget(gone.id);
            self.unreplaced.remove(&gone.id);
        }
        self.current = map;
        vec![CoordinatorOutput::Publish(self.current.clone())]
    }

    fn enqueue(&mut self, event: Event) -> Vec<CoordinatorOutput> {
        self.queue.push_back(event);
        if self.in_flight.is_some() || self.held {
            return Vec::new();
        }
        self.next_plan()
    }

    /// Plan queued events until one needs the groups to work (or the queue is empty).
    fn next_plan(&mut self) -> Vec<CoordinatorOutput> {
        let mut out = Vec::new();
        while let Some(event) = self.queue.pop_front() {
            let planned = match &event {
                Event::Failed(n) => self
                    .can_replace(*n)
                    .and_then(|()| plan(&self.current, &event)),
                _ => plan(&self.current, &event),
            };
            match planned {
                Err(e) => {
                    if let (Event::Failed(n), PlanError::NoQuorum(g)) = (&event, &e) {
                        self.unreplaced.insert(*n, *g);
                    }
                    out.push(CoordinatorOutput::Refused(event, e));
                }
                Ok(p) if p.actions.iter().any(needs_groups) => {
                    self.in_flight = Some(p.clone());
                    out.push(CoordinatorOutput::Execute(p));
                    break;
                }
                Ok(p) => out.extend(self.install(p.target)),
            }
        }
        out
    }
}
