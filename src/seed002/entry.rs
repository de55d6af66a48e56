//! The process around [`run`](super::run), shared by `kv --config_path` and
//! `kvstore2pcsystem --config_path`: read the file, log, run until Ctrl-C or SIGTERM.

use std::path::Path;
use std::process::ExitCode;

use super::Config;

/// Runs the seed 002 process the file at `config_path` describes. Errors (a malformed file
/// among them) are one line on stderr prefixed with `program`, and exit code 1.
pub fn main(program: &str, config_path: &Path) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => return fail(program, &e),
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(program, &format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(super::run(config, stop_requested())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(program, &e),
    }
}

fn fail(program: &str, error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("{program}: {error}");
    ExitCode::FAILURE
}

/// Logs to stderr at the level `RUST_LOG` asks for, else `info`, as the other servers do.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_requested() {
    let terminate = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        () = terminate => tracing::info!("terminated; stopping"),
    }
}
