//! `kv node`: a data node process.

use anyhow::{bail, Context};
use kv::node::{Join, Node, NodeConfig};

use crate::cli::NodeArgs;

/// Runs a data node until asked to stop or until one of its components fails.
pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let (Some(listen), Some(bootstrap)) = (args.listen, args.bootstrap) else {
        bail!("kv node needs --listen ADDR and --bootstrap ADDR");
    };
    if args.data_dir.is_some() {
        tracing::warn!("--data-dir is accepted but unused: nodes keep state in memory, and a restarted node joins as a new node");
    }
    let config = NodeConfig {
        listen,
        join: Join::Coordinator(bootstrap),
        resp: args.resp,
        http: args.http,
    };
    let node = Node::start(config).await.context("cannot start the node")?;
    let failed = tokio::select! {
        () = super::shutdown::requested() => false,
        () = node.stopped() => true,
    };
    node.stop().await;
    if failed {
        bail!("a component of the node failed; see the log");
    }
    Ok(())
}
