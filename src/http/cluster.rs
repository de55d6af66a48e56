//! Three [`ClusterInfo`]s: a data node's ([`NodeCluster`]), a wrapper refusing view changes
//! ([`FixedView`], the seed 001 static view) and a fixed in-memory one ([`StaticCluster`]) for
//! tests and single-process set-ups.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{Epoch, SlotMap};
use tokio::sync::watch;

use super::status::status_json;
use super::{ClusterInfo, ViewChange, ViewChanged, FIXED_VIEW};
use crate::client::{Client, ClientConfig, Connection};
use crate::native::{AdminAnswer, AdminRequest, NodeRef as AdminNode, StatusReport};
use crate::node::relay;

/// A data node's view of the cluster: the map it routes by (from the node's map watch) and a
/// status assembled by asking every node, like the REPL's `status`, through a client of the
/// node's own native endpoint. A view change is relayed to the node's coordinator as an
/// operator's request; a node serving a static map (no coordinator) answers [`FIXED_VIEW`].
pub struct NodeCluster {
    me: NodeId,
    maps: watch::Receiver<SlotMap>,
    client: Option<Arc<Client>>,
    coordinator: Option<SocketAddr>,
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
    pub fn with_coordinator(mut self, coordinator: Option<SocketAddr>) -> NodeCluster {
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

/// Asks the coordinator for a seed 001 view change and describes the map it answers with.
/// `add` waits until the node at the address (which checks in by itself when started with
/// `--bootstrap`) is placed; `remove` takes it out.
async fn change_view(coordinator: SocketAddr, change: ViewChange) -> Result<ViewChanged, String> {
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
            reached_everywhere(&map).await;
            Ok(view_changed(&map, added))
        }
        AdminAnswer::Refused(why) => Err(why),
    }
}

/// How long a view change waits for the nodes to route by the new map.
const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// Waits until every node of `map` routes by it (or a newer map), for at most
/// [`PUBLISH_WAIT`]: seed 001 answers a view change once it completed on all nodes, while the
/// coordinator answers once it has sent the map. A node that does not say so in time (it may
/// have failed) holds the answer up no longer.
async fn reached_everywhere(map: &SlotMap) {
    let deadline = tokio::time::Instant::now() + PUBLISH_WAIT;
    for node in &map.nodes {
        while !routes_by(node.client, map.epoch).await {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(node = %node.id, epoch = %map.epoch, "view change answered before every node had the map");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Whether the node at `addr` says it routes by `epoch` or a newer map.
async fn routes_by(addr: SocketAddr, epoch: Epoch) -> bool {
    let ask = async {
        let mut conn = Connection::open(addr, Duration::from_millis(500))
            .await
            .ok()?;
        conn.fetch_status().await.ok()
    };
    match tokio::time::timeout(Duration::from_secs(1), ask).await {
        Ok(Some(StatusReport::Node(s))) => s.epoch >= epoch,
        _ => false,
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

/// Another [`ClusterInfo`] whose view cannot change: everything is asked of the inner one,
/// except [`ClusterInfo::update_view`], which answers the error text given (for a node of the
/// seed 001 static view, [`crate::seed001::STATIC_VIEW`]).
pub struct FixedView<C> {
    inner: C,
    why: &'static str,
}

impl<C: ClusterInfo> FixedView<C> {
    /// `inner`, with view changes refused saying `why`.
    pub fn new(inner: C, why: &'static str) -> FixedView<C> {
        FixedView { inner, why }
    }
}

impl<C: ClusterInfo> ClusterInfo for FixedView<C> {
    fn map(&self) -> SlotMap {
        self.inner.map()
    }

    fn me(&self) -> Option<NodeId> {
        self.inner.me()
    }

    fn locate(&self, key: &[u8]) -> (Epoch, Option<GroupId>) {
        self.inner.locate(key)
    }

    fn status_json(&self) -> BoxFuture<'static, serde_json::Value> {
        self.inner.status_json()
    }

    fn update_view(&self, _: ViewChange) -> BoxFuture<'static, Result<ViewChanged, String>> {
        let why = self.why;
        Box::pin(async move { Err(why.to_owned()) })
    }
}
