//! The structural invariants of a [`SlotMap`], checked after every change that produces one.

use std::collections::BTreeSet;

use super::{SlotMap, SLOTS};
use crate::ids::{GroupId, NodeId};

/// A way in which a [`SlotMap`] breaks its invariants.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The slot table has the wrong length for the map's state.
    #[error("slot table has {len} entries, expected {expected}")]
    SlotTableLength {
        /// The length found.
        len: usize,
        /// The length required (`SLOTS` once formed, 0 before).
        expected: usize,
    },
    /// A slot is owned by a group the map does not list.
    #[error("slot {slot} owned by unknown group {group}")]
    UnknownOwner {
        /// The slot.
        slot: usize,
        /// Its owner.
        group: GroupId,
    },
    /// Groups are not sorted by strictly increasing id.
    #[error("groups not sorted by unique id at {0}")]
    GroupOrder(GroupId),
    /// A group id is not below `next_group`, so it could be handed out again.
    #[error("group {0} not below next_group")]
    GroupIdReusable(GroupId),
    /// A group has no members or more than the replication degree.
    #[error("group {group} has {members} members (replication {replication})")]
    GroupSize {
        /// The group.
        group: GroupId,
        /// How many members it has.
        members: usize,
        /// The replication degree.
        replication: u32,
    },
    /// A node is placed twice (in two groups, twice in one, or in a group and as a standby).
    #[error("node {0} placed more than once")]
    DoublePlaced(NodeId),
    /// A placed node has no address entry.
    #[error("node {0} has no NodeInfo")]
    UnknownNode(NodeId),
    /// Node entries are not sorted by strictly increasing id.
    #[error("nodes not sorted by unique id at {0}")]
    NodeOrder(NodeId),
    /// A node has an address entry but is neither a member nor a standby.
    #[error("node {0} is known but not placed")]
    Unplaced(NodeId),
}

impl SlotMap {
    /// Check every structural invariant; the first violation found is returned.
    pub fn validate(&self) -> Result<(), MapError> {
        self.check_groups()?;
        self.check_slots()?;
        self.check_nodes()
    }

    fn check_groups(&self) -> Result<(), MapError> {
        for pair in self.groups.windows(2) {
            if pair[0].id >= pair[1].id {
                return Err(MapError::GroupOrder(pair[1].id));
            }
        }
        for g in &self.groups {
            if g.id >= self.next_group {
                return Err(MapError::GroupIdReusable(g.id));
            }
            if g.members.is_empty() || g.members.len() > self.replication as usize {
                return Err(MapError::GroupSize {
                    group: g.id,
                    members: g.members.len(),
                    replication: self.replication,
                });
            }
        }
        Ok(())
    }

    fn check_slots(&self) -> Result<(), MapError> {
        let expected = if self.is_formed() { SLOTS } else { 0 };
        if self.slots.len() != expected {
            return Err(MapError::SlotTableLength {
                len: self.slots.len(),
                expected,
            });
        }
        for (slot, &group) in self.slots.iter().enumerate() {
            if self.group(group).is_none() {
                return Err(MapError::UnknownOwner { slot, group });
            }
        }
        Ok(())
    }

    fn check_nodes(&self) -> Result<(), MapError> {
        for pair in self.nodes.windows(2) {
            if pair[0].id >= pair[1].id {
                return Err(MapError::NodeOrder(pair[1].id));
            }
        }
        let mut placed = BTreeSet::new();
        for node in self.placed_nodes() {
            if !placed.insert(node) {
                return Err(MapError::DoublePlaced(node));
            }
            if self.node(node).is_none() {
                return Err(MapError::UnknownNode(node));
            }
        }
        match self.nodes.iter().find(|n| !placed.contains(&n.id)) {
            Some(n) => Err(MapError::Unplaced(n.id)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Epoch, GroupInfo, NodeInfo};
    use super::*;

    fn info(id: u64) -> NodeInfo {
        let addr = format!("127.0.0.1:{}", 7000 + id).parse().unwrap();
        NodeInfo::at(NodeId(id), addr)
    }

    fn valid() -> SlotMap {
        SlotMap {
            epoch: Epoch(1),
            replication: 2,
            slots: vec![GroupId(0); SLOTS],
            groups: vec![GroupInfo {
                id: GroupId(0),
                config: 1,
                members: vec![NodeId(1), NodeId(2)],
            }],
            standbys: vec![NodeId(3)],
            nodes: vec![info(1), info(2), info(3)],
            next_group: GroupId(1),
        }
    }

    #[test]
    fn a_valid_map_passes() {
        assert_eq!(valid().validate(), Ok(()));
        let mut empty = SlotMap::empty(2);
        empty.nodes = vec![info(1)];
        empty.standbys = vec![NodeId(1)];
        assert_eq!(empty.validate(), Ok(()));
    }

    #[test]
    fn each_violation_is_named() {
        let mut m = valid();
        m.slots.pop();
        assert!(matches!(
            m.validate(),
            Err(MapError::SlotTableLength { .. })
        ));
        let mut m = valid();
        m.slots[5] = GroupId(7);
        assert!(matches!(
            m.validate(),
            Err(MapError::UnknownOwner { slot: 5, .. })
        ));
        let mut m = valid();
        m.next_group = GroupId(0);
        assert_eq!(m.validate(), Err(MapError::GroupIdReusable(GroupId(0))));
        let mut m = valid();
        m.groups[0].members.push(NodeId(3));
        assert!(matches!(m.validate(), Err(MapError::GroupSize { .. })));
        let mut m = valid();
        m.standbys.push(NodeId(1));
        assert_eq!(m.validate(), Err(MapError::DoublePlaced(NodeId(1))));
        let mut m = valid();
        m.standbys.push(NodeId(9));
        assert_eq!(m.validate(), Err(MapError::UnknownNode(NodeId(9))));
        let mut m = valid();
        m.nodes.push(info(9));
        assert_eq!(m.validate(), Err(MapError::Unplaced(NodeId(9))));
        let mut m = valid();
        m.nodes.swap(0, 1);
        assert!(matches!(m.validate(), Err(MapError::NodeOrder(_))));
    }
}
