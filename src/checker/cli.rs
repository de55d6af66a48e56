//! The `kv check` command: read a history, check it, print the verdict (first line) and an
//! explanation; the exit code carries the verdict for scripts.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::{check_history, render_html, render_report, History, Options, Progress, Verdict};

/// Exit code when the history is linearizable.
pub const EXIT_LINEARIZABLE: u8 = 0;
/// Exit code when it is not.
pub const EXIT_NOT_LINEARIZABLE: u8 = 1;
/// Exit code when the check timed out.
pub const EXIT_UNKNOWN: u8 = 2;
/// Exit code when the input cannot be read or parsed.
pub const EXIT_BAD_INPUT: u8 = 3;

/// Arguments of `kv check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// History file (JSON lines); `-` reads standard input.
    pub file: PathBuf,
    /// Write a self-contained HTML timeline of the offending key here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Give up after this many seconds and answer `unknown`.
    #[arg(long, value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Runs `kv check`; the exit code is the verdict.
pub fn run(args: &CheckArgs) -> ExitCode {
    let history = match read(&args.file) {
        Ok(history) => history,
        Err(message) => {
            eprintln!("kv check: {}: {message}", args.file.display());
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let options = Options {
        timeout: args.timeout.map(Duration::from_secs_f64),
        threads: args.threads,
        progress: Some(Box::new(print_progress)),
    };
    let verdict = check_history(&history, options);
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(render_report(&history, &verdict).as_bytes());
    let _ = stdout.flush();
    if let Some(path) = &args.html {
        if let Err(err) = std::fs::write(path, render_html(&history, &verdict)) {
            eprintln!("kv check: cannot write {}: {err}", path.display());
        }
    }
    ExitCode::from(match verdict {
        Verdict::Linearizable => EXIT_LINEARIZABLE,
        Verdict::NotLinearizable(_) => EXIT_NOT_LINEARIZABLE,
        Verdict::Unknown { .. } => EXIT_UNKNOWN,
    })
}

fn read(path: &Path) -> Result<History, String> {
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(BufReader::with_capacity(1 << 16, io::stdin().lock()))
    } else {
        let file = File::open(path).map_err(|err| format!("cannot open: {err}"))?;
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    History::parse(reader).map_err(|err| err.to_string())
}

fn print_progress(progress: &Progress) {
    eprintln!(
        "kv check: {}/{} keys checked ({:.0} s)",
        progress.keys_done,
        progress.keys_total,
        progress.elapsed.as_secs_f64()
    );
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..1e9).contains(&s) => Ok(s),
        _ => Err(format!("expected a number of seconds, found {text:?}")),
    }
}
