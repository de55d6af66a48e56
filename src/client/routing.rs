//! Where a session sends each command: the key's group leader when a slot map is known, the
//! seed addresses in turn when none is (a single-group endpoint, or a cluster still forming).
//!
//! The decisions are the overlay's pure [`Router`] (slot → group → cached leader, rotation
//! over members, unreachable nodes bypassed); this adds what only a client needs: turning a
//! node into its client address, the seed fallback, and telling the session when its map
//! looks stale.

use std::collections::HashSet;
use std::net::SocketAddr;

use kv_components::overlay::core::Router;
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{Epoch, SlotMap};

use super::maps::usable;

/// One place to send a command.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A member of the key's group, per the slot map.
    Member {
        /// The key's group.
        group: GroupId,
        /// The member.
        node: NodeId,
        /// Its native client address.
        addr: SocketAddr,
    },
    /// A seed address, tried in turn because no map is known.
    Seed {
        /// The seed.
        addr: SocketAddr,
    },
}

impl Target {
    /// The address to connect to.
    pub(crate) fn addr(&self) -> SocketAddr {
        match *self {
            Target::Member { addr, .. } | Target::Seed { addr } => addr,
        }
    }
}

/// See the module documentation.
pub(crate) struct Routing {
    router: Router,
    seeds: Vec<SocketAddr>,
    /// Seeds that refused a command because they keep no data (the coordinator).
    no_data: HashSet<SocketAddr>,
    /// The seed tried next while no map is known; stays on a seed that answers.
    cursor: usize,
    /// Members that could not be reached since last heard from, to notice a whole group down.
    down: HashSet<NodeId>,
}

impl Routing {
    /// Routing over `seeds` (non-empty), with no map yet.
    pub(crate) fn new(seeds: Vec<SocketAddr>) -> Self {
        Routing {
            router: Router::new(1),
            seeds,
            no_data: HashSet::new(),
            cursor: 0,
            down: HashSet::new(),
        }
    }

    /// The map routed by (empty before one is learned).
    pub(crate) fn map(&self) -> &SlotMap {
        self.router.map()
    }

    /// The epoch of the map routed by (0: none).
    pub(crate) fn epoch(&self) -> Epoch {
        self.router.map().epoch
    }

    /// The seed addresses.
    pub(crate) fn seeds(&self) -> &[SocketAddr] {
        &self.seeds
    }

    /// Routes by `map` from now on if it is usable and newer; returns whether it was taken.
    pub(crate) fn install(&mut self, map: SlotMap) -> bool {
        if !usable(&map) || !self.router.install(map) {
            return false;
        }
        let map = self.router.map();
        self.down.retain(|n| map.node(*n).is_some());
        true
    }

    /// Where to send a command on `key` now; `None` when no map is known and every seed
    /// keeps no data.
    pub(crate) fn target(&self, key: &[u8]) -> Option<Target> {
        let map = self.router.map();
        if map.is_formed() {
            let route = self.router.route(key).ok()?;
            let addr = map.node(route.target)?.client;
            return Some(Target::Member {
                group: route.group,
                node: route.target,
                addr,
            });
        }
        let n = self.seeds.len();
        (0..n)
            .map(|i| self.seeds[(self.cursor + i) % n])
            .find(|a| !self.no_data.contains(a))
            .map(|addr| Target::Seed { addr })
    }

    /// `target` answered the command: it leads the key's group (or, without a map, it is a
    /// good seed to stay on).
    pub(crate) fn on_success(&mut self, target: &Target) {
        match *target {
            Target::Member { group, node, .. } => {
                self.down.remove(&node);
                self.router.on_leader(group, node);
            }
            Target::Seed { addr } => self.stay_at(addr),
        }
    }

    /// `target` is not the leader; `hint` is its guess. Returns whether the hint suggests the
    /// map is stale (it names a node that is not a member of the group).
    pub(crate) fn on_not_leader(&mut self, target: &Target, hint: Option<NodeId>) -> bool {
        match *target {
            Target::Member { group, node, .. } => {
                self.down.remove(&node);
                self.router.on_reachable(node);
                self.router.on_not_leader(group, hint);
                hint.is_some_and(|h| !self.router.map().members_of(group).contains(&h))
            }
            Target::Seed { addr } => {
                self.move_past(addr);
                false
            }
        }
    }

    /// `target` answered but cannot serve now (its group's configuration is sealed): try the
    /// next member, since the map is about to change anyway.
    pub(crate) fn on_sealed(&mut self, target: &Target) {
        self.on_not_leader(target, None);
    }

    /// `target` could not be reached or lost the connection. Returns whether every member of
    /// its group is now unreachable (the map may be stale).
    pub(crate) fn on_unreachable(&mut self, target: &Target) -> bool {
        match *target {
            Target::Member { group, node, .. } => {
                self.down.insert(node);
                self.router.on_unreachable(node);
                let members = self.router.map().members_of(group);
                members.iter().all(|m| self.down.contains(m))
            }
            Target::Seed { addr } => {
                self.move_past(addr);
                false
            }
        }
    }

    /// The seed at `addr` refused a command because it keeps no data: never send it
    /// commands again (it is still asked for maps).
    pub(crate) fn on_no_data(&mut self, addr: SocketAddr) {
        self.no_data.insert(addr);
        self.move_past(addr);
    }

    fn stay_at(&mut self, addr: SocketAddr) {
        if let Some(i) = self.seeds.iter().position(|a| *a == addr) {
            self.cursor = i;
        }
    }

    fn move_past(&mut self, addr: SocketAddr) {
        if let Some(i) = self.seeds.iter().position(|a| *a == addr) {
            self.cursor = (i + 1) % self.seeds.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use kv_components::bootstrap::formation::form;
    use kv_ports::membership::NodeInfo;

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn info(id: u64) -> NodeInfo {
        NodeInfo {
            id: NodeId(id),
            link: addr(8000 + id as u16),
            client: addr(9000 + id as u16),
            resp: None,
            http: None,
        }
    }

    /// Group 0 = {1, 2}, group 1 = {3, 4}.
    fn formed() -> SlotMap {
        form(&[info(1), info(2), info(3), info(4)], 2).unwrap()
    }

    /// A key owned by `group` in [`formed`].
    fn key_of(map: &SlotMap, group: u32) -> Vec<u8> {
        (0..)
            .map(|i| format!("k{i}").into_bytes())
            .find(|k| map.group_of_key(k) == Some(GroupId(group)))
            .unwrap()
    }

    #[test]
    fn without_a_map_seeds_rotate_and_no_data_seeds_are_skipped() {
        let mut r = Routing::new(vec![addr(1), addr(2), addr(3)]);
        assert_eq!(r.target(b"k"), Some(Target::Seed { addr: addr(1) }));
        r.on_no_data(addr(1));
        assert_eq!(r.target(b"k"), Some(Target::Seed { addr: addr(2) }));
        r.on_unreachable(&Target::Seed { addr: addr(2) });
        assert_eq!(r.target(b"k"), Some(Target::Seed { addr: addr(3) }));
        r.on_not_leader(&Target::Seed { addr: addr(3) }, None);
        assert_eq!(r.target(b"k"), Some(Target::Seed { addr: addr(2) }));
        r.on_success(&Target::Seed { addr: addr(2) });
        assert_eq!(r.target(b"k"), Some(Target::Seed { addr: addr(2) }));
        r.on_no_data(addr(2));
        r.on_no_data(addr(3));
        assert_eq!(r.target(b"k"), None);
    }

    #[test]
    fn with_a_map_keys_go_to_their_group() {
        let map = formed();
        let mut r = Routing::new(vec![addr(1)]);
        assert!(r.install(map.clone()));
        assert!(!r.install(map.clone()), "same epoch again");
        let k = key_of(&map, 1);
        let t = r.target(&k).unwrap();
        assert_eq!(
            t,
            Target::Member {
                group: GroupId(1),
                node: NodeId(3),
                addr: addr(9003)
            }
        );
        assert!(!r.on_not_leader(&t, Some(NodeId(4))));
        assert_eq!(r.target(&k).unwrap().addr(), addr(9004));
        assert!(r.on_not_leader(&r.target(&k).unwrap(), Some(NodeId(1))));
    }

    #[test]
    fn a_whole_group_down_is_noticed() {
        let map = formed();
        let mut r = Routing::new(vec![addr(1)]);
        r.install(map.clone());
        let k = key_of(&map, 0);
        let first = r.target(&k).unwrap();
        assert!(!r.on_unreachable(&first));
        let second = r.target(&k).unwrap();
        assert_ne!(first, second);
        assert!(r.on_unreachable(&second));
        r.on_success(&second);
        assert_eq!(r.target(&k), Some(second));
    }

    #[test]
    fn invalid_or_unformed_maps_are_refused() {
        let mut r = Routing::new(vec![addr(1)]);
        assert!(!r.install(SlotMap::empty(2)));
        let mut broken = formed();
        broken.epoch = Epoch(9);
        broken.groups[0].members.clear();
        assert!(!r.install(broken));
        assert_eq!(r.epoch(), Epoch(0));
    }
}
