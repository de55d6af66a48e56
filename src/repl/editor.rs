//! The interactive loop: rustyline for editing and history, [`execute_line`] for the rest.
//!
//! rustyline blocks the thread while it reads, so each read runs on tokio's blocking pool
//! and hands the editor back afterwards; commands run on the async runtime as usual.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

use super::{execute_line, Outcome, ReplBackend};

/// Shown when Ctrl-C is pressed: it clears the line but does not leave.
const INTERRUPT_HINT: &str = "(to leave, type quit or press Ctrl-D)";

/// How the REPL looks and where it keeps its history.
#[derive(Clone, Debug)]
pub struct ReplOptions {
    /// The prompt, e.g. `kv> `.
    pub prompt: String,
    /// Where line history is loaded from and saved to; `None` keeps it in memory only.
    pub history_file: Option<PathBuf>,
}

impl Default for ReplOptions {
    /// The `kv> ` prompt and history in `$HOME/.kv_history`.
    fn default() -> Self {
        ReplOptions {
            prompt: "kv> ".to_owned(),
            history_file: history_path(),
        }
    }
}

/// `$HOME/.kv_history`, when `HOME` is set.
pub fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".kv_history"))
}

/// Why the REPL stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ReplError {
    /// The terminal could not be set up or read.
    #[error("line editor: {0}")]
    Editor(#[from] ReadlineError),
    /// The blocking reader task died.
    #[error("line reader task failed: {0}")]
    Reader(String),
}

/// Runs the REPL on the terminal until `quit`, `exit` or Ctrl-D. History file problems are
/// ignored: a read-only home must not keep anyone from using the store.
pub async fn run(backend: Arc<dyn ReplBackend>, options: ReplOptions) -> Result<(), ReplError> {
    let mut editor = DefaultEditor::new()?;
    if let Some(path) = &options.history_file {
        let _ = editor.load_history(path);
    }
    // The editor travels to the blocking pool for each read; it is lost only if a read panics.
    let mut slot = Some(editor);
    let result = read_eval_print(&mut slot, backend.as_ref(), &options.prompt).await;
    if let (Some(editor), Some(path)) = (&mut slot, &options.history_file) {
        let _ = editor.save_history(path);
    }
    result
}

async fn read_eval_print(
    slot: &mut Option<DefaultEditor>,
    backend: &dyn ReplBackend,
    prompt: &str,
) -> Result<(), ReplError> {
    loop {
        match read_line(slot, prompt).await? {
            Ok(line) => {
                if let (Some(editor), false) = (slot.as_mut(), line.trim().is_empty()) {
                    let _ = editor.add_history_entry(line.as_str());
                }
                match execute_line(&line, backend).await {
                    Outcome::Print(text) => say(&text),
                    Outcome::Silent => {}
                    Outcome::Quit => return Ok(()),
                }
            }
            Err(ReadlineError::Interrupted) => say(INTERRUPT_HINT),
            Err(ReadlineError::Eof) => return Ok(()),
            Err(other) => return Err(other.into()),
        }
    }
}

/// Prints a line; a closed stdout is not worth a panic (the next read ends the session).
fn say(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Reads one line on the blocking pool, then puts the editor back into `slot`.
async fn read_line(
    slot: &mut Option<DefaultEditor>,
    prompt: &str,
) -> Result<rustyline::Result<String>, ReplError> {
    let mut editor = slot
        .take()
        .ok_or_else(|| ReplError::Reader("line editor lost".to_owned()))?;
    let prompt = prompt.to_owned();
    let (editor, line) = tokio::task::spawn_blocking(move || {
        let line = editor.readline(&prompt);
        (editor, line)
    })
    .await
    .map_err(|e| ReplError::Reader(e.to_string()))?;
    *slot = Some(editor);
    Ok(line)
}
