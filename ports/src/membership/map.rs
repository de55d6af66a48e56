//! Lookups on a [`SlotMap`]: what routing, `/status` and the seed 001 API ask of a view.

use std::collections::BTreeMap;

use super::{slot_of, Epoch, GroupInfo, NodeInfo, Slot, SlotMap, SLOTS};
use crate::ids::{GroupId, NodeId};

impl SlotMap {
    /// A view with no nodes and no groups: what a node holds before it hears from the
    /// coordinator. Epoch 0, so any formed map is newer.
    pub fn empty(replication: u32) -> SlotMap {
        SlotMap {
            epoch: Epoch(0),
            replication,
            slots: Vec::new(),
            groups: Vec::new(),
            standbys: Vec::new(),
            nodes: Vec::new(),
            next_group: GroupId(0),
        }
    }

    /// Whether groups exist and own the slots (false before formation).
    pub fn is_formed(&self) -> bool {
        !self.groups.is_empty()
    }

    /// The group owning `slot`, if the map is formed.
    pub fn group_of_slot(&self, slot: Slot) -> Option<GroupId> {
        self.slots.get(slot.index()).copied()
    }

    /// The group owning `key`, if the map is formed.
    pub fn group_of_key(&self, key: &[u8]) -> Option<GroupId> {
        self.group_of_slot(slot_of(key))
    }

    /// The description of one group.
    pub fn group(&self, id: GroupId) -> Option<&GroupInfo> {
        self.groups
            .binary_search_by_key(&id, |g| g.id)
            .ok()
            .map(|i| &self.groups[i])
    }

    /// The members of one group (empty for an unknown group).
    pub fn members_of(&self, id: GroupId) -> &[NodeId] {
        self.group(id).map_or(&[], |g| g.members.as_slice())
    }

    /// The group a node is a member of, or `None` for a standby or unknown node.
    pub fn group_of_node(&self, node: NodeId) -> Option<GroupId> {
        self.groups
            .iter()
            .find(|g| g.members.contains(&node))
            .map(|g| g.id)
    }

    /// Whether the node is a standby (a proxy in seed 001 terms).
    pub fn is_standby(&self, node: NodeId) -> bool {
        self.standbys.contains(&node)
    }

    /// The addresses of one node.
    pub fn node(&self, id: NodeId) -> Option<&NodeInfo> {
        self.nodes
            .binary_search_by_key(&id, |n| n.id)
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// The partition ids of seed 001: the ids of the current groups, ascending.
    pub fn partition_ids(&self) -> Vec<GroupId> {
        self.groups.iter().map(|g| g.id).collect()
    }

    /// How many slots each group owns (every current group appears, possibly with 0).
    pub fn slot_counts(&self) -> BTreeMap<GroupId, usize> {
        let mut counts: BTreeMap<GroupId, usize> = self.groups.iter().map(|g| (g.id, 0)).collect();
        for group in &self.slots {
            *counts.entry(*group).or_default() += 1;
        }
        counts
    }

    /// The slots one group owns, ascending.
    pub fn slots_of(&self, id: GroupId) -> Vec<Slot> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i] == id)
            .map(|i| Slot(i as u16))
            .collect()
    }

    /// Groups with fewer members than the replication degree: they still serve while they keep
    /// a majority of their configuration, but tolerate fewer failures; `status` shows them.
    pub fn under_replicated(&self) -> Vec<GroupId> {
        self.groups
            .iter()
            .filter(|g| g.members.len() < self.replication as usize)
            .map(|g| g.id)
            .collect()
    }

    /// How far the largest and smallest slot counts are from an even share, as a fraction of
    /// the even share (0.0 for a perfect spread, 0.0 for an unformed map).
    pub fn spread_deviation(&self) -> f64 {
        let counts = self.slot_counts();
        if counts.is_empty() {
            return 0.0;
        }
        let even = SLOTS as f64 / counts.len() as f64;
        counts
            .values()
            .map(|&c| (c as f64 - even).abs() / even)
            .fold(0.0, f64::max)
    }

    /// Every node named by the map, grouped members first then standbys.
    pub fn placed_nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.groups
            .iter()
            .flat_map(|g| g.members.iter().copied())
            .chain(self.standbys.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_groups() -> SlotMap {
        let mut map = SlotMap::empty(2);
        map.epoch = Epoch(1);
        map.groups = vec![
            GroupInfo {
                id: GroupId(0),
                config: 1,
                members: vec![NodeId(1), NodeId(2)],
            },
            GroupInfo {
                id: GroupId(1),
                config: 1,
                members: vec![NodeId(3)],
            },
        ];
        map.slots = (0..SLOTS)
            .map(|i| GroupId(u32::from(i >= SLOTS / 2)))
            .collect();
        map.standbys = vec![NodeId(4)];
        map.next_group = GroupId(2);
        map
    }

    #[test]
    fn lookups_answer_from_the_view() {
        let map = two_groups();
        assert!(map.is_formed());
        assert_eq!(map.group_of_slot(Slot(0)), Some(GroupId(0)));
        assert_eq!(map.group_of_slot(Slot(1023)), Some(GroupId(1)));
        assert_eq!(map.group_of_slot(Slot(1024)), None);
        assert_eq!(map.members_of(GroupId(0)), &[NodeId(1), NodeId(2)]);
        assert!(map.members_of(GroupId(9)).is_empty());
        assert_eq!(map.group_of_node(NodeId(3)), Some(GroupId(1)));
        assert_eq!(map.group_of_node(NodeId(4)), None);
        assert!(map.is_standby(NodeId(4)));
        assert_eq!(map.partition_ids(), vec![GroupId(0), GroupId(1)]);
        assert_eq!(map.under_replicated(), vec![GroupId(1)]);
        assert_eq!(map.slots_of(GroupId(1)).len(), SLOTS / 2);
        assert_eq!(map.spread_deviation(), 0.0);
        let key_group = map.group_of_key(b"foo").unwrap();
        assert_eq!(Some(key_group), map.group_of_slot(slot_of(b"foo")));
    }

    #[test]
    fn an_empty_map_routes_nothing() {
        let map = SlotMap::empty(3);
        assert!(!map.is_formed());
        assert_eq!(map.group_of_key(b"k"), None);
        assert!(map.slot_counts().is_empty());
        assert_eq!(map.spread_deviation(), 0.0);
    }
}
