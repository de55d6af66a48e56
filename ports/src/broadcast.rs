//! The Broadcast port: best-effort broadcast to a member set.

use bytes::Bytes;

use crate::ids::NodeId;
use crate::network::Topic;
use crate::port::Port;

/// Requests to the broadcast component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BroadcastRequest {
    /// Replace the member set broadcasts go to (the sender included, if listed).
    Members(Vec<NodeId>),
    /// Send `payload` to every member; subscribers of `topic` there receive it.
    Broadcast {
        /// The protocol the payload belongs to.
        topic: Topic,
        /// The encoded message.
        payload: Bytes,
    },
    /// Receive broadcasts of `topic`.
    Subscribe(Topic),
}

/// A broadcast arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastDeliver {
    /// The node that broadcast it.
    pub from: NodeId,
    /// The protocol the payload belongs to.
    pub topic: Topic,
    /// The encoded message.
    pub payload: Bytes,
}

/// Broadcast to the members; hear their broadcasts.
pub struct BroadcastPort;

impl Port for BroadcastPort {
    type Request = BroadcastRequest;
    type Indication = BroadcastDeliver;
}
