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

pub use kv::process::init_logging;

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
