//! What the link knows about its peers and connections, and the rule for duplicate connections.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kv_ports::ids::NodeId;
use tokio::sync::mpsc::UnboundedSender;

use super::frame::{Frame, Token};
use super::session::Session;
use crate::task::TaskGuard;

/// Names one socket of this link (never reused), so late events of a closed socket are ignored.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey(pub u64);

/// One open socket and its two tasks.
#[derive(Debug)]
pub struct Conn {
    /// The peer, once known (from the dial, or from its `Hello` for an inbound socket).
    pub peer: Option<NodeId>,
    /// Which node dialed it, once known; decides between simultaneous dials.
    pub dialer: Option<NodeId>,
    /// Both `Hello`s have been seen; data and acks may flow.
    pub established: bool,
    /// When the socket was opened (for the handshake timeout).
    pub opened: Instant,
    /// The writer task's queue.
    pub tx: UnboundedSender<Frame>,
    /// The reader and writer tasks; dropping them closes the socket.
    pub _tasks: [TaskGuard; 2],
}

impl Conn {
    /// Queues a frame for the writer (a closed writer means the socket is going away anyway).
    pub fn send(&self, frame: Frame) {
        let _ = self.tx.send(frame);
    }
}

/// Everything about one peer.
#[derive(Debug)]
pub struct Peer {
    /// Where it listens, if known.
    pub addr: Option<SocketAddr>,
    /// Whether `addr` came from `AddPeer` (which wins over the address in a `Hello`).
    pub addr_explicit: bool,
    /// Sequencing state of both directions.
    pub session: Session,
    /// Our session epoch with this peer (part of our [`Token`] for it).
    pub epoch: u64,
    /// The peer's token as last seen in its `Hello`.
    pub token: Option<Token>,
    /// The socket currently used for this peer, established or handshaking.
    pub conn: Option<ConnKey>,
    /// Whether `PeerUp` was the last indication triggered for it.
    pub up: bool,
    /// Fault injection: all traffic with it is dropped.
    pub blocked: bool,
    /// The dial in progress, with its attempt number.
    pub dial: Option<(u64, TaskGuard)>,
    /// The delay before the next redial after a drop.
    pub backoff: Duration,
}

impl Default for Peer {
    fn default() -> Self {
        Peer {
            addr: None,
            addr_explicit: false,
            session: Session::default(),
            epoch: 0,
            token: None,
            conn: None,
            up: false,
            blocked: false,
            dial: None,
            backoff: Duration::ZERO,
        }
    }
}

impl Peer {
    /// Starts a fresh session: numbering restarts and, through the new epoch in our `Hello`,
    /// the peer discards its backlog for us too.
    pub fn new_epoch(&mut self) {
        self.epoch += 1;
        self.session.reset();
    }
}

/// Whether a new socket to `peer`, dialed by `candidate`, replaces the current one, dialed by
/// `current`.
///
/// Tie-break for simultaneous dials: the socket dialed by the smaller `NodeId` wins. Both ends
/// apply the same rule, so they agree without another round trip. Among sockets from the same
/// dialer, the newer wins (the older one is most likely dead on the other side).
pub fn candidate_wins(me: NodeId, peer: NodeId, current: NodeId, candidate: NodeId) -> bool {
    let preferred = me.min(peer);
    current != preferred || candidate == preferred
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaller_dialer_wins_on_both_sides() {
        let (a, b) = (NodeId(1), NodeId(2));
        // At a: current is a's own dial, candidate is b's dial → keep a's.
        assert!(!candidate_wins(a, b, a, b));
        // At b: current is b's own dial, candidate is a's dial → switch to a's.
        assert!(candidate_wins(b, a, b, a));
        // Newer socket from the same dialer replaces the old one.
        assert!(candidate_wins(a, b, a, a));
        assert!(candidate_wins(a, b, b, b));
        assert!(candidate_wins(b, a, b, b));
    }
}
