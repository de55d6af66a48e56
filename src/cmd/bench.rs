//! `kv bench`: closed-loop load on a cluster.

use std::sync::Arc;

use anyhow::Context;
use kv::bench::{self, BenchConfig, Mix, Stop};
use kv::client::{Client, ClientConfig};
use kv::service::KvService;

use crate::cli::BenchArgs;

/// Runs the bench and prints its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let stop = Stop::from_flags(args.ops, args.duration)?;
    let mut config = BenchConfig::new(stop);
    config.keys = args.keys;
    config.mix = args.mix.parse::<Mix>()?;
    config.value_size = args.value_size;
    config.history = args.history;
    if args.clients == 0 {
        anyhow::bail!("--clients must be at least 1");
    }
    let mut sessions: Vec<Arc<dyn KvService>> = Vec::new();
    for _ in 0..args.clients {
        let client = Client::connect([args.connect], ClientConfig::default())?;
        sessions.push(Arc::new(client));
    }
    let report = bench::run(config, sessions).await.context("bench failed")?;
    println!("{}", report.render());
    Ok(())
}
