//! Who to send a group's requests to: the leader learned from replies, else its members in
//! turn.
//!
//! The cache is only a guess; a wrong guess costs one `NotLeader` round trip, which teaches the
//! right answer (or the next member to try).

use std::collections::{BTreeMap, BTreeSet};

use kv_ports::ids::{GroupId, NodeId};

/// Per-group leader guesses and a per-group rotation over members.
#[derive(Clone, Debug, Default)]
pub struct LeaderCache {
    leaders: BTreeMap<GroupId, NodeId>,
    cursors: BTreeMap<GroupId, usize>,
    unreachable: BTreeSet<NodeId>,
}

impl LeaderCache {
    /// The node to try for `group` with these `members`: the cached leader if still a reachable
    /// member, else the member under the rotation cursor, skipping unreachable ones unless all
    /// are. `None` only for an empty member list.
    pub fn pick(&self, group: GroupId, members: &[NodeId]) -> Option<NodeId> {
        if let Some(leader) = self.leaders.get(&group) {
            if members.contains(leader) && !self.unreachable.contains(leader) {
                return Some(*leader);
            }
        }
        let start = self.cursors.get(&group).copied().unwrap_or(0);
        let rotation = (0..members.len()).map(|i| members[(start + i) % members.len()]);
        let mut candidates = rotation.clone().filter(|n| !self.unreachable.contains(n));
        candidates.next().or_else(|| rotation.clone().next())
    }

    /// `node` is the leader of `group` (a `Leader` indication or a reply it answered).
    pub fn learn(&mut self, group: GroupId, node: NodeId) {
        self.leaders.insert(group, node);
        self.unreachable.remove(&node);
    }

    /// Another member named `node` as the leader of `group`. A hint naming a node known to be
    /// unreachable is stale (the hinting member has not noticed the loss yet): rotate instead,
    /// rather than sending into the void until the next election reaches every member.
    pub fn hint(&mut self, group: GroupId, node: NodeId) {
        if self.unreachable.contains(&node) {
            self.forget(group);
        } else {
            self.leaders.insert(group, node);
        }
    }

    /// The guess for `group` was wrong: drop it and move the rotation one member on.
    pub fn forget(&mut self, group: GroupId) {
        self.leaders.remove(&group);
        *self.cursors.entry(group).or_default() += 1;
    }

    /// `node` cannot be reached: stop preferring it until it is heard from again.
    pub fn unreachable(&mut self, node: NodeId) {
        self.unreachable.insert(node);
        let led: Vec<GroupId> = self
            .leaders
            .iter()
            .filter(|(_, n)| **n == node)
            .map(|(g, _)| *g)
            .collect();
        for g in led {
            self.forget(g);
        }
    }

    /// `node` answered: it is reachable again.
    pub fn reachable(&mut self, node: NodeId) {
        self.unreachable.remove(&node);
    }

    /// The cached leader of `group`, if any.
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        self.leaders.get(&group).copied()
    }

    /// Keep only what concerns these groups and members (after a new map).
    pub fn retain(&mut self, still: impl Fn(GroupId, NodeId) -> bool) {
        self.leaders.retain(|g, n| still(*g, *n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: GroupId = GroupId(0);
    const M: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

    #[test]
    fn rotation_without_a_leader() {
        let mut c = LeaderCache::default();
        assert_eq!(c.pick(G, &M), Some(NodeId(1)));
        c.forget(G);
        assert_eq!(c.pick(G, &M), Some(NodeId(2)));
        c.forget(G);
        c.forget(G);
        assert_eq!(c.pick(G, &M), Some(NodeId(1)));
        assert_eq!(c.pick(G, &[]), None);
    }

    #[test]
    fn a_learned_leader_wins_until_unreachable() {
        let mut c = LeaderCache::default();
        c.learn(G, NodeId(3));
        assert_eq!(c.pick(G, &M), Some(NodeId(3)));
        c.unreachable(NodeId(3));
        assert_eq!(c.leader(G), None);
        assert_eq!(c.pick(G, &M), Some(NodeId(2)));
        c.unreachable(NodeId(2));
        c.unreachable(NodeId(1));
        assert_eq!(
            c.pick(G, &M),
            Some(NodeId(2)),
            "all unreachable: keep rotating"
        );
        c.reachable(NodeId(1));
        assert_eq!(c.pick(G, &M), Some(NodeId(1)));
    }

    #[test]
    fn a_hint_naming_an_unreachable_node_rotates_instead() {
        let mut c = LeaderCache::default();
        c.learn(G, NodeId(1));
        c.unreachable(NodeId(1));
        c.hint(G, NodeId(1));
        assert_eq!(c.leader(G), None);
        assert_ne!(c.pick(G, &M), Some(NodeId(1)));
        c.hint(G, NodeId(3));
        assert_eq!(c.pick(G, &M), Some(NodeId(3)));
    }

    #[test]
    fn a_leader_outside_the_members_is_ignored() {
        let mut c = LeaderCache::default();
        c.learn(G, NodeId(9));
        assert_eq!(c.pick(G, &M), Some(NodeId(1)));
    }
}
