//! The coordinator's state: the pure core and the plan executor, plus who is connected, and
//! the execution of their outputs as frames queued on connections.
//!
//! Owned by exactly one loop ([`super::server`]); nothing here awaits, so a slow connection
//! can only lose its own frames (its queue is full: it is dropped), never hold up the core.
//!
//! Frames on one connection keep their order, which the protocol relies on: a node's
//! pending directives are queued before the map answering its check-in, and the formation's
//! `StartGroup`s before the epoch-1 map.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use kv_components::bootstrap::core::{CoordinatorConfig, CoordinatorCore, CoordinatorOutput};
use kv_components::bootstrap::planner::Event as PlanEvent;
use kv_ports::ids::NodeId;
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

use super::admin::{describe, Answer, Waiters};
use super::conn::{ConnId, ConnTasks, Event};
use super::executor::{Executor, ExecutorConfig, Output as ExecOutput};
use super::recovery::{Recovery, Step};
use crate::native::{
    AdminAnswer, AdminRequest, ClientFrame, CoordinatorStatus, NodeRef, ServerFrame, StatusReport,
};

/// The answer to a data command: the coordinator is not a data node.
pub(super) const NO_DATA: &str = "the coordinator keeps no data: send commands to a data node";

/// A random start for directive ids, so a restarted coordinator never reuses its
/// predecessor's (nodes answer a directive id they already carried out without acting).
/// 63 bits: counting up from there cannot overflow.
fn first_directive_id() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0 >> 1
}

/// One accepted connection: its writer's queue and the guard of its tasks.
struct Conn {
    out: Sender<ServerFrame>,
    _tasks: ConnTasks,
}

/// The core, the executor and the connections they talk through.
pub(super) struct State {
    core: CoordinatorCore,
    executor: Executor,
    conns: HashMap<ConnId, Conn>,
    /// The connection each checked-in node's session runs on (the newest, after a reconnect).
    sessions: BTreeMap<NodeId, ConnId>,
    /// Operators' requests waiting for a change.
    waiters: Waiters,
    /// The shared port of the data node this coordinator runs inside, if embedded (seed 001):
    /// that node cannot be removed.
    host: Option<SocketAddr>,
    /// Reconciling an adopted map with the groups before planning (a restarted coordinator).
    recovery: Recovery,
}

impl State {
    /// A coordinator with no nodes and no connections.
    pub fn new(config: CoordinatorConfig, executor: ExecutorConfig) -> Self {
        State {
            core: CoordinatorCore::new(config),
            executor: Executor::new(executor, first_directive_id()),
            conns: HashMap::new(),
            sessions: BTreeMap::new(),
            waiters: Waiters::default(),
            host: None,
            recovery: Recovery::default(),
        }
    }

    /// This coordinator runs inside the data node reached at `host`.
    pub fn hosted_by(mut self, host: SocketAddr) -> Self {
        self.host = Some(host);
        self
    }

    /// How many connections are open.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// A connection was accepted; frames for it go to `out`.
    pub fn connected(&mut self, conn: ConnId, out: Sender<ServerFrame>, tasks: ConnTasks) {
        self.conns.insert(conn, Conn { out, _tasks: tasks });
    }

    /// Reacts to what a connection task reported.
    pub fn handle(&mut self, event: Event) {
        match event {
            Event::Inbound { conn, frame } => self.inbound(conn, *frame),
            Event::Undecodable { conn, message } => {
                self.push(conn, ServerFrame::Error { message });
            }
            Event::Closed { conn } => self.closed(conn),
        }
        self.settle_admin();
    }

    /// One unit of time for the core (suspicions age) and the executor (retries).
    pub fn tick(&mut self) {
        let outputs = self.core.tick();
        self.execute(outputs);
        let directives = self.executor.tick();
        self.run(directives);
        let connected: Vec<NodeId> = self.sessions.keys().copied().collect();
        let step = self.recovery.tick(self.core.current(), &connected);
        self.recover(step);
        self.settle_admin();
    }

    fn inbound(&mut self, conn: ConnId, frame: ClientFrame) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        match frame {
            ClientFrame::CheckIn { node, map } => self.check_in(conn, node, map),
            ClientFrame::GetMap { have } => {
                let map = self.core.map_request(have);
                self.push(conn, ServerFrame::Map(map));
            }
            ClientFrame::GetStatus => {
                let status = self.status();
                self.push(conn, ServerFrame::Status(StatusReport::Coordinator(status)));
            }
            ClientFrame::DirectiveDone { id, outcome } => match self.node_of(conn) {
                Some(node) => {
                    tracing::debug!(%node, ?id, ?outcome, "directive answered");
                    let out = self.executor.answered(node, id, outcome);
                    self.run(out);
                }
                None => tracing::debug!(?conn, ?id, "directive answer outside a session"),
            },
            ClientFrame::Suspicion { node, suspected } => match self.node_of(conn) {
                Some(reporter) if suspected => {
                    tracing::info!(%reporter, %node, "node suspected");
                    self.core.suspect(reporter, node);
                }
                Some(reporter) => {
                    tracing::info!(%reporter, %node, "node no longer suspected");
                    self.core.restore(reporter, node);
                }
                None => tracing::debug!(?conn, %node, "suspicion outside a session"),
            },
            ClientFrame::Admin(request) => self.admin(conn, request),
            ClientFrame::Groups(groups) => match self.node_of(conn) {
                Some(node) => {
                    tracing::debug!(%node, groups = groups.len(), "node reported its groups");
                    self.recovery.answered(node, groups);
                }
                None => tracing::debug!(?conn, "group report outside a session"),
            },
            ClientFrame::Request(cmd) => {
                let message = NO_DATA.to_owned();
                self.push(
                    conn,
                    ServerFrame::Rejected {
                        id: cmd.id,
                        message,
                    },
                );
            }
        }
    }

    /// The node's truth first (a restarted coordinator adopts the map the nodes hold), then
    /// the check-in itself; from now on the node's maps and directives go to this
    /// connection, directives it has not answered first.
    fn check_in(&mut self, conn: ConnId, node: NodeInfo, map: Option<SlotMap>) {
        let id = node.id;
        if self.core.is_removed(id) {
            tracing::warn!(node = %id, "a removed node checked in; told it was removed");
            let epoch = self.core.current().epoch;
            self.push(conn, ServerFrame::Removed { node: id, epoch });
            return;
        }
        if self.removed_unseen(id, map.as_ref()) {
            tracing::warn!(node = %id, "a node whose own map is older than its removal checked in");
            let epoch = self.core.current().epoch;
            self.push(conn, ServerFrame::Removed { node: id, epoch });
            return;
        }
        self.recovery.checked_in(&node);
        let mut outputs = Vec::new();
        let mut adopted = false;
        if let Some(map) = map {
            let before = self.core.current().epoch;
            // Nothing is planned from an adopted map before the groups were heard.
            let idle = self.core.in_flight().is_none() && self.executor.running().is_none();
            if idle && map.epoch > before && !self.core.is_held() {
                self.core.hold();
            }
            outputs.extend(self.core.report_map(map));
            let after = self.core.current().epoch;
            adopted = after != before;
            if adopted {
                tracing::info!(node = %id, epoch = %after, "adopted the map re-reported by a node");
            }
        }
        if let Some(old) = self.sessions.insert(id, conn).filter(|&old| old != conn) {
            tracing::debug!(node = %id, ?old, ?conn, "node checked in again on a new connection");
        }
        tracing::info!(node = %id, client = %node.client, "node checked in");
        let pending = self.executor.session_up(id);
        self.run(pending);
        outputs.extend(self.core.check_in(node));
        self.execute(outputs);
        if adopted && !self.recovery.active() {
            tracing::info!("asking the nodes where their groups stand before planning");
            let connected = self.sessions.keys().copied().collect();
            let step = self.recovery.start(connected);
            self.recover(step);
        } else if self.recovery.active() {
            self.recover(Step::Ask(vec![id]));
        } else if self.core.is_held() {
            let outputs = self.core.release();
            self.execute(outputs);
        }
    }

    /// Whether node `id`, holding `held`, was removed by a map this coordinator did not
    /// publish itself (it restarted since): its own map names it, a newer one does not, and
    /// ids are never taken back.
    fn removed_unseen(&self, id: NodeId, held: Option<&SlotMap>) -> bool {
        let current = self.core.current();
        let planned = self
            .core
            .in_flight()
            .is_some_and(|p| p.target.node(id).is_some());
        held.is_some_and(|m| m.node(id).is_some() && m.epoch < current.epoch)
            && current.node(id).is_none()
            && !planned
    }

    /// Carries out what recovery asks for.
    fn recover(&mut self, step: Step) {
        match step {
            Step::Wait => {}
            Step::Ask(nodes) => {
                for node in nodes {
                    if let Some(&conn) = self.sessions.get(&node) {
                        self.push(conn, ServerFrame::QueryGroups);
                    }
                }
            }
            Step::Execute(plan, before) => {
                let out = self.executor.start(&plan, &before);
                self.run(out);
            }
            Step::Finish(map) => {
                if let Some(map) = map {
                    let outputs = self.core.report_map(map.clone());
                    if self.core.current() == &map {
                        tracing::info!(epoch = %map.epoch, "publishing the reconciled map");
                        self.publish(map);
                    } else {
                        tracing::warn!(epoch = %map.epoch, "the reconciled map was not taken");
                    }
                    self.execute(outputs);
                }
                let outputs = self.core.release();
                self.execute(outputs);
            }
        }
    }

    /// A closed connection ends the session it carried; the node stays in the map (failures
    /// are the failure detectors' business, not the session's).
    fn closed(&mut self, conn: ConnId) {
        if self.conns.remove(&conn).is_none() {
            return;
        }
        self.waiters.closed(conn);
        let ended: Vec<NodeId> = self
            .sessions
            .iter()
            .filter(|(_, c)| **c == conn)
            .map(|(n, _)| *n)
            .collect();
        for node in ended {
            tracing::info!(node = %node, "node's coordinator session closed");
            self.sessions.remove(&node);
            self.core.disconnected(node);
            let moved = self.executor.session_down(node);
            self.run(moved);
        }
    }

    /// An operator's request: refused at once, or waiting for the change it asks for.
    fn admin(&mut self, conn: ConnId, request: AdminRequest) {
        tracing::info!(?conn, ?request, "admin request");
        match request {
            AdminRequest::AwaitNode(node) => self.waiters.add_await(conn, node),
            AdminRequest::Remove(node) => {
                if !self.core.current().is_formed() {
                    let reason = "the cluster is not formed yet".to_owned();
                    return self.push(conn, ServerFrame::Admin(AdminAnswer::Refused(reason)));
                }
                let Some(found) = self.find(&node) else {
                    let reason = format!("no node {} in the cluster", describe(&node));
                    return self.push(conn, ServerFrame::Admin(AdminAnswer::Refused(reason)));
                };
                if let Some(host) = self.host.filter(|h| NodeRef::Addr(*h).names(&found)) {
                    let reason = format!(
                        "the node at {host} runs the coordinator (it is the first node of \
                         VIEW) and cannot be removed"
                    );
                    return self.push(conn, ServerFrame::Admin(AdminAnswer::Refused(reason)));
                }
                let id = found.id;
                let first = !self.waiters.removing(id);
                self.waiters.add_remove(conn, id);
                if first {
                    let outputs = self.core.leave(id);
                    self.execute(outputs);
                }
            }
        }
    }

    /// The node `node` names in the published map or the plan under way.
    fn find(&self, node: &NodeRef) -> Option<NodeInfo> {
        let target = self.core.in_flight().map(|p| &p.target.nodes);
        self.core
            .current()
            .nodes
            .iter()
            .chain(target.into_iter().flatten())
            .find(|n| node.names(n))
            .cloned()
    }

    /// Answers `AwaitNode` requests the cluster now satisfies.
    fn settle_admin(&mut self) {
        if self.waiters.len() == 0 {
            return;
        }
        let idle = self.core.in_flight().is_none();
        let answers = self.waiters.settled(self.core.current(), idle);
        self.answer(answers);
    }

    fn answer(&mut self, answers: Vec<Answer>) {
        for (conn, answer) in answers {
            self.push(conn, ServerFrame::Admin(answer));
        }
    }

    fn node_of(&self, conn: ConnId) -> Option<NodeId> {
        self.sessions
            .iter()
            .find(|(_, c)| **c == conn)
            .map(|(n, _)| *n)
    }

    fn status(&self) -> CoordinatorStatus {
        let core = self.core.status();
        CoordinatorStatus {
            epoch: core.epoch,
            waiting_for: u32::try_from(core.waiting_for).unwrap_or(u32::MAX),
            connected: self.sessions.keys().copied().collect(),
            suspected: core.suspected,
            in_flight: core.in_flight.or(self.recovery.running()),
            queued: u32::try_from(core.queued).unwrap_or(u32::MAX),
            under_replicated: core.under_replicated,
        }
    }

    fn execute(&mut self, outputs: Vec<CoordinatorOutput>) {
        for output in outputs {
            match output {
                CoordinatorOutput::Send(node, map) => match self.sessions.get(&node) {
                    Some(&conn) => self.push(conn, ServerFrame::Map(Some(map))),
                    None => tracing::debug!(node = %node, "no session to send the map to"),
                },
                CoordinatorOutput::Publish(map) => self.publish(map),
                CoordinatorOutput::Execute(plan) => {
                    let out = self.executor.start(&plan, self.core.current());
                    self.run(out);
                }
                CoordinatorOutput::Refused(event, error) => {
                    tracing::warn!(?event, %error, "membership event refused");
                    if let PlanEvent::Left(node) = event {
                        let answers = self.waiters.refused(node, &error.to_string());
                        self.answer(answers);
                    }
                }
                CoordinatorOutput::Failed(node) => {
                    tracing::warn!(%node, "node declared failed");
                    let out = self.executor.node_failed(node);
                    self.run(out);
                }
            }
        }
    }

    /// Carries out what the executor asks for.
    fn run(&mut self, outputs: Vec<ExecOutput>) {
        for output in outputs {
            match output {
                ExecOutput::Send {
                    to,
                    id,
                    peers,
                    directive,
                } => match self.sessions.get(&to) {
                    Some(&conn) => {
                        tracing::debug!(node = %to, ?id, ?directive, "directive sent");
                        let frame = ServerFrame::Directive {
                            id,
                            peers,
                            directive,
                        };
                        self.push(conn, frame);
                    }
                    None => tracing::debug!(node = %to, ?id, "no session for a directive"),
                },
                ExecOutput::PlanDone(epoch) if self.recovery.runs(epoch) => {
                    let step = self.recovery.plan_done(epoch, self.core.current());
                    self.recover(step);
                }
                ExecOutput::PlanDone(epoch) => {
                    let outputs = self.core.plan_done(epoch);
                    self.execute(outputs);
                }
            }
        }
    }

    /// Pushes `map` to every session; the formation's `StartGroup`s go first.
    fn publish(&mut self, map: SlotMap) {
        let formed = map.epoch == Epoch(1);
        tracing::info!(
            epoch = %map.epoch,
            groups = map.groups.len(),
            standbys = map.standbys.len(),
            nodes = map.nodes.len(),
            "{}",
            if formed { "cluster formed" } else { "new map published" }
        );
        if formed {
            let starts = self.executor.form(&map);
            self.run(starts);
        }
        self.executor.published(&map);
        let conns: Vec<ConnId> = self.sessions.values().copied().collect();
        for conn in conns {
            self.push(conn, ServerFrame::Map(Some(map.clone())));
        }
        self.notify_removed(map.epoch);
        let answers = self.waiters.published(&map);
        self.answer(answers);
    }

    /// Tells every node still in session that the map of `epoch` removed that it is out of
    /// the cluster: it stops instead of lingering (and redialling) as a stranger.
    fn notify_removed(&mut self, epoch: Epoch) {
        let removed: Vec<(NodeId, ConnId)> = self
            .sessions
            .iter()
            .filter(|(node, _)| self.core.is_removed(**node))
            .map(|(node, conn)| (*node, *conn))
            .collect();
        for (node, conn) in removed {
            tracing::info!(%node, %epoch, "telling a removed node it is out of the cluster");
            self.push(conn, ServerFrame::Removed { node, epoch });
        }
    }

    /// Queues `frame` for `conn`. A connection whose queue is full is not reading: it is
    /// dropped (its node will reconnect and check in again) rather than waited for.
    fn push(&mut self, conn: ConnId, frame: ServerFrame) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        match c.out.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(?conn, "coordinator: connection not reading, dropping it");
                self.closed(conn);
            }
            Err(TrySendError::Closed(_)) => self.closed(conn),
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
