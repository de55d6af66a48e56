//! `kv bootstrap`: the coordinator process.

use anyhow::{bail, Context};
use kv_components::bootstrap::core::CoordinatorConfig;
use tokio::net::TcpListener;

use crate::cli::BootstrapArgs;

/// Serves the coordinator until asked to stop.
pub async fn run(args: BootstrapArgs) -> anyhow::Result<()> {
    if args.replication == 0 {
        bail!("--replication must be at least 1");
    }
    let mut config = CoordinatorConfig::new(args.replication);
    if let Some(n) = args.min_nodes {
        if n < args.replication {
            bail!(
                "--min-nodes {n} is below --replication {}: no group could form",
                args.replication
            );
        }
        config.min_nodes = n as usize;
    }
    config.grace_ticks = grace_ticks(args.grace_ms);
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        replication = args.replication,
        min_nodes = config.min_nodes,
        grace_ms = args.grace_ms,
        "coordinator waiting for nodes"
    );
    kv::coordinator::serve(listener, config, super::shutdown::requested()).await?;
    Ok(())
}

/// The grace period in the coordinator's ticks, rounded up (at least one tick).
fn grace_ticks(ms: u64) -> u32 {
    let tick = kv::coordinator::server::TICK.as_millis() as u64;
    u32::try_from(ms.div_ceil(tick).max(1)).unwrap_or(u32::MAX)
}
