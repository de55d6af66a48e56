//! The data node's session to the coordinator.
//!
//! The node checks in, then listens: every map the coordinator pushes that is newer than the
//! node's replaces the value of the node's `watch` channel, which routing and the overlay
//! read. When the connection drops the node reconnects (forever, with capped exponential
//! backoff) and checks in again with the map it holds, which is how a restarted coordinator
//! learns the cluster's current map back without forming a new one.
//!
//! The session also carries the reconfiguration traffic (see [`SessionAgent`]): directives
//! the coordinator pushes are handed to the node's agent, which carries each out in a task of
//! its own and queues the answer; answers and suspicion reports leave on the session's
//! outbound queue, which outlives connections (what is queued while the coordinator is away
//! goes out after the next check-in). After every check-in the node re-reports its
//! suspicions, so a restarted coordinator learns them again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use kv_components::task::TaskGuard;
use kv_ports::ids::NodeId;
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, watch};
use tokio_util::codec::Framed;

use super::backoff::Backoff;
use super::dial::CoordinatorAddr;
use crate::native::frame::FrameError;
use crate::native::{
    ClientCodec, ClientFrame, Directive, DirectiveId, DirectiveOutcome, GroupReport, ServerFrame,
};

/// The first wait before reconnecting: short, so a coordinator restart is noticed quickly.
pub const FIRST_RETRY: Duration = Duration::from_millis(50);

/// The longest wait between attempts: how stale a node may stay once the coordinator is back.
pub const MAX_RETRY: Duration = Duration::from_secs(2);

/// How one session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The coordinator could not be reached.
    #[error("cannot connect to the coordinator: {0}")]
    Connect(std::io::Error),
    /// Reading or writing a frame failed.
    #[error("coordinator connection failed: {0}")]
    Frame(#[from] FrameError),
    /// The coordinator refused the session (e.g. the address is a data node's).
    #[error("the coordinator refused the session: {0}")]
    Refused(String),
    /// The coordinator closed the connection.
    #[error("the coordinator closed the connection")]
    Closed,
    /// The node is no longer in the cluster (the map of this epoch removed it).
    #[error("removed from the cluster (epoch {0})")]
    Removed(Epoch),
}

/// The coordinator took the node out of the cluster: its session ended for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removal {
    /// The coordinator that said so.
    pub coordinator: CoordinatorAddr,
    /// The epoch of the map without the node (or the coordinator's epoch when it said so).
    pub epoch: Epoch,
}

/// The node's side of the reconfiguration traffic on its session.
pub trait SessionAgent: Send + Sync + 'static {
    /// Carry out `directive` (after adding `peers` to the node's link), answering on the
    /// session's outbound queue. Must not block: the session's reading loop calls it.
    fn directive(&self, id: DirectiveId, peers: Vec<NodeInfo>, directive: Directive);

    /// The nodes the node's failure detector suspects now (re-reported after a check-in).
    fn suspected(&self) -> Vec<NodeId>;
}

/// Where the node's group members stand, for a coordinator that asks
/// ([`ServerFrame::QueryGroups`]).
pub trait GroupReporter: Send + Sync + 'static {
    /// Every group member the node runs now.
    fn report(&self) -> BoxFuture<'static, Vec<GroupReport>>;
}

/// What a node's session carries besides maps.
pub struct NodeSession {
    /// Carries out directives and knows the suspicions.
    pub agent: Arc<dyn SessionAgent>,
    /// Frames to send the coordinator (directive answers, suspicion reports), queued by the
    /// agent and the node's membership; kept across connections.
    pub outbound: UnboundedReceiver<ClientFrame>,
    /// Told once if the node is removed from the cluster (the session then ends).
    pub removed: Option<oneshot::Sender<Removal>>,
    /// Answers the coordinator's group queries (`None`: the node runs no groups).
    pub reporter: Option<Arc<dyn GroupReporter>>,
}

/// The agent of a session that runs no groups: every directive is answered `Failed`.
struct NoGroups(UnboundedSender<ClientFrame>);

impl SessionAgent for NoGroups {
    fn directive(&self, id: DirectiveId, _: Vec<NodeInfo>, directive: Directive) {
        tracing::warn!(?id, ?directive, "directive to a session without groups");
        let outcome = DirectiveOutcome::Failed("this session runs no groups".into());
        let _ = self.0.send(ClientFrame::DirectiveDone { id, outcome });
    }

    fn suspected(&self) -> Vec<NodeId> {
        Vec::new()
    }
}

/// Starts the session of node `me` to the coordinator at `coordinator`, publishing every newer
/// map into `maps` (whose initial value the caller sets, normally `SlotMap::empty(δ)`). The
/// session runs until the returned guard is dropped. It runs no groups: directives are
/// answered `Failed` (see [`start_node`] for a data node's session).
pub fn start(
    coordinator: impl Into<CoordinatorAddr>,
    me: NodeInfo,
    maps: watch::Sender<SlotMap>,
) -> TaskGuard {
    let (tx, outbound) = mpsc::unbounded_channel();
    let node = NodeSession {
        agent: Arc::new(NoGroups(tx)),
        outbound,
        removed: None,
        reporter: None,
    };
    start_node(coordinator, me, maps, node)
}

/// [`start`], with directives carried out and suspicions reported by `node`. A coordinator
/// embedded in a node ([`CoordinatorAddr::shared`]) is dialled with its preamble.
pub fn start_node(
    coordinator: impl Into<CoordinatorAddr>,
    me: NodeInfo,
    maps: watch::Sender<SlotMap>,
    node: NodeSession,
) -> TaskGuard {
    TaskGuard::spawn(run(coordinator.into(), me, maps, node))
}

async fn run(
    coordinator: CoordinatorAddr,
    me: NodeInfo,
    maps: watch::Sender<SlotMap>,
    mut node: NodeSession,
) {
    let mut backoff = Backoff::new(FIRST_RETRY, MAX_RETRY);
    // Whether the previous attempt could not check in: one outage is logged once, its
    // retries at debug level.
    let mut unreachable = false;
    // The nodes last reported suspected (reconciled after every check-in).
    let mut reported = BTreeSet::new();
    // Answers to group queries, computed off the reading loop.
    let (answers, mut answered) = mpsc::unbounded_channel();
    loop {
        let mut progress = Progress::default();
        let mut conn = Conn {
            maps: &maps,
            node: &mut node,
            reported: &mut reported,
            progress: &mut progress,
            answers: &answers,
            answered: &mut answered,
        };
        let error = conn.session(coordinator, &me).await;
        if let SessionError::Removed(epoch) = error {
            tracing::warn!(%coordinator, node = %me.id, %epoch,
                "removed from the cluster by the coordinator at {coordinator}; session ended");
            if let Some(tell) = node.removed.take() {
                let _ = tell.send(Removal { coordinator, epoch });
            }
            return;
        }
        if progress.heard {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        if progress.checked_in {
            tracing::warn!(%coordinator, %error, ?delay, "coordinator session ended; reconnecting");
        } else if unreachable {
            tracing::debug!(%coordinator, %error, ?delay, "coordinator still unreachable");
        } else {
            tracing::warn!(%coordinator, %error, ?delay, "cannot reach the coordinator; retrying");
        }
        unreachable = !progress.checked_in;
        tokio::time::sleep(delay).await;
    }
}

/// How far one connection got.
#[derive(Default)]
struct Progress {
    /// The check-in was sent.
    checked_in: bool,
    /// The coordinator sent a map: this was a working session, so the backoff starts over
    /// (a peer that accepts and hangs up at once does not reset it).
    heard: bool,
}

/// One connection's view of the session's state.
struct Conn<'a> {
    maps: &'a watch::Sender<SlotMap>,
    node: &'a mut NodeSession,
    reported: &'a mut BTreeSet<NodeId>,
    progress: &'a mut Progress,
    answers: &'a UnboundedSender<ClientFrame>,
    answered: &'a mut UnboundedReceiver<ClientFrame>,
}

type Framing = Framed<TcpStream, ClientCodec>;

impl Conn<'_> {
    /// One connection: check in, report suspicions, then apply pushed maps, hand directives
    /// to the agent and send what is queued, until it ends.
    async fn session(&mut self, coordinator: CoordinatorAddr, me: &NodeInfo) -> SessionError {
        let stream = match coordinator.connect().await {
            Ok(stream) => stream,
            Err(e) => return SessionError::Connect(e),
        };
        let mut framed = Framed::new(stream, ClientCodec::default());
        let held = {
            let current = self.maps.borrow();
            current.is_formed().then(|| current.clone())
        };
        let epoch = held.as_ref().map(|m| m.epoch);
        let check_in = ClientFrame::CheckIn {
            node: me.clone(),
            map: held,
        };
        if let Err(e) = framed.send(check_in).await {
            return e.into();
        }
        self.progress.checked_in = true;
        tracing::info!(%coordinator, node = %me.id, ?epoch, "checked in with the coordinator");
        if let Err(e) = self.report_suspicions(&mut framed).await {
            return e.into();
        }
        loop {
            tokio::select! {
                frame = framed.next() => match frame {
                    None => return SessionError::Closed,
                    Some(Err(e)) => return e.into(),
                    Some(Ok(frame)) => {
                        if let Err(e) = self.on_frame(me.id, frame) {
                            return e;
                        }
                    }
                },
                Some(frame) = self.answered.recv() => {
                    if let Err(e) = framed.send(frame).await {
                        return e.into();
                    }
                }
                Some(frame) = self.node.outbound.recv() => {
                    if let ClientFrame::Suspicion { node, suspected } = &frame {
                        self.note_reported(*node, *suspected);
                    }
                    if let Err(e) = framed.send(frame).await {
                        return e.into();
                    }
                }
            }
        }
    }

    /// A frame from the coordinator.
    fn on_frame(&mut self, me: NodeId, frame: ServerFrame) -> Result<(), SessionError> {
        match frame {
            ServerFrame::Map(Some(map)) => {
                self.progress.heard = true;
                let named = self.maps.borrow().node(me).is_some();
                let epoch = map.epoch;
                let gone = map.node(me).is_none();
                if adopt(self.maps, map) && named && gone {
                    // Ids are never taken back: a map without us after one with us is final.
                    return Err(SessionError::Removed(epoch));
                }
            }
            ServerFrame::Removed { node, epoch } if node == me => {
                return Err(SessionError::Removed(epoch));
            }
            ServerFrame::QueryGroups => {
                let answers = self.answers.clone();
                let report = self.node.reporter.as_ref().map(|r| r.report());
                tokio::spawn(async move {
                    let groups = match report {
                        Some(report) => report.await,
                        None => Vec::new(),
                    };
                    let _ = answers.send(ClientFrame::Groups(groups));
                });
            }
            ServerFrame::Directive {
                id,
                peers,
                directive,
            } => {
                self.progress.heard = true;
                self.node.agent.directive(id, peers, directive);
            }
            ServerFrame::Error { message } => return Err(SessionError::Refused(message)),
            other => tracing::debug!(?other, "ignoring an unexpected coordinator frame"),
        }
        Ok(())
    }

    /// After a check-in: every node suspected now, and a restoration for every node reported
    /// suspected before and no longer suspected (its restoration may have been lost).
    async fn report_suspicions(&mut self, framed: &mut Framing) -> Result<(), FrameError> {
        let now: BTreeSet<NodeId> = self.node.agent.suspected().into_iter().collect();
        let restored: Vec<NodeId> = self.reported.difference(&now).copied().collect();
        let frames = restored
            .into_iter()
            .map(|node| (node, false))
            .chain(now.iter().map(|&node| (node, true)));
        for (node, suspected) in frames {
            framed
                .feed(ClientFrame::Suspicion { node, suspected })
                .await?;
        }
        framed.flush().await?;
        *self.reported = now;
        Ok(())
    }

    fn note_reported(&mut self, node: NodeId, suspected: bool) {
        if suspected {
            self.reported.insert(node);
        } else {
            self.reported.remove(&node);
        }
    }
}

/// Replaces the node's map with `map` if it is newer and valid; true if it did. An invalid map
/// is refused rather than routed by (the coordinator validates what it publishes, so this is
/// a bug or a stranger speaking).
pub fn adopt(maps: &watch::Sender<SlotMap>, map: SlotMap) -> bool {
    if let Err(e) = map.validate() {
        tracing::warn!(epoch = %map.epoch, error = %e, "ignoring an invalid map from the coordinator");
        return false;
    }
    maps.send_if_modified(|current| {
        if map.epoch <= current.epoch {
            return false;
        }
        tracing::info!(
            from = %current.epoch,
            to = %map.epoch,
            groups = map.groups.len(),
            standbys = map.standbys.len(),
            "new map from the coordinator"
        );
        *current = map;
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_components::bootstrap::formation::form;
    use kv_ports::ids::NodeId;
    use kv_ports::membership::Epoch;
    use std::net::SocketAddr;

    fn nodes(n: u64) -> Vec<NodeInfo> {
        (1..=n)
            .map(|i| {
                let addr = SocketAddr::from(([127, 0, 0, 1], i as u16));
                NodeInfo {
                    id: NodeId(i),
                    link: addr,
                    client: addr,
                    resp: None,
                    http: None,
                }
            })
            .collect()
    }

    #[test]
    fn only_newer_valid_maps_are_adopted() {
        let (maps, rx) = watch::channel(SlotMap::empty(2));
        let first = form(&nodes(4), 2).unwrap();
        assert!(adopt(&maps, first.clone()));
        assert!(!adopt(&maps, first.clone()), "same epoch");
        let mut older = first.clone();
        older.epoch = Epoch(0);
        assert!(!adopt(&maps, older), "older epoch");
        let mut broken = first.clone();
        broken.epoch = Epoch(5);
        broken.slots.clear();
        assert!(!adopt(&maps, broken), "invalid");
        assert_eq!(*rx.borrow(), first);
    }
}
