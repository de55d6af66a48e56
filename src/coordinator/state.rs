//! The coordinator's state: the pure core plus who is connected, and the execution of the
//! core's outputs as frames queued on connections.
//!
//! Owned by exactly one loop ([`super::server`]); nothing here awaits, so a slow connection
//! can only lose its own frames (its queue is full: it is dropped), never hold up the core.

use std::collections::{BTreeMap, HashMap};

use kv_components::bootstrap::core::{CoordinatorConfig, CoordinatorCore, CoordinatorOutput};
use kv_ports::ids::NodeId;
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

use super::conn::{ConnId, ConnTasks, Event};
use crate::native::{AdminAnswer, ClientFrame, CoordinatorStatus, ServerFrame, StatusReport};

/// The answer to a data command: the coordinator is not a data node.
pub(super) const NO_DATA: &str = "the coordinator keeps no data: send commands to a data node";

/// One accepted connection: its writer's queue and the guard of its tasks.
struct Conn {
    out: Sender<ServerFrame>,
    _tasks: ConnTasks,
}

/// The core and the connections it talks through.
pub(super) struct State {
    core: CoordinatorCore,
    conns: HashMap<ConnId, Conn>,
    /// The connection each checked-in node's session runs on (the newest, after a reconnect).
    sessions: BTreeMap<NodeId, ConnId>,
}

impl State {
    /// A coordinator with no nodes and no connections.
    pub fn new(config: CoordinatorConfig) -> Self {
        State {
            core: CoordinatorCore::new(config),
            conns: HashMap::new(),
            sessions: BTreeMap::new(),
        }
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
    }

    /// One unit of time for the core (suspicions age).
    pub fn tick(&mut self) {
        let outputs = self.core.tick();
        self.execute(outputs);
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
            ClientFrame::DirectiveDone { id, outcome } => {
                tracing::debug!(?id, ?outcome, "directive answered");
            }
            ClientFrame::Suspicion { node, suspected } => {
                tracing::debug!(%node, suspected, "suspicion reported");
            }
            ClientFrame::Admin(request) => {
                let answer = AdminAnswer::Refused(format!("{request:?}: not supported yet"));
                self.push(conn, ServerFrame::Admin(answer));
            }
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
    /// the check-in itself; from now on the node's maps go to this connection.
    fn check_in(&mut self, conn: ConnId, node: NodeInfo, map: Option<SlotMap>) {
        let id = node.id;
        let mut outputs = Vec::new();
        if let Some(map) = map {
            let before = self.core.current().epoch;
            outputs.extend(self.core.report_map(map));
            let after = self.core.current().epoch;
            if after != before {
                tracing::info!(node = %id, epoch = %after, "adopted the map re-reported by a node");
            }
        }
        if let Some(old) = self.sessions.insert(id, conn).filter(|&old| old != conn) {
            tracing::debug!(node = %id, ?old, ?conn, "node checked in again on a new connection");
        }
        tracing::info!(node = %id, client = %node.client, "node checked in");
        outputs.extend(self.core.check_in(node));
        self.execute(outputs);
    }

    /// A closed connection ends the session it carried; the node stays in the map (failures
    /// are the failure detectors' business, not the session's).
    fn closed(&mut self, conn: ConnId) {
        if self.conns.remove(&conn).is_none() {
            return;
        }
        self.sessions.retain(|node, c| {
            let keep = *c != conn;
            if !keep {
                tracing::info!(node = %node, "node's coordinator session closed");
            }
            keep
        });
    }

    fn status(&self) -> CoordinatorStatus {
        let core = self.core.status();
        CoordinatorStatus {
            epoch: core.epoch,
            waiting_for: u32::try_from(core.waiting_for).unwrap_or(u32::MAX),
            connected: self.sessions.keys().copied().collect(),
            suspected: core.suspected,
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
                CoordinatorOutput::Execute(plan) => tracing::warn!(
                    epoch = %plan.target.epoch,
                    actions = plan.actions.len(),
                    "reconfiguration is not supported yet: the plan stays in flight"
                ),
                CoordinatorOutput::Refused(event, error) => {
                    tracing::warn!(?event, %error, "membership event refused");
                }
            }
        }
    }

    fn publish(&mut self, map: SlotMap) {
        let what = if map.epoch == Epoch(1) {
            "cluster formed"
        } else {
            "new map published"
        };
        tracing::info!(
            epoch = %map.epoch,
            groups = map.groups.len(),
            standbys = map.standbys.len(),
            nodes = map.nodes.len(),
            "{what}"
        );
        let conns: Vec<ConnId> = self.sessions.values().copied().collect();
        for conn in conns {
            self.push(conn, ServerFrame::Map(Some(map.clone())));
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
mod tests {
    use super::*;
    use crate::native::ClientFrame;
    use bytes::Bytes;
    use kv_ports::ids::ClientId;
    use kv_ports::kv::{KvCommand, KvOp, RequestId};
    use tokio::sync::mpsc::{self, Receiver};

    fn info(id: u64) -> NodeInfo {
        let addr = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        NodeInfo {
            id: NodeId(id),
            link: addr(id as u16),
            client: addr(1000 + id as u16),
            resp: None,
            http: None,
        }
    }

    fn config() -> CoordinatorConfig {
        CoordinatorConfig {
            min_nodes: 4,
            ..CoordinatorConfig::new(2)
        }
    }

    /// Opens connection `n`, returning its writer's queue (with room for `room` frames).
    fn open(state: &mut State, n: u64, room: usize) -> Receiver<ServerFrame> {
        let (out, queue) = mpsc::channel(room);
        state.connected(ConnId(n), out, ConnTasks::default());
        queue
    }

    fn send(state: &mut State, n: u64, frame: ClientFrame) {
        state.handle(Event::Inbound {
            conn: ConnId(n),
            frame: Box::new(frame),
        });
    }

    /// Node `n` checks in on connection `n`.
    fn check_in(state: &mut State, n: u64, map: Option<SlotMap>) {
        check_in_on(state, n, n, map);
    }

    fn check_in_on(state: &mut State, conn: u64, n: u64, map: Option<SlotMap>) {
        let frame = ClientFrame::CheckIn { node: info(n), map };
        send(state, conn, frame);
    }

    fn drain(queue: &mut Receiver<ServerFrame>) -> Vec<ServerFrame> {
        std::iter::from_fn(|| queue.try_recv().ok()).collect()
    }

    fn maps(queue: &mut Receiver<ServerFrame>) -> Vec<Epoch> {
        drain(queue)
            .into_iter()
            .filter_map(|f| match f {
                ServerFrame::Map(Some(m)) => Some(m.epoch),
                _ => None,
            })
            .collect()
    }

    fn status(state: &mut State, queue: &mut Receiver<ServerFrame>, n: u64) -> CoordinatorStatus {
        send(state, n, ClientFrame::GetStatus);
        match drain(queue).pop() {
            Some(ServerFrame::Status(StatusReport::Coordinator(s))) => s,
            other => panic!("expected a coordinator status, got {other:?}"),
        }
    }

    /// Four check-ins on four connections; returns their queues (already drained).
    fn formed(state: &mut State) -> Vec<Receiver<ServerFrame>> {
        let mut queues: Vec<_> = (1..=4).map(|n| open(state, n, 16)).collect();
        for n in 1..=4 {
            check_in(state, n, None);
        }
        for q in &mut queues {
            assert_eq!(maps(q), [Epoch(1)]);
        }
        queues
    }

    #[test]
    fn formation_is_published_to_every_session() {
        let mut state = State::new(config());
        let mut client = open(&mut state, 99, 16);
        let mut queues: Vec<_> = (1..=4).map(|n| open(&mut state, n, 16)).collect();
        for n in 1..=3 {
            check_in(&mut state, n, None);
        }
        assert!(queues.iter_mut().all(|q| drain(q).is_empty()));
        let s = status(&mut state, &mut client, 99);
        assert_eq!((s.epoch, s.waiting_for), (Epoch(0), 1));
        assert_eq!(s.connected, [NodeId(1), NodeId(2), NodeId(3)]);
        send(&mut state, 99, ClientFrame::GetMap { have: Epoch(0) });
        assert_eq!(drain(&mut client), [ServerFrame::Map(None)]);
        check_in(&mut state, 4, None);
        for q in &mut queues {
            assert_eq!(maps(q), [Epoch(1)]);
        }
        assert!(drain(&mut client).is_empty(), "clients get no pushes");
        let s = status(&mut state, &mut client, 99);
        assert_eq!((s.epoch, s.waiting_for), (Epoch(1), 0));
    }

    #[test]
    fn a_late_node_becomes_a_standby_and_everyone_hears() {
        let mut state = State::new(config());
        let mut queues = formed(&mut state);
        queues.push(open(&mut state, 5, 16));
        check_in(&mut state, 5, None);
        for q in &mut queues[..4] {
            assert_eq!(maps(q), [Epoch(2)]);
        }
        // The newcomer gets the publish and the answer to its check-in.
        assert_eq!(maps(&mut queues[4]), [Epoch(2), Epoch(2)]);
    }

    #[test]
    fn a_restarted_coordinator_adopts_the_reported_map() {
        let mut old = State::new(config());
        let _queues = formed(&mut old);
        let map = old.core.current().clone();
        let mut state = State::new(config());
        let mut queues: Vec<_> = (1..=4).map(|n| open(&mut state, n, 16)).collect();
        for n in 1..=4 {
            check_in(&mut state, n, Some(map.clone()));
        }
        for q in &mut queues {
            assert_eq!(maps(q), [Epoch(1)], "the current map, not a new formation");
        }
        assert_eq!(state.core.current(), &map);
    }

    #[test]
    fn a_closed_session_stays_in_the_map_and_a_reconnect_gets_the_current_map() {
        let mut state = State::new(config());
        let _queues = formed(&mut state);
        state.handle(Event::Closed { conn: ConnId(2) });
        let mut client = open(&mut state, 99, 16);
        let s = status(&mut state, &mut client, 99);
        assert_eq!(s.connected, [NodeId(1), NodeId(3), NodeId(4)]);
        assert!(state.core.current().node(NodeId(2)).is_some());
        let mut again = open(&mut state, 20, 16);
        check_in_on(&mut state, 20, 2, None);
        assert_eq!(maps(&mut again), [Epoch(1)]);
        assert_eq!(state.core.current().epoch, Epoch(1));
    }

    #[test]
    fn requests_are_rejected_and_garbage_gets_an_error() {
        let mut state = State::new(config());
        let mut queue = open(&mut state, 1, 16);
        let id = RequestId {
            client: ClientId::random(),
            seq: 3,
        };
        let op = KvOp::Get {
            key: Bytes::from_static(b"k"),
        };
        send(&mut state, 1, ClientFrame::Request(KvCommand { id, op }));
        let message = NO_DATA.to_owned();
        assert_eq!(drain(&mut queue), [ServerFrame::Rejected { id, message }]);
        let message = "bad".to_owned();
        state.handle(Event::Undecodable {
            conn: ConnId(1),
            message: message.clone(),
        });
        assert_eq!(drain(&mut queue), [ServerFrame::Error { message }]);
    }

    #[test]
    fn a_connection_that_does_not_read_is_dropped() {
        let mut state = State::new(config());
        let _full = open(&mut state, 1, 1);
        send(&mut state, 1, ClientFrame::GetMap { have: Epoch(0) });
        assert_eq!(state.connections(), 1);
        send(&mut state, 1, ClientFrame::GetMap { have: Epoch(0) });
        assert_eq!(state.connections(), 0);
    }
}
