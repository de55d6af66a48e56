//! Wire frames and their codec: postcard bodies behind a 4-byte big-endian length prefix.
//!
//! The prefix format is the one of tokio-util's [`LengthDelimitedCodec`] (which decodes it), so
//! a frame is `len: u32 BE` followed by `len` bytes of postcard. Both directions enforce the
//! configured maximum, so a corrupt or hostile length prefix cannot make us buffer gigabytes.

use std::io;
use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use kv_ports::ids::NodeId;
use kv_ports::network::Topic;
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};
use uuid::Uuid;

/// The 4 bytes a dialer writes before its first frame, so that a port shared with other
/// protocols (the node's multiplexer) can tell a link connection from a client's, and so
/// that anything else dialing a link is refused before a single frame is decoded.
pub const PREAMBLE: [u8; 4] = *b"KVL1";

/// Bytes a `Data` frame adds around its payload, at most (tag, varint seq, topic, varint len).
pub const DATA_OVERHEAD: usize = 32;

/// Names one session of one side of a link: who I am this time.
///
/// A process draws a fresh `incarnation` when it starts; `epoch` counts the times this process
/// restarted its session with one particular peer (after a `Block`/`Unblock` cut or a
/// `RemovePeer`). A peer that sees a token change starts a fresh session with us.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Random per process start.
    pub incarnation: Uuid,
    /// Bumped each time this process discards its session with the peer.
    pub epoch: u64,
}

/// The first frame each side sends on a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's node id.
    pub node: NodeId,
    /// Where the sender listens, so the receiver can dial back.
    pub listen: SocketAddr,
    /// The sender's session token for the receiver.
    pub token: Token,
    /// The next sequence number the sender expects from the receiver...
    pub next_expected: u64,
    /// ...in the receiver's session named by this token (`None`: never heard of it).
    pub expected_from: Option<Token>,
}

/// Everything that travels on a link connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Handshake; see [`Hello`].
    Hello(Hello),
    /// One payload, numbered from 1 within a session.
    Data {
        /// Sequence number within the sender's session.
        seq: u64,
        /// The protocol the payload belongs to.
        topic: Topic,
        /// The payload.
        payload: Bytes,
    },
    /// Cumulative acknowledgement: every frame numbered below `next_expected` arrived.
    Ack {
        /// The next sequence number the acknowledging side expects.
        next_expected: u64,
    },
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed, or an inbound length prefix exceeded the maximum.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// An outbound frame encoded to more bytes than the maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Its encoded size.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The body was not a valid postcard `Frame`.
    #[error("undecodable frame: {0}")]
    Decode(#[from] postcard::Error),
    /// An inbound connection did not start with [`PREAMBLE`]: not a link peer.
    #[error("not a link connection: it began with {0:02x?}")]
    BadPreamble([u8; 4]),
}

/// Checks the first bytes of an inbound connection against [`PREAMBLE`].
pub fn check_preamble(first: [u8; 4]) -> Result<(), FrameError> {
    if first == PREAMBLE {
        Ok(())
    } else {
        Err(FrameError::BadPreamble(first))
    }
}

/// Encodes and decodes [`Frame`]s with a maximum length.
#[derive(Debug)]
pub struct FrameCodec {
    prefix: LengthDelimitedCodec,
}

impl FrameCodec {
    /// A codec refusing frames longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        let prefix = LengthDelimitedCodec::builder()
            .max_frame_length(max_frame_len)
            .new_codec();
        FrameCodec { prefix }
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.prefix.decode(src)? {
            Some(body) => Ok(Some(postcard::from_bytes(&body)?)),
            None => Ok(None),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let start = dst.len();
        dst.put_u32(0);
        if let Err(e) = postcard::to_io(&frame, BufMut::writer(&mut *dst)) {
            dst.truncate(start);
            return Err(e.into());
        }
        let len = dst.len() - start - 4;
        let max = self.prefix.max_frame_length();
        if len > max {
            dst.truncate(start);
            return Err(FrameError::TooLarge { len, max });
        }
        let prefix = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max })?;
        dst[start..start + 4].copy_from_slice(&prefix.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Frame {
        Frame::Data {
            seq: 7,
            topic: Topic::Test(3),
            payload: Bytes::from(vec![0xab; n]),
        }
    }

    fn hello() -> Frame {
        Frame::Hello(Hello {
            node: NodeId(4),
            listen: "127.0.0.1:4000".parse().unwrap(),
            token: Token {
                incarnation: Uuid::new_v4(),
                epoch: 2,
            },
            next_expected: 9,
            expected_from: None,
        })
    }

    #[test]
    fn frames_round_trip_even_when_split() {
        let mut codec = FrameCodec::new(1024);
        let frames = vec![hello(), data(100), Frame::Ack { next_expected: 5 }];
        let mut buf = BytesMut::new();
        for f in frames.clone() {
            codec.encode(f, &mut buf).unwrap();
        }
        let mut rx = BytesMut::new();
        let mut got = Vec::new();
        for byte in buf.iter() {
            rx.put_u8(*byte);
            while let Some(f) = codec.decode(&mut rx).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn data_overhead_bound_holds() {
        let mut codec = FrameCodec::new(1 << 20);
        let mut buf = BytesMut::new();
        let frame = Frame::Data {
            seq: u64::MAX,
            topic: Topic::Consensus(kv_ports::ids::GroupId(u32::MAX)),
            payload: Bytes::from(vec![1; 70_000]),
        };
        codec.encode(frame, &mut buf).unwrap();
        assert!(buf.len() - 4 <= 70_000 + DATA_OVERHEAD);
    }

    #[test]
    fn oversized_outbound_frame_is_refused_and_leaves_buffer_clean() {
        let mut codec = FrameCodec::new(64);
        let mut buf = BytesMut::new();
        codec.encode(data(8), &mut buf).unwrap();
        let before = buf.len();
        let err = codec.encode(data(100), &mut buf).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 64, .. }));
        assert_eq!(buf.len(), before);
    }

    #[test]
    fn oversized_length_prefix_is_an_error() {
        let mut codec = FrameCodec::new(64);
        let mut buf = BytesMut::new();
        buf.put_u32(1_000_000);
        buf.put_slice(&[0; 16]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Io(_))));
    }

    #[test]
    fn only_the_exact_preamble_passes() {
        assert!(check_preamble(*b"KVL1").is_ok());
        assert!(matches!(
            check_preamble(*b"KVL2"),
            Err(FrameError::BadPreamble(b)) if b == *b"KVL2"
        ));
        assert!(check_preamble([0, 0, 0, 9]).is_err());
    }

    #[test]
    fn garbage_body_is_an_error() {
        let mut codec = FrameCodec::new(64);
        let mut buf = BytesMut::new();
        buf.put_u32(3);
        buf.put_slice(&[0xff, 0xff, 0xff]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Decode(_))));
    }
}
