//! `kvstore2pcsystem --config_path FILE`: seed 002's program name for the coordinator and
//! participant processes; the same code as `kv --config_path FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Seed 002's key-value store: a coordinator or a participant, as the configuration says.
#[derive(Debug, Parser)]
#[command(name = "kvstore2pcsystem", version, about, long_about = None)]
struct Args {
    /// The configuration file (`mode coordinator|participant`, `coordinator_info`,
    /// `participant_info`).
    #[arg(long = "config_path", value_name = "FILE")]
    config_path: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    kv::seed002::main("kvstore2pcsystem", &args.config_path)
}
