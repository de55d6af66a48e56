//! The overlay's node-to-node messages, carried on [`Topic::Overlay`](kv_ports::network::Topic)
//! and encoded with [`crate::wire`].
//!
//! Only two messages: a node that cannot serve a key itself forwards the command to the node
//! its router picked, and that node answers. The answering node never forwards further: the
//! node the client is connected to owns the command's redirects, so a command never wanders.

use kv_ports::ids::GroupId;
use kv_ports::kv::{KvCommand, KvError, KvResult, RequestId};
use kv_ports::membership::Epoch;
use serde::{Deserialize, Serialize};

/// One overlay message between two nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverlayMsg {
    /// Please run `cmd` on your replica of `group`.
    Forward {
        /// The group the sender's map gives the key to.
        group: GroupId,
        /// The epoch of the sender's map, so a receiver with a newer one can say so.
        epoch: Epoch,
        /// The client command, with its original request id.
        cmd: KvCommand,
    },
    /// The outcome of a [`OverlayMsg::Forward`].
    Answer {
        /// The group the command was forwarded for.
        group: GroupId,
        /// The command answered.
        id: RequestId,
        /// Its result; `NotLeader` when this node has no replica of the group or its replica
        /// cannot get the command decided now.
        result: Result<KvResult, KvError>,
        /// The epoch of the answering node's map: newer than the sender's means the sender
        /// routes by a stale map.
        epoch: Epoch,
    },
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kv_ports::ids::{ClientId, NodeId};
    use kv_ports::kv::KvOp;
    use uuid::Uuid;

    use super::*;
    use crate::wire::{decode, encode};

    #[test]
    fn messages_round_trip_through_the_wire_encoding() {
        let id = RequestId {
            client: ClientId(Uuid::from_u128(7)),
            seq: 3,
        };
        let forward = OverlayMsg::Forward {
            group: GroupId(2),
            epoch: Epoch(5),
            cmd: KvCommand {
                id,
                op: KvOp::Put {
                    key: Bytes::from_static(b"k"),
                    value: Bytes::from_static(b"v"),
                },
            },
        };
        let answer = OverlayMsg::Answer {
            group: GroupId(2),
            id,
            result: Err(KvError::NotLeader {
                hint: Some(NodeId(4)),
            }),
            epoch: Epoch(6),
        };
        for msg in [forward, answer] {
            assert_eq!(decode::<OverlayMsg>(&encode(&msg)), Some(msg));
        }
    }
}
