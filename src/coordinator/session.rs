//! The data node's session to the coordinator.
//!
//! The node checks in, then listens: every map the coordinator pushes that is newer than the
//! node's replaces the value of the node's `watch` channel, which routing and the overlay
//! read. When the connection drops the node reconnects (forever, with capped exponential
//! backoff) and checks in again with the map it holds, which is how a restarted coordinator
//! learns the cluster's current map back without forming a new one.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kv_components::task::TaskGuard;
use kv_ports::membership::{NodeInfo, SlotMap};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::codec::Framed;

use super::backoff::Backoff;
use crate::native::frame::FrameError;
use crate::native::{ClientCodec, ClientFrame, ServerFrame};

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
}

/// Starts the session of node `me` to the coordinator at `coordinator`, publishing every newer
/// map into `maps` (whose initial value the caller sets, normally `SlotMap::empty(δ)`). The
/// session runs until the returned guard is dropped.
pub fn start(coordinator: SocketAddr, me: NodeInfo, maps: watch::Sender<SlotMap>) -> TaskGuard {
    TaskGuard::spawn(run(coordinator, me, maps))
}

async fn run(coordinator: SocketAddr, me: NodeInfo, maps: watch::Sender<SlotMap>) {
    let mut backoff = Backoff::new(FIRST_RETRY, MAX_RETRY);
    // Whether the previous attempt could not check in: one outage is logged once, its
    // retries at debug level.
    let mut unreachable = false;
    loop {
        let mut progress = Progress::default();
        let error = session(coordinator, &me, &maps, &mut progress).await;
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

/// One connection: check in, then apply pushed maps until it ends.
async fn session(
    coordinator: SocketAddr,
    me: &NodeInfo,
    maps: &watch::Sender<SlotMap>,
    progress: &mut Progress,
) -> SessionError {
    let stream = match TcpStream::connect(coordinator).await {
        Ok(stream) => stream,
        Err(e) => return SessionError::Connect(e),
    };
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, ClientCodec::default());
    let held = {
        let current = maps.borrow();
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
    progress.checked_in = true;
    tracing::info!(%coordinator, node = %me.id, ?epoch, "checked in with the coordinator");
    loop {
        match framed.next().await {
            None => return SessionError::Closed,
            Some(Err(e)) => return e.into(),
            Some(Ok(ServerFrame::Map(Some(map)))) => {
                progress.heard = true;
                adopt(maps, map);
            }
            Some(Ok(ServerFrame::Error { message })) => return SessionError::Refused(message),
            Some(Ok(other)) => tracing::debug!(?other, "ignoring an unexpected coordinator frame"),
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
