//! The seed 002 participant: a data node that joins through the coordinator.
//!
//! A participant's file names only itself and the coordinator, so it cannot compute the map
//! on its own: it checks in with the coordinator (at `coordinator_info`, where the front door
//! passes its native frames to the bootstrap coordinator) and waits there, retrying, until the
//! coordinator has heard from every participant its own file lists and forms one group of all
//! of them. After that the participant needs the coordinator only to hear of later maps: the
//! group elects its leader and serves without it.

use std::future::Future;
use std::net::SocketAddr;

use super::Seed002Error;
use crate::node::{Join, Node, NodeConfig};

/// Serves as the participant at `address` until `shutdown` completes or a component fails.
pub async fn run(
    address: SocketAddr,
    coordinator: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Seed002Error> {
    let node = Node::start(NodeConfig {
        listen: address,
        join: Join::Coordinator(coordinator.into()),
        resp: None,
        http: None,
    })
    .await?;
    tracing::info!(%address, %coordinator, node = %node.id, "seed 002 participant started");
    let failed = tokio::select! {
        () = shutdown => false,
        () = node.stopped() => true,
    };
    node.stop().await;
    tracing::info!("seed 002 participant stopped");
    if failed {
        return Err(Seed002Error::NodeFailed);
    }
    Ok(())
}
