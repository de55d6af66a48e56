//! The routing core: the latest slot map plus a leader cache, answering "where does this key
//! go?".
//!
//! The map only moves forward: a map with an epoch not above the current one is ignored, so a
//! delayed publish cannot undo a reconfiguration. A reply saying the sender's epoch is stale
//! asks the shell for a refresh, once per newer epoch heard of.

use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{slot_of, Epoch, Slot, SlotMap};

use super::leaders::LeaderCache;

/// Where to send a request for one key.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The key's slot.
    pub slot: Slot,
    /// The group owning the slot.
    pub group: GroupId,
    /// The node to send to: the cached leader, or a member in turn.
    pub target: NodeId,
    /// The epoch of the map this route came from (carried in the request, so a node with a
    /// newer map can tell the sender it is stale).
    pub epoch: Epoch,
}

/// Why a key cannot be routed now.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No formed map yet: the cluster is still forming or the coordinator not yet heard.
    #[error("no slot map yet")]
    NoMap,
}

/// Ask the coordinator (or any node) for a map newer than `have`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RefreshRequest {
    /// The epoch held now.
    pub have: Epoch,
    /// The epoch heard of, at least.
    pub want: Epoch,
}

/// The router's state.
#[derive(Clone, Debug)]
pub struct Router {
    map: SlotMap,
    leaders: LeaderCache,
    wanted: Epoch,
}

impl Router {
    /// A router with no map yet.
    pub fn new(replication: u32) -> Self {
        Router {
            map: SlotMap::empty(replication),
            leaders: LeaderCache::default(),
            wanted: Epoch(0),
        }
    }

    /// The map routed by now.
    pub fn map(&self) -> &SlotMap {
        &self.map
    }

    /// Take `map` if it is newer than the current one; returns whether it was taken. Cached
    /// leaders that are no longer members of their group are dropped.
    pub fn install(&mut self, map: SlotMap) -> bool {
        if map.epoch <= self.map.epoch {
            return false;
        }
        self.map = map;
        let map = &self.map;
        self.leaders.retain(|g, n| map.members_of(g).contains(&n));
        true
    }

    /// Where to send a request for `key`.
    pub fn route(&self, key: &[u8]) -> Result<Route, RouteError> {
        self.route_slot(slot_of(key))
    }

    /// Where to send a request for `slot`.
    pub fn route_slot(&self, slot: Slot) -> Result<Route, RouteError> {
        let group = self.map.group_of_slot(slot).ok_or(RouteError::NoMap)?;
        let members = self.map.members_of(group);
        let target = self
            .leaders
            .pick(group, members)
            .expect("a valid map has no empty group");
        Ok(Route {
            slot,
            group,
            target,
            epoch: self.map.epoch,
        })
    }

    /// The leader cached for `group`, if any (a guess: see [`LeaderCache`]).
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        self.leaders.leader(group)
    }

    /// `node` leads `group` (a `Leader` indication, or it answered a request for the group).
    pub fn on_leader(&mut self, group: GroupId, node: NodeId) {
        self.leaders.learn(group, node);
    }

    /// The node tried for `group` is not its leader; `hint` is its guess.
    pub fn on_not_leader(&mut self, group: GroupId, hint: Option<NodeId>) {
        match hint {
            Some(h) if self.map.members_of(group).contains(&h) => self.leaders.hint(group, h),
            _ => self.leaders.forget(group),
        }
    }

    /// `node` could not be reached (connection down, timeout).
    pub fn on_unreachable(&mut self, node: NodeId) {
        self.leaders.unreachable(node);
    }

    /// `node` was heard from again.
    pub fn on_reachable(&mut self, node: NodeId) {
        self.leaders.reachable(node);
    }

    /// A node answered that it knows the map at `newer`; returns a refresh to ask for, unless
    /// the map is that new already or a refresh for it was asked already.
    pub fn on_stale_epoch(&mut self, newer: Epoch) -> Option<RefreshRequest> {
        if newer <= self.map.epoch || newer <= self.wanted {
            return None;
        }
        self.wanted = newer;
        Some(RefreshRequest {
            have: self.map.epoch,
            want: newer,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use kv_ports::membership::{GroupInfo, NodeInfo, SLOTS};

    use super::*;

    fn node(id: u64) -> NodeInfo {
        let addr: SocketAddr = ([127, 0, 0, 1], 9000 + id as u16).into();
        NodeInfo::at(NodeId(id), addr)
    }

    /// Two groups of two over halves of the slots; group 1's members given.
    fn map(epoch: u64, second: [u64; 2]) -> SlotMap {
        let mut m = SlotMap::empty(2);
        m.epoch = Epoch(epoch);
        m.groups = vec![
            GroupInfo {
                id: GroupId(0),
                config: 1,
                members: vec![NodeId(1), NodeId(2)],
            },
            GroupInfo {
                id: GroupId(1),
                config: 1,
                members: second.iter().map(|&i| NodeId(i)).collect(),
            },
        ];
        m.slots = (0..SLOTS)
            .map(|s| GroupId(u32::from(s >= SLOTS / 2)))
            .collect();
        let mut ids = vec![1, 2, second[0], second[1]];
        ids.sort();
        m.nodes = ids.into_iter().map(node).collect();
        m.next_group = GroupId(2);
        assert_eq!(m.validate(), Ok(()));
        m
    }

    #[test]
    fn no_map_no_route() {
        assert_eq!(Router::new(2).route(b"k"), Err(RouteError::NoMap));
    }

    #[test]
    fn routes_follow_the_slot_map() {
        let mut r = Router::new(2);
        assert!(r.install(map(1, [3, 4])));
        let low = r.route_slot(Slot(0)).unwrap();
        assert_eq!(
            (low.group, low.target, low.epoch),
            (GroupId(0), NodeId(1), Epoch(1))
        );
        let high = r.route_slot(Slot(1023)).unwrap();
        assert_eq!((high.group, high.target), (GroupId(1), NodeId(3)));
        let key = r.route(b"foo").unwrap();
        assert_eq!(key.slot, slot_of(b"foo"));
    }

    #[test]
    fn older_or_equal_maps_are_ignored() {
        let mut r = Router::new(2);
        assert!(r.install(map(2, [3, 4])));
        assert!(!r.install(map(2, [5, 6])));
        assert!(!r.install(map(1, [5, 6])));
        assert_eq!(r.map().members_of(GroupId(1)), &[NodeId(3), NodeId(4)]);
    }

    #[test]
    fn not_leader_hints_redirect_and_otherwise_rotate() {
        let mut r = Router::new(2);
        r.install(map(1, [3, 4]));
        r.on_not_leader(GroupId(1), Some(NodeId(4)));
        assert_eq!(r.route_slot(Slot(1000)).unwrap().target, NodeId(4));
        r.on_not_leader(GroupId(1), Some(NodeId(77)));
        assert_eq!(
            r.route_slot(Slot(1000)).unwrap().target,
            NodeId(4),
            "rotated on"
        );
        r.on_not_leader(GroupId(1), None);
        assert_eq!(r.route_slot(Slot(1000)).unwrap().target, NodeId(3));
    }

    #[test]
    fn the_cached_leader_is_visible() {
        let mut r = Router::new(2);
        r.install(map(1, [3, 4]));
        assert_eq!(r.leader(GroupId(1)), None);
        r.on_leader(GroupId(1), NodeId(4));
        assert_eq!(r.leader(GroupId(1)), Some(NodeId(4)));
        r.on_not_leader(GroupId(1), None);
        assert_eq!(r.leader(GroupId(1)), None);
    }

    #[test]
    fn an_unreachable_leader_is_bypassed() {
        let mut r = Router::new(2);
        r.install(map(1, [3, 4]));
        r.on_leader(GroupId(0), NodeId(1));
        r.on_unreachable(NodeId(1));
        assert_eq!(r.route_slot(Slot(0)).unwrap().target, NodeId(2));
        r.on_reachable(NodeId(1));
        r.on_leader(GroupId(0), NodeId(1));
        assert_eq!(r.route_slot(Slot(0)).unwrap().target, NodeId(1));
    }

    #[test]
    fn a_new_map_drops_leaders_that_left_the_group() {
        let mut r = Router::new(2);
        r.install(map(1, [3, 4]));
        r.on_leader(GroupId(1), NodeId(4));
        r.install(map(2, [3, 5]));
        assert_eq!(r.route_slot(Slot(1000)).unwrap().target, NodeId(3));
    }

    #[test]
    fn stale_epoch_asks_for_a_refresh_once() {
        let mut r = Router::new(2);
        r.install(map(3, [3, 4]));
        assert_eq!(r.on_stale_epoch(Epoch(3)), None);
        let want = RefreshRequest {
            have: Epoch(3),
            want: Epoch(5),
        };
        assert_eq!(r.on_stale_epoch(Epoch(5)), Some(want));
        assert_eq!(r.on_stale_epoch(Epoch(5)), None);
        assert_eq!(r.on_stale_epoch(Epoch(4)), None);
        assert!(r.on_stale_epoch(Epoch(6)).is_some());
    }
}
