//! The long-running commands of the `kv` binary: each turns parsed flags into a running
//! piece of the library and stops it cleanly on Ctrl-C, SIGTERM or (for children of
//! `kv local`) the parent's exit.

pub mod bench;
pub mod bootstrap;
pub mod join;
pub mod leave;
pub mod local;
pub mod node;
pub mod repl;
mod shutdown;

use std::process::ExitCode;

/// Logs to stderr at the level `RUST_LOG` asks for, else at `default` (servers say `info`;
/// interactive commands say `warn`, so log lines do not break into the REPL's prompt).
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs `body` on a multi-threaded runtime; an error is printed as one line and exits 1.
pub fn run_async<F>(body: F) -> ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kv: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv: {e:#}");
            ExitCode::FAILURE
        }
    }
}
