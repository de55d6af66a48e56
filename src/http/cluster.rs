//! Two [`ClusterInfo`]s: a data node's ([`NodeCluster`]) and a fixed in-memory one
//! ([`StaticCluster`]) for tests and single-process set-ups.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{Epoch, SlotMap};
use tokio::sync::watch;

use super::settle::{until_every_node_holds, SETTLE_TIMEOUT};
use super::status::status_json;
use super::{ClusterInfo, ViewChange, ViewChanged, FIXED_VIEW};
use crate::client::{Client, ClientConfig};
use crate::coordinator::CoordinatorAddr;
use crate::native::{AdminAnswer, AdminRequest, NodeRef as AdminNode};
use crate::node::relay;

/// A data node's view of the cluster: the map it routes by (from the node's map watch) and a
/// status assembled by asking every node, like the REPL's `status`, through a client of the
/// node's own native endpoint. A view change is relayed to the node's coordinator as an
/// operator's request; a node serving a static map (no coordinator) answers [`FIXED_VIEW`].
pub struct NodeCluster {
    me: NodeId,
    maps: watch::Receiver<SlotMap>,
    client: Option<Arc<Client>>,
    coordinator: Option<CoordinatorAddr>,
}

impl NodeCluster {
    /// The view of node `me`, following `maps`, probing the cluster through the native endpoint
    /// at `native` (the node's own). Its view is fixed until [`with_coordinator`] names a
    /// coordinator to relay view changes to.
    ///
    /// [`with_coordinator`]: NodeCluster::with_coordinator
    pub fn new(me: NodeId, maps: watch::Receiver<SlotMap>, native: SocketAddr) -> NodeCluster {
        // Cannot fail: one address is given. Without a client, /status shows the map alone.
        let client = Client::connect([native], ClientConfig::default())
            .ok()
            .map(Arc::new);
        NodeCluster {
            me,
            maps,
            client,
            coordinator: None,
        }
    }

    /// Relays view changes to the coordinator at `coordinator` (`None`: the view is fixed).
    pub fn with_coordinator(mut self, coordinator: Option<CoordinatorAddr>) -> NodeCluster {
        self.coordinator = coordinator;
        self
    }
}

impl ClusterInfo for NodeCluster {
    fn map(&self) -> SlotMap {
        self.maps.borrow().clone()
    }

    fn me(&self) -> Option<NodeId> {
        Some(self.me)
    }

    fn locate(&self, key: &[u8]) -> (Epoch, Option<GroupId>) {
        let map = self.maps.borrow();
        (map.epoch, map.group_of_key(key))
    }

    fn status_json(&self) -> BoxFuture<'static, serde_json::Value> {
        let map = self.map();
        let me = self.me;
        let client = self.client.clone();
        Box::pin(async move {
            let probe = match &client {
                Some(client) => client.cluster_status().await.map_err(|e| e.to_string()),
                None => Err("no client for the probe".to_owned()),
            };
            match probe {
                Ok(status) => status_json(&map, Some(me), Some(&status), None),
                Err(error) => status_json(&map, Some(me), None, Some(&error)),
            }
        })
    }

    fn update_view(&self, change: ViewChange) -> BoxFuture<'static, Result<ViewChanged, String>> {
        let Some(coordinator) = self.coordinator else {
            return Box::pin(async { Err(FIXED_VIEW.to_owned()) });
        };
        Box::pin(change_view(coordinator, change))
    }
}

/// Asks the coordinator for a seed 001 view change and describes the map it answers with,
/// once every node of that map holds it. `add` waits until the node at the address (which
/// checks in by itself when started) is placed; `remove` takes it out.
async fn change_view(
    coordinator: CoordinatorAddr,
    change: ViewChange,
) -> Result<ViewChanged, String> {
    let request = match change {
        ViewChange::Add(addr) => AdminRequest::AwaitNode(AdminNode::Addr(addr)),
        ViewChange::Remove(addr) => AdminRequest::Remove(AdminNode::Addr(addr)),
    };
    let added = match &request {
        AdminRequest::AwaitNode(node) => Some(*node),
        AdminRequest::Remove(_) => None,
    };
    match relay(Some(coordinator), request).await {
        AdminAnswer::Done(map) => {
            until_every_node_holds(&map, SETTLE_TIMEOUT).await;
            Ok(view_changed(&map, added))
        }
        AdminAnswer::Refused(why) => Err(why),
    }
}

/// The seed 001 answer for `map`: its partition count, and the partition of the `added` node
/// (`None`: a standby, or a removal).
fn view_changed(map: &SlotMap, added: Option<AdminNode>) -> ViewChanged {
    let partition_id = added
        .and_then(|node| map.nodes.iter().find(|info| node.names(info)))
        .and_then(|info| map.group_of_node(info.id));
    ViewChanged {
        partition_id,
        number_of_partitions: map.groups.len(),
    }
}

/// A cluster view held in memory: a map set by its owner, no probe (the status shows the map
/// alone) and no view changes ([`FIXED_VIEW`]).
pub struct StaticCluster {
    map: Mutex<SlotMap>,
    me: Option<NodeId>,
}

impl StaticCluster {
    /// A view of `map` from node `me` (`None`: a front end outside the cluster).
    pub fn new(map: SlotMap, me: Option<NodeId>) -> StaticCluster {
        StaticCluster {
            map: Mutex::new(map),
            me,
        }
    }

    /// Replaces the map.
    pub fn set_map(&self, map: SlotMap) {
        *self.map.lock().unwrap_or_else(|e| e.into_inner()) = map;
    }
}

impl ClusterInfo for StaticCluster {
    fn map(&self) -> SlotMap {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn me(&self) -> Option<NodeId> {
        self.me
    }

    fn locate(&self, key: &[u8]) -> (Epoch, Option<GroupId>) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        (map.epoch, map.group_of_key(key))
    }

    fn status_json(&self) -> BoxFuture<'static, serde_json::Value> {
        let status = status_json(&self.map(), self.me, None, None);
        Box::pin(async move { status })
    }

    fn update_view(&self, _: ViewChange) -> BoxFuture<'static, Result<ViewChanged, String>> {
        Box::pin(async { Err(FIXED_VIEW.to_owned()) })
    }
}

#[cfg(test)]
mod tests {
    use kv_components::bootstrap::formation::form;
    use kv_ports::membership::NodeInfo;

    use super::*;

    /// Seven nodes with HTTP addresses, formed into groups of 3 (one standby).
    fn map() -> SlotMap {
        let nodes: Vec<NodeInfo> = (1..=7u16)
            .map(|i| NodeInfo {
                http: Some(SocketAddr::from(([127, 0, 0, 1], 8000 + i))),
                ..NodeInfo::at(NodeId(u64::from(i)), SocketAddr::from(([127, 0, 0, 1], i)))
            })
            .collect();
        form(&nodes, 3).expect("forms")
    }

    #[test]
    fn a_view_change_answers_from_the_coordinators_map() {
        let map = map();
        assert_eq!(map.groups.len(), 2);
        let placed = map.groups[1].members[0];
        let http = map.node(placed).unwrap().http.unwrap();
        let added = view_changed(&map, Some(AdminNode::Addr(http)));
        assert_eq!(added.partition_id, Some(map.groups[1].id));
        assert_eq!(added.number_of_partitions, 2);
        let standby = map.node(map.standbys[0]).unwrap().http.unwrap();
        let spare = view_changed(&map, Some(AdminNode::Addr(standby)));
        assert_eq!(spare.partition_id, None, "a standby has no partition");
        let removed = view_changed(&map, None);
        assert_eq!(
            (removed.partition_id, removed.number_of_partitions),
            (None, 2)
        );
    }

    #[tokio::test]
    async fn a_static_view_cannot_change() {
        let (_tx, maps) = watch::channel(map());
        let native = SocketAddr::from(([127, 0, 0, 1], 1));
        let cluster = NodeCluster::new(NodeId(1), maps, native);
        let change = ViewChange::Add(native);
        assert_eq!(
            cluster.update_view(change).await,
            Err(FIXED_VIEW.to_owned())
        );
    }
}
