//! The command-line surface of `kv`, as ../shared/INTERFACES.md fixes it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// `kv`: a partitioned, linearizable, replicated key-value store.
#[derive(Debug, Parser)]
#[command(name = "kv", version, about, long_about = None)]
#[command(arg_required_else_help = true, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Seed 002 start-up: read a coordinator or participant configuration file.
    #[arg(long = "config_path", value_name = "FILE")]
    pub config_path: Option<PathBuf>,
    /// What to run.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands of `kv`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a coordinator and N data nodes on 127.0.0.1 and open the REPL on them.
    Local(LocalArgs),
    /// Run the bootstrap coordinator.
    Bootstrap(BootstrapArgs),
    /// Run a data node.
    Node(NodeArgs),
    /// Run a data node that joins a running cluster, and print where it is placed.
    Join(JoinArgs),
    /// Take a data node out of the cluster (its group gets a standby, or shrinks).
    Leave(LeaveArgs),
    /// Interactive client.
    Repl(ReplArgs),
    /// Closed-loop load generator.
    Bench(BenchArgs),
    /// Check a recorded history for linearizability.
    Check(kv::checker::cli::CheckArgs),
    /// The scripted test harness of seed 003 (commands on standard input).
    Master,
}

/// Arguments of `kv local`.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Number of data nodes.
    #[arg(long, default_value_t = 6)]
    pub nodes: u32,
    /// Replicas per group (δ).
    #[arg(long, default_value_t = 3)]
    pub replication: u32,
    /// The coordinator listens on this port; node i uses P+i, P+100+i (RESP), P+200+i (HTTP).
    #[arg(long, default_value_t = 7000)]
    pub base_port: u16,
    /// Keep the cluster up until Ctrl-C or SIGTERM instead of opening the REPL.
    #[arg(long)]
    pub no_repl: bool,
}

/// Arguments of `kv bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Replicas per group (δ).
    #[arg(long)]
    pub replication: u32,
    /// Nodes to wait for before forming groups (default 2·δ).
    #[arg(long)]
    pub min_nodes: Option<u32>,
    /// How long a majority of the nodes must suspect a node before it is declared failed
    /// and replaced, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub grace_ms: u64,
}

/// Arguments of `kv node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Native protocol and inter-node address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The bootstrap coordinator (omit for seed 001: K, VIEW, IPPORT; VIEW[0] runs it).
    #[arg(long)]
    pub bootstrap: Option<SocketAddr>,
    /// Serve RESP (redis-cli) here.
    #[arg(long)]
    pub resp: Option<SocketAddr>,
    /// Serve HTTP here.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Directory for the node's files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Arguments of `kv join`: a data node like `kv node --bootstrap`, which also waits until
/// the coordinator has placed it (in a group, or as a standby) and prints where.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Native protocol and inter-node address.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The bootstrap coordinator of the running cluster.
    #[arg(long)]
    pub bootstrap: SocketAddr,
    /// Serve RESP (redis-cli) here.
    #[arg(long)]
    pub resp: Option<SocketAddr>,
    /// Serve HTTP here.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// How long to wait for the placement, in seconds (the node keeps running either way).
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// Arguments of `kv leave`: which node, and the coordinator that removes it.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["node", "addr"])))]
pub struct LeaveArgs {
    /// The bootstrap coordinator.
    #[arg(long)]
    pub bootstrap: SocketAddr,
    /// The node's id: as logs print it (n12345…), the bare number, or the short id `status`
    /// shows (n1a2b).
    #[arg(long)]
    pub node: Option<String>,
    /// An address the node listens on (native, RESP or HTTP).
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// How long to wait for the reconfiguration, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// Arguments of `kv repl`.
#[derive(Debug, Args)]
pub struct ReplArgs {
    /// A node or the coordinator.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub connect: SocketAddr,
}

/// Arguments of `kv bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A node or the coordinator.
    #[arg(long)]
    pub connect: SocketAddr,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 16)]
    pub clients: u32,
    /// Total operations.
    #[arg(long, conflicts_with = "duration")]
    pub ops: Option<u64>,
    /// Run for this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Operation mix, e.g. get=50,put=30,cas=10,del=10.
    #[arg(long, default_value = "get=50,put=30,cas=10,del=10")]
    pub mix: String,
    /// Value size in bytes.
    #[arg(long, default_value_t = 16)]
    pub value_size: usize,
    /// Record every operation in the history format.
    #[arg(long)]
    pub history: Option<PathBuf>,
}

impl Command {
    /// The command's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Local(_) => "local",
            Command::Bootstrap(_) => "bootstrap",
            Command::Node(_) => "node",
            Command::Join(_) => "join",
            Command::Leave(_) => "leave",
            Command::Repl(_) => "repl",
            Command::Bench(_) => "bench",
            Command::Check(_) => "check",
            Command::Master => "master",
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
