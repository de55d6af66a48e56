//! Forming the first slot map from an ordered list of nodes.
//!
//! The same function serves the coordinator (nodes in check-in order) and seed 001's static
//! view (nodes in `VIEW` order, every node computing the map on its own), so it is a pure
//! function of the ordered list and δ: the first δ nodes form group 0, the next δ group 1, and
//! so on; the ⌊N/δ⌋·δ-th node onwards are standbys. Slots are cut into contiguous ranges,
//! group 0 owning the lowest. [`in_given_order`] puts check-ins in an order known in advance
//! (seed 001's `VIEW`), so a coordinator forms the same groups whoever checked in first.

use std::net::SocketAddr;

use kv_ports::ids::GroupId;
use kv_ports::membership::{Epoch, GroupInfo, NodeInfo, SlotMap};

use super::balance::rebalance;

/// The configuration number a newly formed group starts its log in.
pub const FIRST_CONFIG: u32 = 1;

/// Why a map cannot be formed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// δ must be at least one.
    #[error("replication degree must be at least 1")]
    ZeroReplication,
    /// Fewer nodes than one group needs.
    #[error("{nodes} nodes cannot form a group of {replication}")]
    TooFewNodes {
        /// Nodes offered.
        nodes: usize,
        /// Members one group needs.
        replication: u32,
    },
    /// The same node id appears twice.
    #[error("node {0} listed twice")]
    DuplicateNode(kv_ports::ids::NodeId),
}

/// The epoch-1 map of `nodes` (in check-in or `VIEW` order) with groups of `replication`.
pub fn form(nodes: &[NodeInfo], replication: u32) -> Result<SlotMap, FormError> {
    let d = replication as usize;
    if d == 0 {
        return Err(FormError::ZeroReplication);
    }
    if nodes.len() < d {
        return Err(FormError::TooFewNodes {
            nodes: nodes.len(),
            replication,
        });
    }
    let mut map = SlotMap::empty(replication);
    map.epoch = Epoch(1);
    map.nodes = sorted_unique(nodes)?;
    let grouped = nodes.len() / d * d;
    map.groups = nodes[..grouped]
        .chunks(d)
        .enumerate()
        .map(|(i, chunk)| GroupInfo {
            id: GroupId(i as u32),
            config: FIRST_CONFIG,
            members: chunk.iter().map(|n| n.id).collect(),
        })
        .collect();
    map.next_group = GroupId(map.groups.len() as u32);
    map.standbys = nodes[grouped..].iter().map(|n| n.id).collect();
    map.slots = rebalance(&[], &map.partition_ids());
    debug_assert_eq!(map.validate(), Ok(()));
    Ok(map)
}

/// Sorts `nodes` by the position of their address in `order` (any of a node's addresses
/// counts); nodes whose addresses are not in `order` go last, keeping their relative order
/// (the sort is stable), as do all nodes when `order` is empty.
pub fn in_given_order(nodes: &mut [NodeInfo], order: &[SocketAddr]) {
    let position = |n: &NodeInfo| {
        order
            .iter()
            .position(|a| *a == n.link || *a == n.client || Some(*a) == n.http)
            .unwrap_or(usize::MAX)
    };
    nodes.sort_by_key(position);
}

/// The node entries sorted by id, refusing duplicates.
fn sorted_unique(nodes: &[NodeInfo]) -> Result<Vec<NodeInfo>, FormError> {
    let mut sorted = nodes.to_vec();
    sorted.sort_by_key(|n| n.id);
    match sorted.windows(2).find(|w| w[0].id == w[1].id) {
        Some(w) => Err(FormError::DuplicateNode(w[0].id)),
        None => Ok(sorted),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::infos;
    use super::*;
    use kv_ports::ids::NodeId;

    #[test]
    fn seed_001_shapes() {
        for (n, k, groups, standbys) in [(4, 2, 2, 0), (7, 2, 3, 1), (6, 3, 2, 0), (6, 2, 3, 0)] {
            let map = form(&infos(n), k).unwrap();
            assert_eq!(map.groups.len(), groups, "N={n} K={k}");
            assert_eq!(map.standbys.len(), standbys, "N={n} K={k}");
            assert!(map.groups.iter().all(|g| g.members.len() == k as usize));
            assert!(map.spread_deviation() <= 0.10);
            assert_eq!(map.validate(), Ok(()));
        }
    }

    #[test]
    fn groups_follow_the_given_order() {
        let mut nodes = infos(5);
        nodes.reverse();
        let map = form(&nodes, 2).unwrap();
        assert_eq!(map.members_of(GroupId(0)), &[NodeId(5), NodeId(4)]);
        assert_eq!(map.members_of(GroupId(1)), &[NodeId(3), NodeId(2)]);
        assert_eq!(map.standbys, vec![NodeId(1)]);
        assert_eq!(map.epoch, Epoch(1));
    }

    #[test]
    fn a_given_order_decides_the_groups() {
        let mut nodes = infos(5);
        nodes.reverse();
        // Node 2 by its link, node 4 by its client address, node 1 by its HTTP address.
        nodes[4].http = Some(([10, 0, 0, 1], 80).into());
        let order = [
            infos(2)[1].link,
            infos(4)[3].client,
            ([10, 0, 0, 1], 80).into(),
        ];
        in_given_order(&mut nodes, &order);
        let ids: Vec<u64> = nodes.iter().map(|n| n.id.0).collect();
        assert_eq!(ids, [2, 4, 1, 5, 3], "listed first, the rest as they came");
        let map = form(&nodes, 2).unwrap();
        assert_eq!(map.members_of(GroupId(0)), &[NodeId(2), NodeId(4)]);
        in_given_order(&mut nodes, &[]);
        assert_eq!(nodes[0].id, NodeId(2), "an empty order changes nothing");
    }

    #[test]
    fn every_node_computes_the_same_map() {
        assert_eq!(form(&infos(9), 3), form(&infos(9), 3));
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert_eq!(form(&infos(3), 0), Err(FormError::ZeroReplication));
        assert!(matches!(
            form(&infos(2), 3),
            Err(FormError::TooFewNodes { .. })
        ));
        let mut nodes = infos(3);
        nodes.push(nodes[0].clone());
        assert_eq!(form(&nodes, 2), Err(FormError::DuplicateNode(NodeId(1))));
    }
}
