//! Check, then parse: the two passes over a buffered RESP2 frame.
//!
//! [`check`] walks the buffer without allocating and says whether one whole frame is there
//! (and how long it is); only then does [`parse`] build the [`Frame`], slicing bulk strings out
//! of the frame's bytes without copying. A partial frame costs a re-check when more bytes
//! arrive, never a half-built value. All limits are enforced by [`check`], from declared
//! lengths, before the bytes they announce are waited for.

use bytes::Bytes;

use super::error::ProtocolError;
use super::frame::Frame;
use super::limits::Limits;

/// Why [`check`] did not find a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CheckError {
    /// More bytes are needed.
    Incomplete,
    /// The bytes are not RESP (or break a limit).
    Invalid(ProtocolError),
}

impl From<ProtocolError> for CheckError {
    fn from(e: ProtocolError) -> Self {
        CheckError::Invalid(e)
    }
}

/// Whether `byte` starts a RESP2 frame (anything else at the top level is an inline command).
pub(crate) fn is_type_byte(byte: u8) -> bool {
    matches!(byte, b'+' | b'-' | b':' | b'$' | b'*')
}

/// Checks that `buf[*pos..]` starts with one complete frame and moves `*pos` past it.
/// `*pos` is measured from the start of the request, so it doubles as the size so far.
pub(crate) fn check(
    buf: &[u8],
    pos: &mut usize,
    limits: &Limits,
    depth: usize,
) -> Result<(), CheckError> {
    let kind = *buf.get(*pos).ok_or(CheckError::Incomplete)?;
    *pos += 1;
    match kind {
        b'+' | b'-' => line(buf, pos, limits).map(drop),
        b':' => {
            let text = line(buf, pos, limits)?;
            parse_int(text).ok_or(ProtocolError::InvalidInteger)?;
            Ok(())
        }
        b'$' => check_bulk(buf, pos, limits),
        b'*' => check_array(buf, pos, limits, depth),
        other => Err(ProtocolError::BadTypeByte(other).into()),
    }
}

fn check_bulk(buf: &[u8], pos: &mut usize, limits: &Limits) -> Result<(), CheckError> {
    let len = length(buf, pos, limits, ProtocolError::InvalidBulkLength)?;
    let Some(len) = len.filter(|&n| n <= limits.max_bulk_bytes) else {
        return match len {
            None => Ok(()),
            Some(_) => Err(ProtocolError::InvalidBulkLength.into()),
        };
    };
    let end = *pos + len + 2;
    if end > limits.max_frame_bytes {
        return Err(ProtocolError::FrameTooLarge(limits.max_frame_bytes).into());
    }
    if buf.len() < end {
        return Err(CheckError::Incomplete);
    }
    if &buf[end - 2..end] != b"\r\n" {
        return Err(ProtocolError::MissingCrlf.into());
    }
    *pos = end;
    Ok(())
}

fn check_array(
    buf: &[u8],
    pos: &mut usize,
    limits: &Limits,
    depth: usize,
) -> Result<(), CheckError> {
    if depth >= limits.max_depth {
        return Err(ProtocolError::TooDeep.into());
    }
    let len = length(buf, pos, limits, ProtocolError::InvalidMultibulkLength)?;
    match len {
        None => Ok(()),
        Some(n) if n > limits.max_array_len => Err(ProtocolError::InvalidMultibulkLength.into()),
        Some(n) => (0..n).try_for_each(|_| check(buf, pos, limits, depth + 1)),
    }
}

/// Reads a length line: `Some(n)` for n >= 0, `None` for -1, `bad` for anything else.
fn length(
    buf: &[u8],
    pos: &mut usize,
    limits: &Limits,
    bad: ProtocolError,
) -> Result<Option<usize>, CheckError> {
    let text = line(buf, pos, limits)?;
    match parse_int(text) {
        Some(-1) => Ok(None),
        Some(n) => usize::try_from(n).map(Some).map_err(|_| bad.into()),
        None => Err(bad.into()),
    }
}

/// Returns the text up to the next CRLF and moves `*pos` past the CRLF.
fn line<'a>(buf: &'a [u8], pos: &mut usize, limits: &Limits) -> Result<&'a [u8], CheckError> {
    let start = *pos;
    let window_end = buf.len().min(start + limits.max_line_bytes + 2);
    let window = buf.get(start..window_end).unwrap_or_default();
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(i) => {
            *pos = start + i + 2;
            Ok(&window[..i])
        }
        None if window.len() >= limits.max_line_bytes + 2 => Err(ProtocolError::LineTooLong.into()),
        None => Err(CheckError::Incomplete),
    }
}

/// Parses a decimal `i64` the way Redis does: optional `-`, digits, nothing else.
pub(crate) fn parse_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if negative {
            n.checked_sub(digit)?
        } else {
            n.checked_add(digit)?
        };
    }
    Some(n)
}

/// Builds the frame starting at `src[*pos..]`, which [`check`] has accepted, and moves `*pos`
/// past it. Still returns errors rather than trusting the check, so no input can panic it.
pub(crate) fn parse(src: &Bytes, pos: &mut usize) -> Result<Frame, ProtocolError> {
    let kind = *src.get(*pos).ok_or(ProtocolError::MissingCrlf)?;
    *pos += 1;
    match kind {
        b'+' => Ok(Frame::Simple(parse_line(src, pos)?)),
        b'-' => {
            let text = parse_line(src, pos)?;
            Ok(Frame::Error(String::from_utf8_lossy(&text).into_owned()))
        }
        b':' => {
            let text = parse_line(src, pos)?;
            parse_int(&text)
                .map(Frame::Integer)
                .ok_or(ProtocolError::InvalidInteger)
        }
        b'$' => parse_bulk(src, pos),
        b'*' => parse_array(src, pos),
        other => Err(ProtocolError::BadTypeByte(other)),
    }
}

fn parse_bulk(src: &Bytes, pos: &mut usize) -> Result<Frame, ProtocolError> {
    let text = parse_line(src, pos)?;
    match parse_int(&text) {
        Some(-1) => Ok(Frame::Null),
        Some(n) => {
            let len = usize::try_from(n).map_err(|_| ProtocolError::InvalidBulkLength)?;
            let end = *pos + len;
            if src.get(end..end + 2) != Some(&b"\r\n"[..]) {
                return Err(ProtocolError::MissingCrlf);
            }
            let data = src.slice(*pos..end);
            *pos = end + 2;
            Ok(Frame::Bulk(data))
        }
        None => Err(ProtocolError::InvalidBulkLength),
    }
}

fn parse_array(src: &Bytes, pos: &mut usize) -> Result<Frame, ProtocolError> {
    let text = parse_line(src, pos)?;
    match parse_int(&text) {
        Some(-1) => Ok(Frame::NullArray),
        Some(n) => {
            let len = usize::try_from(n).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
            // The check bounded `len`; capping the reservation keeps even a bypass harmless.
            let mut items = Vec::with_capacity(len.min(1024));
            for _ in 0..len {
                items.push(parse(src, pos)?);
            }
            Ok(Frame::Array(items))
        }
        None => Err(ProtocolError::InvalidMultibulkLength),
    }
}

fn parse_line(src: &Bytes, pos: &mut usize) -> Result<Bytes, ProtocolError> {
    let start = *pos;
    let rest = src.get(start..).unwrap_or_default();
    let i = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(ProtocolError::MissingCrlf)?;
    *pos = start + i + 2;
    Ok(src.slice(start..start + i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_all(buf: &[u8]) -> Result<usize, CheckError> {
        let mut pos = 0;
        check(buf, &mut pos, &Limits::default(), 0).map(|()| pos)
    }

    #[test]
    fn integers_parse_like_redis() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        for bad in [&b""[..], b"-", b"+1", b"1a", b" 1", b"1.0"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn check_reports_length_of_complete_frames() {
        assert_eq!(check_all(b"+OK\r\nextra"), Ok(5));
        assert_eq!(check_all(b"$3\r\nabc\r\n"), Ok(9));
        assert_eq!(check_all(b"$-1\r\n"), Ok(5));
        assert_eq!(check_all(b"*2\r\n:1\r\n$0\r\n\r\n"), Ok(14));
    }

    #[test]
    fn check_waits_for_partial_frames() {
        let whole = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        for cut in 0..whole.len() {
            assert_eq!(
                check_all(&whole[..cut]),
                Err(CheckError::Incomplete),
                "{cut}"
            );
        }
    }

    #[test]
    fn check_rejects_garbage_and_limits() {
        let bad = |buf: &[u8]| match check_all(buf) {
            Err(CheckError::Invalid(e)) => e,
            other => panic!("{buf:?}: {other:?}"),
        };
        assert_eq!(bad(b"!x\r\n"), ProtocolError::BadTypeByte(b'!'));
        assert_eq!(bad(b"*x\r\n"), ProtocolError::InvalidMultibulkLength);
        assert_eq!(bad(b"*-2\r\n"), ProtocolError::InvalidMultibulkLength);
        assert_eq!(bad(b"$abc\r\n"), ProtocolError::InvalidBulkLength);
        assert_eq!(bad(b"$99999999999\r\n"), ProtocolError::InvalidBulkLength);
        assert_eq!(bad(b"$1\r\nab\r\n"), ProtocolError::MissingCrlf);
        assert_eq!(bad(b":1x\r\n"), ProtocolError::InvalidInteger);
        assert_eq!(
            bad(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n"),
            ProtocolError::TooDeep
        );
    }
}
