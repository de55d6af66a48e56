//! What a line asks for: words checked against each command's arguments and size limits.

use bytes::Bytes;
use kv_ports::kv::{KvOp, MAX_KEY_BYTES, MAX_VALUE_BYTES};

use super::parse::{split_words, ParseError, Word};
use super::render;

/// A parsed REPL command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A blank line: nothing to do.
    Empty,
    /// A key-value operation to send to the store.
    Op(KvOp),
    /// Show the cluster's layout.
    Status,
    /// Take a node out of the cluster (named by address or id, as typed).
    Leave(String),
    /// Show the command summary.
    Help,
    /// Leave the REPL.
    Quit,
}

/// Why a line is not a valid command; shown to the user on one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The quoting is broken.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// The first word is no command.
    #[error("unknown command '{0}', type 'help' for the list of commands")]
    Unknown(String),
    /// Too many or too few arguments.
    #[error("wrong number of arguments for '{name}' (usage: {usage})")]
    Arity {
        /// The command as the user typed it, in lower case.
        name: &'static str,
        /// Its usage line.
        usage: &'static str,
    },
    /// A key exceeds [`MAX_KEY_BYTES`].
    #[error("key too long: {0} bytes (at most {MAX_KEY_BYTES})")]
    KeyTooLong(usize),
    /// A value exceeds [`MAX_VALUE_BYTES`].
    #[error("value too long: {0} bytes (at most {MAX_VALUE_BYTES})")]
    ValueTooLong(usize),
}

/// Every command: name, usage and what it does; the `help` text is made from it.
pub const COMMANDS: [(&str, &str, &str); 9] = [
    ("get", "get KEY", "print the value of KEY, or (nil)"),
    ("put", "put KEY VALUE", "set KEY to VALUE"),
    (
        "cas",
        "cas KEY EXPECTED NEW",
        "set KEY to NEW if it holds EXPECTED (bare nil: if absent)",
    ),
    ("del", "del KEY", "remove KEY; (integer) 1 if it existed"),
    (
        "status",
        "status",
        "show groups, members, leaders, epoch, reconfiguration",
    ),
    (
        "leave",
        "leave NODE",
        "remove NODE (address or id) from the cluster",
    ),
    ("help", "help", "show this list"),
    ("quit", "quit", "leave (also exit, Ctrl-D)"),
    ("exit", "exit", "leave"),
];

/// Parses one line.
pub fn parse_line(line: &str) -> Result<Command, CommandError> {
    let words = split_words(line)?;
    let Some((first, args)) = words.split_first() else {
        return Ok(Command::Empty);
    };
    let name = first.text().to_lowercase();
    let (name, usage) = COMMANDS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(n, u, _)| (*n, *u))
        .ok_or_else(|| CommandError::Unknown(render::echo(&first.bytes)))?;
    let arity = CommandError::Arity { name, usage };
    match (name, args) {
        ("get", [key]) => Ok(Command::Op(KvOp::Get { key: key_of(key)? })),
        ("put", [key, value]) => Ok(Command::Op(KvOp::Put {
            key: key_of(key)?,
            value: value_of(value)?,
        })),
        ("cas", [key, expected, new]) => Ok(Command::Op(KvOp::Cas {
            key: key_of(key)?,
            expected: expectation(expected)?,
            new: value_of(new)?,
        })),
        ("del", [key]) => Ok(Command::Op(KvOp::Delete { key: key_of(key)? })),
        ("status", []) => Ok(Command::Status),
        ("leave", [node]) => Ok(Command::Leave(node.text())),
        ("help", []) => Ok(Command::Help),
        ("quit" | "exit", []) => Ok(Command::Quit),
        _ => Err(arity),
    }
}

fn key_of(word: &Word) -> Result<Bytes, CommandError> {
    match word.bytes.len() {
        n if n > MAX_KEY_BYTES => Err(CommandError::KeyTooLong(n)),
        _ => Ok(Bytes::copy_from_slice(&word.bytes)),
    }
}

fn value_of(word: &Word) -> Result<Bytes, CommandError> {
    match word.bytes.len() {
        n if n > MAX_VALUE_BYTES => Err(CommandError::ValueTooLong(n)),
        _ => Ok(Bytes::copy_from_slice(&word.bytes)),
    }
}

/// The bare (unquoted) word `nil`, in any case, means "the key is absent"; `"nil"` is the
/// three-letter string.
fn expectation(word: &Word) -> Result<Option<Bytes>, CommandError> {
    if !word.quoted && word.bytes.eq_ignore_ascii_case(b"nil") {
        return Ok(None);
    }
    value_of(word).map(Some)
}

/// The text `help` prints.
pub fn help_text() -> String {
    let mut text = String::from("commands (case-insensitive):\n");
    for (_, usage, what) in COMMANDS {
        text.push_str(&format!("  {usage:<22} {what}\n"));
    }
    text.push_str(
        "values with spaces: \"hello world\" or 'hello world'; escapes in quotes: \\\" \\\\ \\n \\t \\xHH\n",
    );
    text.push_str("cas EXPECTED: bare nil = key absent, \"nil\" = the string nil");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn parses_each_command() {
        assert_eq!(parse_line("  "), Ok(Command::Empty));
        assert_eq!(
            parse_line("GET k"),
            Ok(Command::Op(KvOp::Get { key: b("k") }))
        );
        assert_eq!(
            parse_line("cas k nil 'v w'"),
            Ok(Command::Op(KvOp::Cas {
                key: b("k"),
                expected: None,
                new: b("v w")
            }))
        );
        assert_eq!(
            parse_line(r#"cas k "nil" v"#),
            Ok(Command::Op(KvOp::Cas {
                key: b("k"),
                expected: Some(b("nil")),
                new: b("v")
            }))
        );
        assert_eq!(parse_line("Exit"), Ok(Command::Quit));
        assert_eq!(parse_line("status"), Ok(Command::Status));
        assert_eq!(
            parse_line("LEAVE 127.0.0.1:7003"),
            Ok(Command::Leave("127.0.0.1:7003".into()))
        );
        assert!(parse_line("leave").is_err());
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            parse_line("get").unwrap_err().to_string(),
            "wrong number of arguments for 'get' (usage: get KEY)"
        );
        assert_eq!(
            parse_line("frob x").unwrap_err().to_string(),
            "unknown command 'frob', type 'help' for the list of commands"
        );
        assert_eq!(
            parse_line("help me").unwrap_err(),
            CommandError::Arity {
                name: "help",
                usage: "help"
            }
        );
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(
            parse_line(&format!("get {long_key}")),
            Err(CommandError::KeyTooLong(MAX_KEY_BYTES + 1))
        );
    }

    #[test]
    fn help_lists_every_command() {
        let help = help_text();
        for (name, ..) in COMMANDS {
            assert!(help.contains(name), "{name}");
        }
    }
}
