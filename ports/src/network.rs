//! The Network port: exactly-once, FIFO message delivery between node processes.
//!
//! Payloads are opaque bytes tagged with a [`Topic`]: each protocol encodes its own messages, and
//! the link delivers a payload only to the requirers that subscribed to its topic. The link
//! knows nothing of the protocols above it.

use std::net::SocketAddr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, NodeId};
use crate::port::Port;

/// Which protocol a payload belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Topic {
    /// Failure-detector heartbeats.
    FailureDetector,
    /// Best-effort broadcast.
    Broadcast,
    /// Ballot leader election of one replication group.
    LeaderElection(GroupId),
    /// Sequence Paxos of one replication group.
    Consensus(GroupId),
    /// Request routing between nodes.
    Overlay,
    /// Membership and slot-map traffic with the bootstrap coordinator.
    Membership,
    /// Free for tests.
    Test(u32),
}

/// Requests to the perfect link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetRequest {
    /// Deliver `payload` to the requirers of `topic` at node `to`, exactly once and in order.
    Send {
        /// The destination node.
        to: NodeId,
        /// The protocol the payload belongs to.
        topic: Topic,
        /// The encoded message.
        payload: Bytes,
    },
    /// Receive the payloads of `topic` (a requirer may subscribe to several topics).
    Subscribe(Topic),
    /// Learn (or change) where a peer listens, so messages to it can be delivered.
    AddPeer {
        /// The peer.
        node: NodeId,
        /// Its listening address.
        addr: SocketAddr,
    },
    /// Forget a peer: close its connection and drop what is queued for it.
    RemovePeer(NodeId),
    /// Fault injection: drop all traffic to and from `node` until [`NetRequest::Unblock`].
    /// Messages dropped meanwhile are lost, as in a real network cut.
    Block(NodeId),
    /// Lift a [`NetRequest::Block`].
    Unblock(NodeId),
}

/// Indications of the perfect link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetIndication {
    /// A payload arrived (sent only to the subscribers of its topic).
    Deliver {
        /// The sending node.
        from: NodeId,
        /// The protocol the payload belongs to.
        topic: Topic,
        /// The encoded message.
        payload: Bytes,
    },
    /// A connection to `node` is up (first contact or after a reconnect).
    PeerUp(NodeId),
    /// The connection to `node` dropped; messages sent meanwhile are kept and resent when it
    /// comes back, unless the peer was removed or blocked, or comes back as a new incarnation
    /// (a restarted process), which starts a fresh session and discards what was queued.
    PeerDown(NodeId),
}

/// Send messages to other nodes; hear messages and connection changes.
pub struct NetworkPort;

impl Port for NetworkPort {
    type Request = NetRequest;
    type Indication = NetIndication;
}
