//! The native wire format: what clients and nodes say to each other, and how it is framed.
//!
//! Every frame is a 4-byte big-endian length followed by a postcard-encoded [`ClientFrame`]
//! or [`ServerFrame`]. postcard is compact and already used between nodes; the length prefix
//! lets a reader refuse an oversized frame before buffering it.

use std::io;
use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use kv_ports::ids::NodeId;
use kv_ports::kv::{KvCommand, KvError, KvOp, KvResult, RequestId, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use super::directive::{AdminAnswer, AdminRequest, Directive, DirectiveId, DirectiveOutcome};
use super::report::GroupReport;
use super::status::StatusReport;

/// The largest frame either side accepts: a CAS carries a key and two values, plus room for
/// ids and encoding overhead. Anything larger cannot be a valid command.
pub const MAX_FRAME_BYTES: usize = MAX_KEY_BYTES + 2 * MAX_VALUE_BYTES + 64 * 1024;

/// What a client (or a data node, to the coordinator) sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// Execute a command; a retry reuses the command's id so it takes effect at most once.
    Request(KvCommand),
    /// Send the slot map if it is newer than `have` (answered with [`ServerFrame::Map`]).
    /// Nodes answer from the map they route by, the coordinator from the one it publishes.
    GetMap {
        /// The epoch the asker holds (`Epoch(0)`: none).
        have: Epoch,
    },
    /// Describe yourself (answered with [`ServerFrame::Status`]).
    GetStatus,
    /// A data node checks in with the coordinator: the first frame of a node's session. The
    /// coordinator answers with the map once formed and pushes every later map on the same
    /// connection. `map` is the map the node holds, re-reported to a coordinator that restarted
    /// and lost its own.
    CheckIn {
        /// Who the node is and where it listens.
        node: NodeInfo,
        /// The newest map the node holds, if any.
        map: Option<SlotMap>,
    },
    /// A checked-in node answers a [`ServerFrame::Directive`] on its session.
    DirectiveDone {
        /// The directive answered.
        id: DirectiveId,
        /// What came of it.
        outcome: DirectiveOutcome,
    },
    /// A checked-in node's failure detector suspects `node` (`suspected`) or no longer does.
    Suspicion {
        /// The node suspected or restored.
        node: NodeId,
        /// Whether it is suspected now.
        suspected: bool,
    },
    /// An operator's request to the coordinator (answered with [`ServerFrame::Admin`] once
    /// done, which may take as long as a reconfiguration). A data node relays it to its
    /// coordinator.
    Admin(AdminRequest),
    /// A data node's answer to [`ServerFrame::QueryGroups`]: every group member it runs.
    Groups(Vec<GroupReport>),
}

/// What a node sends back to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// The group's answer to the command `id`, passed through unchanged.
    Reply {
        /// The command answered.
        id: RequestId,
        /// Its result, or why the group has none.
        result: Result<KvResult, KvError>,
    },
    /// The command `id` was refused before being proposed (oversized key or value): retrying
    /// it cannot help.
    Rejected {
        /// The command refused.
        id: RequestId,
        /// Why.
        message: String,
    },
    /// The client's input could not be decoded; the node closes the connection after this.
    Error {
        /// What was wrong, for the client's logs.
        message: String,
    },
    /// The slot map (answer to [`ClientFrame::GetMap`], or pushed by the coordinator to a
    /// checked-in node); `None` when the asker's map is current or none is formed yet.
    Map(Option<SlotMap>),
    /// The answer to [`ClientFrame::GetStatus`].
    Status(StatusReport),
    /// The coordinator asks a checked-in node to carry out one step of a reconfiguration.
    /// `peers` are nodes the directive names that the node may not know yet (new members,
    /// not in any published map); the node adds them to its link before acting.
    Directive {
        /// Names the directive in the node's answer.
        id: DirectiveId,
        /// Addresses of the nodes the directive involves.
        peers: Vec<NodeInfo>,
        /// What to do.
        directive: Directive,
    },
    /// The answer to [`ClientFrame::Admin`].
    Admin(AdminAnswer),
    /// The coordinator tells a node's session that the node is no longer in the cluster (it
    /// left, or it was declared failed and replaced): the map of `epoch` no longer names it
    /// and its id is never taken back. The coordinator closes the connection after this; the
    /// node stops instead of reconnecting (restarted, it joins as a new node).
    Removed {
        /// The node removed.
        node: NodeId,
        /// The coordinator's map epoch when it said so.
        epoch: Epoch,
    },
    /// The coordinator asks a checked-in node where its group members stand (answered with
    /// [`ClientFrame::Groups`]); a restarted coordinator does so before planning anything.
    QueryGroups,
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed, or the length prefix announced a frame over [`MAX_FRAME_BYTES`].
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The frame's body is not a valid message.
    #[error("undecodable frame: {0}")]
    Decode(postcard::Error),
    /// The message could not be encoded (a bug: every message type is encodable).
    #[error("unencodable frame: {0}")]
    Encode(postcard::Error),
}

/// A length-delimited postcard codec that decodes `In` and encodes `Out`.
pub struct Codec<In, Out> {
    frames: LengthDelimitedCodec,
    _types: PhantomData<fn(Out) -> In>,
}

/// The node's side: reads [`ClientFrame`]s, writes [`ServerFrame`]s.
pub type ServerCodec = Codec<ClientFrame, ServerFrame>;

/// The client's side: reads [`ServerFrame`]s, writes [`ClientFrame`]s.
pub type ClientCodec = Codec<ServerFrame, ClientFrame>;

impl<In, Out> Default for Codec<In, Out> {
    fn default() -> Self {
        Codec {
            frames: LengthDelimitedCodec::builder()
                .max_frame_length(MAX_FRAME_BYTES)
                .new_codec(),
            _types: PhantomData,
        }
    }
}

impl<In: DeserializeOwned, Out> Decoder for Codec<In, Out> {
    type Item = In;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, FrameError> {
        match self.frames.decode(src)? {
            Some(body) => postcard::from_bytes(&body)
                .map(Some)
                .map_err(FrameError::Decode),
            None => Ok(None),
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for Codec<In, Out> {
    type Error = FrameError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), FrameError> {
        let body = postcard::to_stdvec(&item).map_err(FrameError::Encode)?;
        self.frames.encode(Bytes::from(body), dst)?;
        Ok(())
    }
}

/// Why an operation is refused before it is proposed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// The key is longer than [`MAX_KEY_BYTES`].
    #[error("key of {0} bytes exceeds the limit of {MAX_KEY_BYTES}")]
    Key(usize),
    /// A value is longer than [`MAX_VALUE_BYTES`].
    #[error("value of {0} bytes exceeds the limit of {MAX_VALUE_BYTES}")]
    Value(usize),
    /// A slot move's freeze or install: only the coordinator drives those, through a group's
    /// log, never a client through a front end.
    #[error("slot moves are the coordinator's; clients cannot send them")]
    SlotMove,
}

/// Checks an operation against the key and value limits, so an oversized one is refused at
/// the edge instead of travelling through every replica's log.
pub fn check_sizes(op: &KvOp) -> Result<(), SizeError> {
    if op.is_slot_move() {
        return Err(SizeError::SlotMove);
    }
    let key = op.key().map_or(0, Bytes::len);
    if key > MAX_KEY_BYTES {
        return Err(SizeError::Key(key));
    }
    let values: Vec<usize> = match op {
        KvOp::Get { .. } | KvOp::Delete { .. } => Vec::new(),
        KvOp::Put { value, .. } => vec![value.len()],
        KvOp::Cas { expected, new, .. } => {
            vec![expected.as_ref().map_or(0, Bytes::len), new.len()]
        }
        KvOp::Freeze { .. } | KvOp::InstallPart { .. } | KvOp::Install { .. } => {
            unreachable!("refused above")
        }
    };
    match values.into_iter().find(|&len| len > MAX_VALUE_BYTES) {
        Some(len) => Err(SizeError::Value(len)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_ports::ids::ClientId;
    use kv_ports::kv::SlotData;
    use kv_ports::membership::Slot;

    fn command() -> KvCommand {
        KvCommand {
            id: RequestId {
                client: ClientId::random(),
                seq: 7,
            },
            op: KvOp::Cas {
                key: Bytes::from_static(b"k"),
                expected: None,
                new: Bytes::from_static(b"v"),
            },
        }
    }

    #[test]
    fn frames_round_trip() {
        let mut client = ClientCodec::default();
        let mut server = ServerCodec::default();
        let mut buf = BytesMut::new();
        let sent = ClientFrame::Request(command());
        client.encode(sent.clone(), &mut buf).unwrap();
        assert_eq!(server.decode(&mut buf).unwrap(), Some(sent));
        let reply = ServerFrame::Reply {
            id: command().id,
            result: Err(KvError::NotLeader { hint: None }),
        };
        server.encode(reply.clone(), &mut buf).unwrap();
        assert_eq!(client.decode(&mut buf).unwrap(), Some(reply));
    }

    #[test]
    fn garbage_and_oversized_frames_are_errors() {
        let mut server = ServerCodec::default();
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            server.decode(&mut buf),
            Err(FrameError::Decode(_))
        ));
        let too_long = (MAX_FRAME_BYTES as u32 + 1).to_be_bytes();
        let mut buf = BytesMut::from(&too_long[..]);
        assert!(matches!(server.decode(&mut buf), Err(FrameError::Io(_))));
    }

    #[test]
    fn sizes_are_checked() {
        let big = Bytes::from(vec![0u8; MAX_VALUE_BYTES + 1]);
        let key = Bytes::from(vec![0u8; MAX_KEY_BYTES + 1]);
        assert_eq!(check_sizes(&command().op), Ok(()));
        let put = KvOp::Put {
            key: Bytes::from_static(b"k"),
            value: big.clone(),
        };
        assert_eq!(
            check_sizes(&put),
            Err(SizeError::Value(MAX_VALUE_BYTES + 1))
        );
        let cas = KvOp::Cas {
            key: Bytes::from_static(b"k"),
            expected: Some(big),
            new: Bytes::new(),
        };
        assert!(check_sizes(&cas).is_err());
        assert_eq!(
            check_sizes(&KvOp::Get { key }),
            Err(SizeError::Key(MAX_KEY_BYTES + 1))
        );
    }

    #[test]
    fn slot_moves_are_refused_from_clients() {
        let (slots, epoch) = (vec![Slot(1)], Epoch(2));
        let moves = [
            KvOp::Freeze {
                slots: slots.clone(),
                epoch,
            },
            KvOp::InstallPart {
                slots: slots.clone(),
                epoch,
                pairs: Vec::new(),
            },
            KvOp::Install {
                slots,
                epoch,
                data: SlotData::default(),
            },
        ];
        for op in moves {
            assert_eq!(check_sizes(&op), Err(SizeError::SlotMove), "{op:?}");
        }
    }
}
