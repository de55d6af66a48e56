//! Seed 001's start-up mode: `kv node` with `K`, `VIEW` and `IPPORT` in its environment and
//! no `--bootstrap` forms the cluster from that static view, with no coordinator process.
//!
//! Every node is given the same `VIEW` and computes the same slot map on its own, so nothing
//! needs to be agreed at run time:
//!
//! - node ids come from `VIEW` positions: the i-th address (1-based) is node `i`;
//! - the map is [`form`]`(nodes in VIEW order, K)`, the function the bootstrap coordinator
//!   uses: the first K nodes are partition 0, the next K partition 1, ...; the
//!   `|VIEW| mod K` nodes left over are standbys, which seed 001 calls proxies (they serve
//!   every key by forwarding it to its partition);
//! - every node is reached at its one `VIEW` address for everything: the node-to-node link,
//!   the native protocol and seed 001's HTTP API share the port (see [`crate::node::mux`]).
//!
//! A static view is fixed: `update_view` answers an error ([`STATIC_VIEW`]); changing the
//! cluster at run time needs nodes started with `--bootstrap`. A node that restarts comes
//! back under the same id with an empty memory, so restarts are not supported in this mode
//! (the coordinator mode gives a restarted process a fresh id).

mod view;

use std::net::SocketAddr;

use kv_components::bootstrap::formation::{form, FormError};
use kv_ports::ids::NodeId;
use kv_ports::membership::{NodeInfo, SlotMap};

pub use view::{StaticView, ViewError, IPPORT, K, VIEW};

use crate::node::{Join, NodeConfig};

/// What `update_view` answers on a node of a static view.
pub const STATIC_VIEW: &str = "this node was started from a static view (K, VIEW, IPPORT), \
     which cannot change; update_view needs nodes started in --bootstrap mode";

impl StaticView {
    /// The id of the node at `VIEW` position `index` (0-based): positions count from 1, as
    /// id 0 is reserved.
    pub fn id_at(index: usize) -> NodeId {
        NodeId(index as u64 + 1)
    }

    /// This node's id.
    pub fn my_id(&self) -> NodeId {
        StaticView::id_at(self.position())
    }

    /// Every node of the view, reached at its one address for the link, the native protocol
    /// and HTTP.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.view
            .iter()
            .enumerate()
            .map(|(i, &addr)| NodeInfo {
                http: Some(addr),
                ..NodeInfo::at(StaticView::id_at(i), addr)
            })
            .collect()
    }

    /// The slot map every node of this view computes.
    pub fn map(&self) -> Result<SlotMap, FormError> {
        form(&self.nodes(), self.k)
    }

    /// The node's configuration: the map, its id, listening on `listen` (normally `IPPORT`)
    /// for everything, HTTP included, and RESP on `resp` if given.
    pub fn node_config(
        &self,
        listen: SocketAddr,
        resp: Option<SocketAddr>,
    ) -> Result<NodeConfig, FormError> {
        Ok(NodeConfig {
            listen,
            join: Join::Static {
                map: self.map()?,
                id: self.my_id(),
            },
            resp,
            http: Some(listen),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_ports::ids::GroupId;

    fn view(n: usize, k: u32, me: usize) -> StaticView {
        let view: Vec<SocketAddr> = (0..n)
            .map(|i| format!("10.0.0.{}:8080", 21 + i).parse().unwrap())
            .collect();
        StaticView {
            k,
            me: view[me],
            view,
        }
    }

    #[test]
    fn every_node_computes_the_same_map() {
        let maps: Vec<SlotMap> = (0..4).map(|me| view(4, 2, me).map().unwrap()).collect();
        assert!(maps.windows(2).all(|w| w[0] == w[1]));
        let map = &maps[0];
        assert_eq!(map.members_of(GroupId(0)), &[NodeId(1), NodeId(2)]);
        assert_eq!(map.members_of(GroupId(1)), &[NodeId(3), NodeId(4)]);
        assert!(map.standbys.is_empty());
        let ids: Vec<NodeId> = (0..4).map(|me| view(4, 2, me).my_id()).collect();
        assert_eq!(ids, [NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
    }

    #[test]
    fn spare_nodes_are_standbys() {
        let map = view(7, 2, 6).map().unwrap();
        assert_eq!(map.groups.len(), 3);
        assert_eq!(map.standbys, vec![NodeId(7)]);
        assert_eq!(map.group_of_node(NodeId(7)), None);
    }

    #[test]
    fn nodes_are_reached_at_their_view_address() {
        let v = view(4, 2, 1);
        let config = v.node_config(v.me, None).unwrap();
        assert_eq!(config.http, Some(v.me));
        let Join::Static { map, id } = config.join else {
            panic!("a static join")
        };
        let me = map.node(id).unwrap();
        assert_eq!((me.link, me.client, me.http), (v.me, v.me, Some(v.me)));
    }
}
