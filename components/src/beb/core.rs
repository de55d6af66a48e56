//! Best-effort broadcast as a pure state machine.
//!
//! A broadcast goes to every member over the perfect link; if the sender is a member it
//! delivers to itself directly. Best effort means: if the sender stays correct, every correct
//! member delivers the message exactly once; if the sender crashes midway, some members may
//! deliver it and others not (reliable broadcast is a stronger abstraction we do not need:
//! the protocols above repair gaps themselves).

use bytes::Bytes;
use kv_ports::ids::NodeId;
use kv_ports::network::Topic;
use serde::{Deserialize, Serialize};

/// A broadcast as it travels between nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BebMsg {
    /// The protocol the payload belongs to, at the receivers.
    pub topic: Topic,
    /// The encoded message.
    pub payload: Bytes,
}

/// Something the shell must do for the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BebOutput {
    /// Send the broadcast to one member.
    Send(NodeId, BebMsg),
    /// Deliver a broadcast to the local subscribers of its topic.
    Deliver(NodeId, BebMsg),
}

/// The broadcast state of one node: who the members are.
#[derive(Debug)]
pub struct BebCore {
    me: NodeId,
    members: Vec<NodeId>,
}

impl BebCore {
    /// A broadcaster for node `me` with no members yet.
    pub fn new(me: NodeId) -> Self {
        BebCore {
            me,
            members: Vec::new(),
        }
    }

    /// Replaces the member set (duplicates are ignored).
    pub fn set_members(&mut self, mut members: Vec<NodeId>) {
        members.sort_unstable();
        members.dedup();
        self.members = members;
    }

    /// The current members.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// Broadcasts `msg` to every member.
    pub fn broadcast(&self, msg: BebMsg) -> Vec<BebOutput> {
        self.members
            .iter()
            .map(|&member| {
                if member == self.me {
                    BebOutput::Deliver(self.me, msg.clone())
                } else {
                    BebOutput::Send(member, msg.clone())
                }
            })
            .collect()
    }

    /// A broadcast arrived from `from`. It is delivered even if `from` is not (or no longer)
    /// a member here: during a membership change the views of sender and receiver differ.
    pub fn handle(&self, from: NodeId, msg: BebMsg) -> BebOutput {
        BebOutput::Deliver(from, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> BebMsg {
        BebMsg {
            topic: Topic::Test(1),
            payload: Bytes::from_static(b"hello"),
        }
    }

    #[test]
    fn broadcast_reaches_every_member_once_and_self_locally() {
        let mut core = BebCore::new(NodeId(2));
        core.set_members(vec![NodeId(3), NodeId(1), NodeId(2), NodeId(3)]);
        let out = core.broadcast(msg());
        assert_eq!(
            out,
            vec![
                BebOutput::Send(NodeId(1), msg()),
                BebOutput::Deliver(NodeId(2), msg()),
                BebOutput::Send(NodeId(3), msg()),
            ]
        );
    }

    #[test]
    fn a_non_member_sender_only_sends() {
        let mut core = BebCore::new(NodeId(9));
        core.set_members(vec![NodeId(1), NodeId(2)]);
        let out = core.broadcast(msg());
        assert!(out.iter().all(|o| matches!(o, BebOutput::Send(..))));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn arrivals_are_delivered_with_their_sender() {
        let core = BebCore::new(NodeId(1));
        assert_eq!(
            core.handle(NodeId(5), msg()),
            BebOutput::Deliver(NodeId(5), msg())
        );
    }
}
