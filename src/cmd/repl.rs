//! `kv repl`: the interactive client on a cluster.

use std::net::SocketAddr;
use std::sync::Arc;

use kv::client::{Client, ClientConfig};
use kv::repl::{self, ReplOptions};

use crate::cli::ReplArgs;

/// Opens the REPL on the cluster reached through `args.connect`.
pub async fn run(args: ReplArgs) -> anyhow::Result<()> {
    open(vec![args.connect]).await
}

/// Opens the REPL with `seeds` as the client's entry points.
pub async fn open(seeds: Vec<SocketAddr>) -> anyhow::Result<()> {
    let client = Client::connect(seeds, ClientConfig::default())?;
    repl::run(Arc::new(client), ReplOptions::default()).await?;
    Ok(())
}
