//! RESP2 values and their encoding.
//!
//! One type serves both directions: requests arrive as [`Frame::Array`]s of [`Frame::Bulk`]s
//! (or inline lines turned into that shape), replies are built from any variant.

use std::fmt::Write;

use bytes::{BufMut, Bytes, BytesMut};

/// One RESP2 value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `+text\r\n`: a short status such as `OK`. CR and LF are replaced by spaces when encoded.
    Simple(Bytes),
    /// `-text\r\n`: an error reply; by convention the first word is the error kind (`ERR`).
    Error(String),
    /// `:n\r\n`: a signed 64-bit integer.
    Integer(i64),
    /// `$len\r\nbytes\r\n`: a binary-safe string.
    Bulk(Bytes),
    /// `$-1\r\n`: the null bulk string (Redis's `nil`).
    Null,
    /// `*n\r\n` followed by `n` frames.
    Array(Vec<Frame>),
    /// `*-1\r\n`: the null array.
    NullArray,
}

impl Frame {
    /// A simple-string reply from static text (`OK`, `PONG`).
    pub fn simple(text: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(text.as_bytes()))
    }

    /// A bulk-string reply from static text.
    pub fn bulk_static(text: &'static str) -> Frame {
        Frame::Bulk(Bytes::from_static(text.as_bytes()))
    }

    /// Appends the wire form of this frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Frame::Simple(text) => put_line(dst, b'+', text),
            Frame::Error(text) => put_line(dst, b'-', text.as_bytes()),
            Frame::Integer(n) => put_header(dst, b':', *n),
            Frame::Bulk(data) => {
                put_header(dst, b'$', data.len() as i64);
                dst.put_slice(data);
                dst.put_slice(b"\r\n");
            }
            Frame::Null => dst.put_slice(b"$-1\r\n"),
            Frame::Array(items) => {
                put_header(dst, b'*', items.len() as i64);
                for item in items {
                    item.encode(dst);
                }
            }
            Frame::NullArray => dst.put_slice(b"*-1\r\n"),
        }
    }

    /// The wire form of this frame as a new buffer (convenient in tests).
    pub fn to_bytes(&self) -> Bytes {
        let mut dst = BytesMut::new();
        self.encode(&mut dst);
        dst.freeze()
    }
}

/// A type byte, a line of text and CRLF. A CR or LF inside the text (say, from an unknown
/// command name echoed in an error) would end the line early and desynchronise the client,
/// so each becomes a space.
fn put_line(dst: &mut BytesMut, kind: u8, text: &[u8]) {
    dst.reserve(text.len() + 3);
    dst.put_u8(kind);
    for &b in text {
        dst.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
    }
    dst.put_slice(b"\r\n");
}

/// A type byte, a decimal number and CRLF.
fn put_header(dst: &mut BytesMut, kind: u8, n: i64) {
    dst.put_u8(kind);
    // `BytesMut` implements `fmt::Write` and grows as needed, so this cannot fail.
    let _ = write!(dst, "{n}\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_variant() {
        let frame = Frame::Array(vec![
            Frame::simple("OK"),
            Frame::Error("ERR x".into()),
            Frame::Integer(-3),
            Frame::bulk_static("hi"),
            Frame::Null,
            Frame::NullArray,
            Frame::Array(vec![]),
        ]);
        assert_eq!(
            &frame.to_bytes()[..],
            b"*7\r\n+OK\r\n-ERR x\r\n:-3\r\n$2\r\nhi\r\n$-1\r\n*-1\r\n*0\r\n"
        );
    }

    #[test]
    fn line_breaks_in_status_text_are_neutralised() {
        let frame = Frame::Error("ERR unknown command 'a\r\n+OK'".into());
        assert_eq!(&frame.to_bytes()[..], b"-ERR unknown command 'a  +OK'\r\n");
    }
}
