//! Inline commands: `SET a b\r\n` typed into telnet or `nc`, as Redis accepts them.
//!
//! A line not starting with a RESP type byte is split into arguments on whitespace, with
//! Redis's quoting: `"..."` (escapes `\n \r \t \b \a \\ \" \xHH`) and `'...'` (escape `\'`).
//! LF alone ends a line too; a CR before it is dropped.

use bytes::Bytes;

use super::error::ProtocolError;
use super::limits::Limits;
use super::parse::CheckError;

/// Returns the length of the first line (LF included) if it is complete.
pub(crate) fn check_inline(buf: &[u8], limits: &Limits) -> Result<usize, CheckError> {
    let window = &buf[..buf.len().min(limits.max_line_bytes + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => Ok(i + 1),
        None if window.len() >= limits.max_line_bytes + 2 => {
            Err(ProtocolError::InlineTooLong.into())
        }
        None => Err(CheckError::Incomplete),
    }
}

/// Splits one complete line (as returned by [`check_inline`]) into arguments.
pub(crate) fn parse_inline(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut args = Vec::new();
    let mut rest = line;
    loop {
        rest = trim_start(rest);
        let Some(&first) = rest.first() else {
            return Ok(args);
        };
        let (arg, after) = match first {
            b'"' => double_quoted(&rest[1..])?,
            b'\'' => single_quoted(&rest[1..])?,
            _ => bare(rest),
        };
        args.push(Bytes::from(arg));
        rest = after;
    }
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

fn bare(s: &[u8]) -> (Vec<u8>, &[u8]) {
    let n = s.iter().take_while(|b| !b.is_ascii_whitespace()).count();
    (s[..n].to_vec(), &s[n..])
}

/// After a closing quote there must be whitespace or the end of the line, as in Redis.
fn closed(after: &[u8]) -> Result<&[u8], ProtocolError> {
    match after.first() {
        None => Ok(after),
        Some(b) if b.is_ascii_whitespace() => Ok(after),
        Some(_) => Err(ProtocolError::UnbalancedQuotes),
    }
}

fn double_quoted(s: &[u8]) -> Result<(Vec<u8>, &[u8]), ProtocolError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'"' => return Ok((out, closed(&s[i + 1..])?)),
            b'\\' => {
                let (byte, used) = escape(&s[i + 1..]);
                out.push(byte);
                i += 1 + used;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Err(ProtocolError::UnbalancedQuotes)
}

/// Decodes the escape after a backslash: the byte and how many input bytes it used.
fn escape(s: &[u8]) -> (u8, usize) {
    match s {
        [b'x', h, l, ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
            (hex(*h) * 16 + hex(*l), 3)
        }
        [b'n', ..] => (b'\n', 1),
        [b'r', ..] => (b'\r', 1),
        [b't', ..] => (b'\t', 1),
        [b'b', ..] => (0x08, 1),
        [b'a', ..] => (0x07, 1),
        [other, ..] => (*other, 1),
        [] => (b'\\', 0),
    }
}

fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit.wrapping_sub(b'A').wrapping_add(10),
    }
}

fn single_quoted(s: &[u8]) -> Result<(Vec<u8>, &[u8]), ProtocolError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match (b, s.get(i + 1)) {
            (b'\\', Some(b'\'')) => {
                out.push(b'\'');
                i += 2;
            }
            (b'\'', _) => return Ok((out, closed(&s[i + 1..])?)),
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Err(ProtocolError::UnbalancedQuotes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        parse_inline(line.as_bytes())
            .expect("valid line")
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn splits_on_whitespace_and_strips_line_ends() {
        assert_eq!(args("SET a  b\r\n"), ["SET", "a", "b"]);
        assert_eq!(args("  PING\n"), ["PING"]);
        assert!(args("\r\n").is_empty());
    }

    #[test]
    fn honours_quotes_like_redis() {
        assert_eq!(args(r#"SET k "a b\x41\n""#), ["SET", "k", "a bA\n"]);
        assert_eq!(args(r"SET k 'it\'s'"), ["SET", "k", "it's"]);
        assert_eq!(args(r#"SET k """#), ["SET", "k", ""]);
        for bad in [r#"SET "k"x"#, r#"SET "k"#, "SET 'k"] {
            assert_eq!(
                parse_inline(bad.as_bytes()),
                Err(ProtocolError::UnbalancedQuotes)
            );
        }
    }

    #[test]
    fn checks_line_completeness_and_size() {
        let limits = Limits {
            max_line_bytes: 8,
            ..Limits::default()
        };
        assert_eq!(check_inline(b"PING\r\nX", &limits), Ok(6));
        assert_eq!(check_inline(b"PIN", &limits), Err(CheckError::Incomplete));
        assert_eq!(
            check_inline(b"0123456789", &limits),
            Err(ProtocolError::InlineTooLong.into())
        );
    }
}
