//! Helpers shared by the bootstrap tests.

use kv_ports::ids::NodeId;
use kv_ports::membership::NodeInfo;

/// The addresses of node `id` on loopback.
pub fn info(id: u64) -> NodeInfo {
    let port = 20_000 + id as u16;
    NodeInfo {
        id: NodeId(id),
        link: ([127, 0, 0, 1], port).into(),
        client: ([127, 0, 0, 1], port + 1000).into(),
        resp: None,
        http: None,
    }
}

/// Nodes 1..=n in that order.
pub fn infos(n: u64) -> Vec<NodeInfo> {
    (1..=n).map(info).collect()
}
