//! The `kv` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => kv::checker::cli::run(&args),
        other => not_built(other.name()),
    }
}

/// `kv`: a partitioned, linearizable, replicated key-value store.
#[derive(Debug, Parser)]
#[command(name = "kv", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a coordinator and N data nodes on 127.0.0.1 and open the REPL on them.
    Local,
    /// Run the bootstrap coordinator.
    Bootstrap,
    /// Run a data node.
    Node,
    /// Interactive client.
    Repl,
    /// Closed-loop load generator.
    Bench,
    /// Check a recorded history for linearizability.
    Check(kv::checker::cli::CheckArgs),
    /// The scripted test harness of seed 003 (commands on standard input).
    Master,
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Local => "local",
            Command::Bootstrap => "bootstrap",
            Command::Node => "node",
            Command::Repl => "repl",
            Command::Bench => "bench",
            Command::Check(_) => "check",
            Command::Master => "master",
        }
    }
}

fn not_built(name: &str) -> ExitCode {
    eprintln!("kv {name}: not built yet");
    ExitCode::from(2)
}
