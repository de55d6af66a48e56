//! Quorums of a replication group's configuration.
//!
//! Leader election and Sequence Paxos must agree on what a majority is: a leader elected by
//! one quorum rule and replicating under another could lose the intersection that makes Paxos
//! safe. Both take it from here.

use kv_ports::ids::NodeId;

/// The smallest number of members that make a majority of `members` members.
pub fn majority(members: usize) -> usize {
    members / 2 + 1
}

/// Every member but `me`, in configuration order.
pub fn peers(members: &[NodeId], me: NodeId) -> Vec<NodeId> {
    members.iter().copied().filter(|p| *p != me).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities_intersect() {
        for n in 1..=9 {
            assert!(
                2 * majority(n) > n,
                "two majorities of {n} must share a member"
            );
            assert!(majority(n) <= n);
        }
    }

    #[test]
    fn peers_leave_out_only_me() {
        let members = [NodeId(1), NodeId(2), NodeId(3)];
        assert_eq!(peers(&members, NodeId(2)), vec![NodeId(1), NodeId(3)]);
    }
}
