//! `kv repl`: the interactive client.
//!
//! The line handling ([`execute_line`]) is a pure async function of the line and a
//! [`ReplBackend`], so every command, error message and edge case is tested without a
//! terminal; [`run`] only adds rustyline's editing and history around it.
//!
//! Commands: `get KEY`, `put KEY VALUE`, `cas KEY EXPECTED NEW`, `del KEY`, `status`,
//! `leave NODE`, `help`, `quit`/`exit` (command words in any case). Values with spaces go in double or single
//! quotes, with backslash escapes inside quotes. In `cas`, the bare word `nil` as EXPECTED
//! means "the key is absent"; `"nil"` (quoted) is the three-letter string.

mod command;
mod editor;
mod parse;
mod render;

use std::future::Future;
use std::pin::Pin;

pub use command::{help_text, parse_line, Command, CommandError};
pub use editor::{history_path, run, ReplError, ReplOptions};
pub use parse::{split_words, ParseError, Word};

use crate::service::{KvService, MemoryService, ServiceError};

/// A boxed future of the cluster's status text.
pub type StatusPending<'a> =
    Pin<Box<dyn Future<Output = Result<String, ServiceError>> + Send + 'a>>;

/// What the REPL talks to: a [`KvService`] for the key commands plus a status report and
/// membership commands, which are about the cluster rather than any key and so are not part
/// of the service seam.
pub trait ReplBackend: KvService {
    /// Describes the cluster (epoch, groups, members, leaders, standbys), ready to print.
    fn status(&self) -> StatusPending<'_>;

    /// Takes the node `node` (as the user typed it) out of the cluster; the text says what
    /// changed. Backends without a cluster refuse.
    fn leave(&self, node: String) -> StatusPending<'_> {
        let _ = node;
        Box::pin(async {
            Err(ServiceError::Rejected(
                "there is no cluster to leave here".to_owned(),
            ))
        })
    }
}

impl ReplBackend for MemoryService {
    fn status(&self) -> StatusPending<'_> {
        Box::pin(async { Ok("in-memory store: one process, no groups".to_owned()) })
    }
}

/// What the REPL should do after a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Print this text (one line or more, without a trailing newline).
    Print(String),
    /// Print nothing (blank line).
    Silent,
    /// Leave the REPL.
    Quit,
}

/// Handles one typed line. Never panics: every input becomes either output or an
/// `(error) ...` line.
pub async fn execute_line(line: &str, backend: &dyn ReplBackend) -> Outcome {
    let command = match parse_line(line) {
        Ok(command) => command,
        Err(e) => return Outcome::Print(render::input_error(&e.to_string())),
    };
    let text = match command {
        Command::Empty => return Outcome::Silent,
        Command::Quit => return Outcome::Quit,
        Command::Help => help_text(),
        Command::Status => backend
            .status()
            .await
            .unwrap_or_else(|e| render::service_error(&e)),
        Command::Leave(node) => backend
            .leave(node)
            .await
            .unwrap_or_else(|e| render::service_error(&e)),
        Command::Op(op) => match backend.execute(op).await {
            Ok(result) => render::result(&result),
            Err(e) => render::service_error(&e),
        },
    };
    Outcome::Print(text)
}
