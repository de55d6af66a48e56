//! Turning answers into the text the REPL prints, in the style of redis-cli: values quoted
//! with escapes, `(nil)` for absent, `OK` for writes, `(integer) 1` / `(integer) 0` for
//! "swapped" / "existed", `(error) ...` for anything that went wrong.

use std::fmt::Write as _;

use kv_ports::kv::KvResult;

use crate::service::ServiceError;

/// The longest piece of user input echoed in an error message, in characters.
const ECHO_LIMIT: usize = 40;

/// Renders an operation's result.
pub fn result(result: &KvResult) -> String {
    match result {
        KvResult::Value(Some(v)) => quoted(v),
        KvResult::Value(None) => "(nil)".to_owned(),
        KvResult::Written => "OK".to_owned(),
        KvResult::Swapped(b) | KvResult::Deleted(b) => format!("(integer) {}", u8::from(*b)),
        KvResult::Frozen(data) => format!("(frozen) {} pairs", data.count),
        KvResult::Installed => "OK".to_owned(),
    }
}

/// Renders an error of the service.
pub fn service_error(error: &ServiceError) -> String {
    format!("(error) {error}")
}

/// Renders a problem with what the user typed.
pub fn input_error(message: &str) -> String {
    format!("(error) ERR {message}")
}

/// A value in double quotes, with the escapes the parser understands, so that what is
/// printed can be typed back.
pub fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", escaped(bytes))
}

/// User input shortened and escaped so that an error message stays on one line.
pub fn echo(bytes: &[u8]) -> String {
    let text = escaped(bytes);
    match text.char_indices().nth(ECHO_LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Printable characters as they are; quotes, backslashes, control characters and invalid
/// UTF-8 as escapes.
fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn push_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::repl::parse::split_words;

    #[test]
    fn renders_results() {
        let v = KvResult::Value(Some(Bytes::from_static(b"hi")));
        assert_eq!(result(&v), "\"hi\"");
        assert_eq!(result(&KvResult::Value(None)), "(nil)");
        assert_eq!(result(&KvResult::Written), "OK");
        assert_eq!(result(&KvResult::Swapped(true)), "(integer) 1");
        assert_eq!(result(&KvResult::Deleted(false)), "(integer) 0");
    }

    #[test]
    fn quoting_round_trips_through_the_parser() {
        let raw: &[u8] = b"a \"b\"\\ \n\t\x00\xff\x7f \xc3\xbc";
        let printed = quoted(raw);
        assert_eq!(printed, r#""a \"b\"\\ \n\t\x00\xff\x7f ü""#);
        assert_eq!(split_words(&printed).unwrap()[0].bytes, raw);
    }

    #[test]
    fn echo_is_short_and_single_line() {
        assert_eq!(echo(b"a\nb"), "a\\nb");
        let long = echo("é".repeat(100).as_bytes());
        assert_eq!(long.chars().count(), ECHO_LIMIT + 3);
    }
}
