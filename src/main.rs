//! The `kv` command line.

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match (cli.command, cli.config_path) {
        (Some(command), _) => command,
        (None, Some(path)) => return kv::seed002::main("kv", &path),
        // clap's arg_required_else_help answers a bare `kv` before we get here.
        (None, None) => return not_built("(no command)"),
    };
    if let Command::Check(args) = &command {
        return kv::checker::cli::run(args);
    }
    let servers = matches!(
        command,
        Command::Bootstrap(_) | Command::Node(_) | Command::Join(_)
    );
    cmd::init_logging(if servers { "info" } else { "warn" });
    match command {
        Command::Local(args) => cmd::run_async(cmd::local::run(args)),
        Command::Bootstrap(args) => cmd::run_async(cmd::bootstrap::run(args)),
        Command::Node(args) => cmd::run_async(cmd::node::run(args)),
        Command::Join(args) => cmd::run_async(cmd::join::run(args)),
        Command::Leave(args) => cmd::run_async(cmd::leave::run(args)),
        Command::Repl(args) => cmd::run_async(cmd::repl::run(args)),
        Command::Bench(args) => cmd::run_async(cmd::bench::run(args)),
        other => not_built(other.name()),
    }
}

/// Commands whose issue has not landed say so plainly and fail, rather than pretend.
fn not_built(what: &str) -> ExitCode {
    eprintln!("kv {what}: not built yet in this version of kv (see README: Status)");
    ExitCode::from(2)
}
