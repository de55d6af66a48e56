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
    crate::process::init_logging("info");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(program, &format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(super::run(config, crate::process::stop_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(program, &e),
    }
}

fn fail(program: &str, error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("{program}: {error}");
    ExitCode::FAILURE
}
