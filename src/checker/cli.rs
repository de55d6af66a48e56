//! The `kv check` command.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `kv check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// History file (JSON lines); `-` reads standard input.
    pub file: PathBuf,
    /// Write a self-contained HTML timeline of the offending key here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Give up after this many seconds and answer `unknown`.
    #[arg(long)]
    pub timeout: Option<f64>,
}

/// Runs `kv check`; the exit code is the verdict.
pub fn run(_args: &CheckArgs) -> ExitCode {
    eprintln!("kv check: not built yet");
    ExitCode::from(2)
}
