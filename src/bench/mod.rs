//! `kv bench`: a closed-loop load generator over [`KvService`] sessions.
//!
//! Each client owns one session (in the cluster, its own `(client id, seq)` stream) and issues
//! its next operation only when the previous one has answered, so the offered load adapts to
//! the store's speed and latencies are those a real client sees. The run reports throughput
//! and per-kind latency percentiles, and can record every operation in the history format
//! `kv check` reads, which is how the store's linearizability is tested under load.

mod client;
mod config;
mod history;
mod progress;
mod report;
mod stats;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;

pub use config::{BenchConfig, ConfigError, Kind, Mix, Stop};
pub use report::{BenchReport, KindReport, Latencies};

use crate::service::KvService;
use client::{Client, Shared};
use history::HistoryWriter;
use stats::Stats;

/// Why a bench run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No sessions were given, so there is no client to run.
    #[error("at least one client is needed (--clients)")]
    NoClients,
    /// The history file could not be created or written.
    #[error("history file {}: {source}", path.display())]
    History {
        /// The file named by `--history`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A client task panicked (a bug in a service implementation or here).
    #[error("a bench client failed: {0}")]
    Client(String),
}

/// Runs the bench: one closed-loop client per session until `config.stop`, then reports.
///
/// Returns once every operation has answered and the history, if any, is on disk.
pub async fn run(
    config: BenchConfig,
    sessions: Vec<Arc<dyn KvService>>,
) -> Result<BenchReport, BenchError> {
    config.validate()?;
    if sessions.is_empty() {
        return Err(BenchError::NoClients);
    }
    let history_error = |source| BenchError::History {
        path: config.history.clone().unwrap_or_default(),
        source,
    };
    let writer = match &config.history {
        Some(path) => Some(HistoryWriter::create(path).map_err(history_error)?),
        None => None,
    };
    let bar = progress::bar(config.stop, config.progress);
    let shared = Arc::new(Shared::new(
        config.stop,
        bar.clone(),
        writer.as_ref().map(HistoryWriter::sink),
    ));
    let clients = sessions.len();
    let stats = run_clients(&config, sessions, &shared).await?;
    let elapsed = shared.elapsed();
    bar.finish_and_clear();
    drop(shared);
    if let Some(writer) = writer {
        finish_history(writer).await.map_err(history_error)?;
    }
    Ok(BenchReport::new(clients, elapsed, &config.mix, &stats))
}

/// Spawns one task per client and merges their statistics as they finish.
async fn run_clients(
    config: &BenchConfig,
    sessions: Vec<Arc<dyn KvService>>,
    shared: &Arc<Shared>,
) -> Result<Stats, BenchError> {
    let mut tasks = JoinSet::new();
    for (index, session) in sessions.into_iter().enumerate() {
        let client = Client::new(index, session, config);
        tasks.spawn(client.run(Arc::clone(shared)));
    }
    let mut stats = Stats::default();
    while let Some(done) = tasks.join_next().await {
        let client = done.map_err(|e| BenchError::Client(e.to_string()))?;
        stats.merge(&client);
    }
    Ok(stats)
}

/// Flushes the history off the async runtime (the writer thread may still be writing).
async fn finish_history(writer: HistoryWriter) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
}
