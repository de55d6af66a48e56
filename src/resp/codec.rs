//! The RESP2 codec: bytes to [`Frame`]s and back, for `tokio_util::codec` or by hand.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::error::{CodecError, ProtocolError};
use super::frame::Frame;
use super::inline::{check_inline, parse_inline};
use super::limits::Limits;
use super::parse::{check, is_type_byte, parse, CheckError};

/// Decodes RESP2 frames and inline commands, encodes frames.
///
/// Decoding consumes nothing until a whole frame is buffered; a frame that breaks a
/// [`Limits`] bound or is not RESP is an error, after which the stream is unusable. An inline
/// command comes out as an array of bulk strings, exactly as if sent in RESP; an empty line
/// is skipped, as Redis does.
#[derive(Clone, Debug, Default)]
pub struct RespCodec {
    limits: Limits,
}

impl RespCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        RespCodec { limits }
    }

    fn decode_frame(&self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let mut end = 0;
        match check(src, &mut end, &self.limits, 0) {
            Ok(()) if end > self.limits.max_frame_bytes => {
                Err(ProtocolError::FrameTooLarge(self.limits.max_frame_bytes))
            }
            Ok(()) => {
                let bytes = src.split_to(end).freeze();
                parse(&bytes, &mut 0).map(Some)
            }
            Err(CheckError::Incomplete) => self.incomplete(src),
            Err(CheckError::Invalid(e)) => Err(e),
        }
    }

    /// Waits for more bytes, unless the buffer already exceeds the frame limit (only
    /// reachable through many header lines, since declared lengths are checked up front).
    fn incomplete(&self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if src.len() > self.limits.max_frame_bytes {
            return Err(ProtocolError::FrameTooLarge(self.limits.max_frame_bytes));
        }
        Ok(None)
    }

    fn decode_inline(&self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        loop {
            if src.first().is_none_or(|&b| is_type_byte(b)) {
                return self.decode_frame(src);
            }
            let end = match check_inline(src, &self.limits) {
                Ok(end) => end,
                Err(CheckError::Incomplete) => return Ok(None),
                Err(CheckError::Invalid(e)) => return Err(e),
            };
            let args = parse_inline(&src.split_to(end))?;
            if !args.is_empty() {
                return Ok(Some(Frame::Array(
                    args.into_iter().map(Frame::Bulk).collect(),
                )));
            }
        }
    }
}

impl Decoder for RespCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.decode_inline(src)?)
    }
}

impl Encoder<&Frame> for RespCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        frame.encode(dst);
        Ok(())
    }
}

impl Encoder<Frame> for RespCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        frame.encode(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;

    fn decode_all(codec: &mut RespCodec, buf: &mut BytesMut) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(frame) = codec.decode(buf).expect("valid input") {
            out.push(frame);
        }
        out
    }

    fn command(args: &[&str]) -> Frame {
        Frame::Array(
            args.iter()
                .map(|a| Frame::Bulk(Bytes::copy_from_slice(a.as_bytes())))
                .collect(),
        )
    }

    #[test]
    fn decodes_pipelined_frames_and_inline_commands() {
        let mut buf =
            BytesMut::from(&b"*1\r\n$4\r\nPING\r\nSET a b\r\n\r\n+OK\r\n*2\r\n$3\r\nGET"[..]);
        let frames = decode_all(&mut RespCodec::default(), &mut buf);
        assert_eq!(
            frames,
            [
                command(&["PING"]),
                command(&["SET", "a", "b"]),
                Frame::simple("OK")
            ]
        );
        assert_eq!(
            &buf[..],
            b"*2\r\n$3\r\nGET",
            "a partial frame stays buffered"
        );
    }

    #[test]
    fn rejects_oversized_frames_before_buffering_them() {
        let mut codec = RespCodec::new(Limits {
            max_frame_bytes: 64,
            ..Limits::default()
        });
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$100\r\n"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Protocol(ProtocolError::FrameTooLarge(64)))
        ));
        let mut buf = BytesMut::from(&b"$99999999\r\n"[..]);
        assert!(matches!(
            RespCodec::default().decode(&mut buf),
            Err(CodecError::Protocol(ProtocolError::InvalidBulkLength))
        ));
    }

    fn arb_text() -> impl Strategy<Value = Bytes> {
        "[a-zA-Z0-9 ]{0,12}".prop_map(Bytes::from)
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let leaf = prop_oneof![
            arb_text().prop_map(Frame::Simple),
            "[a-zA-Z ]{0,12}".prop_map(Frame::Error),
            any::<i64>().prop_map(Frame::Integer),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|v| Frame::Bulk(v.into())),
            Just(Frame::Null),
            Just(Frame::NullArray),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            proptest::collection::vec(inner, 0..6).prop_map(Frame::Array)
        })
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)
        ) {
            let mut codec = RespCodec::new(Limits { max_frame_bytes: 256, max_line_bytes: 32, ..Limits::default() });
            let mut buf = BytesMut::new();
            for chunk in chunks {
                buf.extend_from_slice(&chunk);
                while let Ok(Some(_)) = codec.decode(&mut buf) {}
            }
        }

        #[test]
        fn random_resp_like_bytes_never_panic(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b":".to_vec()),
                    Just(b"\r\n".to_vec()), Just(b"-1".to_vec()), Just(b"3".to_vec()),
                    Just(b"\"".to_vec()), Just(b" ".to_vec()), Just(b"a".to_vec()),
                ],
                0..40,
            )
        ) {
            let mut buf = BytesMut::from(&parts.concat()[..]);
            let mut codec = RespCodec::default();
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
        }

        #[test]
        fn random_splits_decode_identically(
            frames in proptest::collection::vec(arb_frame(), 1..6),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let mut wire = BytesMut::new();
            for frame in &frames {
                frame.encode(&mut wire);
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            cuts.push(wire.len());
            cuts.sort_unstable();
            let mut codec = RespCodec::default();
            let mut buf = BytesMut::new();
            let mut decoded = Vec::new();
            let mut start = 0;
            for cut in cuts {
                buf.extend_from_slice(&wire[start..cut]);
                start = cut;
                decoded.extend(decode_all(&mut codec, &mut buf));
            }
            prop_assert_eq!(decoded, frames);
            prop_assert!(buf.is_empty());
        }
    }
}
