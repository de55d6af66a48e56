//! Waiting until every node holds a map: seed 001 answers `update_view` "once the view change
//! is successful on all nodes", and the coordinator answers once it has *sent* the new map.
//! Each node is asked for it (`GetMap` on its native endpoint) until it reports the map's
//! epoch or newer, all nodes at once, within a bound: a node that cannot be reached is the
//! failure detectors' business, not a reason to fail a change that is already made.

use std::time::Duration;

use futures::future::join_all;
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};
use tokio::time::{sleep, Instant};

use crate::coordinator::fetch_map;

/// How long the answer waits for the slowest node.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Between two questions to a node that does not hold the map yet.
const POLL: Duration = Duration::from_millis(20);

/// Resolves once every node of `map` holds `map`'s epoch or a newer one, or after `within`;
/// returns the nodes that did not report it in time.
pub async fn until_every_node_holds(map: &SlotMap, within: Duration) -> Vec<NodeInfo> {
    let deadline = Instant::now() + within;
    let epoch = map.epoch;
    let waits = map.nodes.iter().map(|node| async move {
        let held = holds(node, epoch, deadline).await;
        (!held).then(|| node.clone())
    });
    let late: Vec<NodeInfo> = join_all(waits).await.into_iter().flatten().collect();
    for node in &late {
        tracing::warn!(node = %node.id, addr = %node.client, %epoch,
            "node did not report the new map in time; answering anyway");
    }
    late
}

/// Asks `node` until it holds `epoch` or newer (true) or `deadline` passes (false).
async fn holds(node: &NodeInfo, epoch: Epoch, deadline: Instant) -> bool {
    let before = Epoch(epoch.0.saturating_sub(1));
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        if let Ok(Some(map)) = fetch_map(node.client, before, left).await {
            if map.epoch >= epoch {
                return true;
            }
        }
        sleep(POLL.min(left)).await;
    }
}
