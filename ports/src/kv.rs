//! The key-value vocabulary: commands clients send and the answers the state machine gives.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, NodeId};
use crate::port::Port;

/// The longest key accepted, in bytes. Keys are routed, hashed and kept in every replica's
/// session table and log; a bound keeps one client from bloating all of them.
pub const MAX_KEY_BYTES: usize = 16 * 1024;

/// The longest value accepted, in bytes. A value travels in Paxos batches to every replica,
/// so it is bounded well below the link's frame limit.
pub const MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;

/// Identifies one client command for its whole life, across retries and leader changes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// The client session that issued the command.
    pub client: ClientId,
    /// Increases by one for each new command of that client; a retry reuses it.
    pub seq: u64,
}

/// An operation on the key-value state machine.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOp {
    /// Read a key.
    Get {
        /// The key to read.
        key: Bytes,
    },
    /// Write a key unconditionally.
    Put {
        /// The key to write.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// Write a key only if its current value is `expected` (`None` = the key is absent).
    Cas {
        /// The key to swap.
        key: Bytes,
        /// The value the key must hold now; `None` means the key must be absent.
        expected: Option<Bytes>,
        /// The value to install when the comparison holds.
        new: Bytes,
    },
    /// Remove a key.
    Delete {
        /// The key to remove.
        key: Bytes,
    },
}

impl KvOp {
    /// The key this operation touches (every operation touches exactly one).
    pub fn key(&self) -> &Bytes {
        match self {
            KvOp::Get { key } | KvOp::Put { key, .. } | KvOp::Delete { key } => key,
            KvOp::Cas { key, .. } => key,
        }
    }

    /// Whether the operation may change the state (reads can be served without one).
    pub fn is_write(&self) -> bool {
        !matches!(self, KvOp::Get { .. })
    }
}

/// The result of applying one [`KvOp`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvResult {
    /// A `Get`: the value, or `None` when the key is absent.
    Value(Option<Bytes>),
    /// A `Put` took effect.
    Written,
    /// A `Cas`: whether the comparison held and the new value was installed.
    Swapped(bool),
    /// A `Delete`: whether the key existed.
    Deleted(bool),
}

/// A client command as it travels through routing, the log and the state machine.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KvCommand {
    /// Unique per command; the replica's session table deduplicates on it.
    pub id: RequestId,
    /// What to do.
    pub op: KvOp,
}

/// Why a command has no result from the group it was sent to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum KvError {
    /// This node cannot get the command decided now; retry at `hint` or elsewhere. Safe to
    /// retry with the same request id: the session table stops a second effect.
    #[error("not the leader (try {hint:?})")]
    NotLeader {
        /// The leader this node believes in.
        hint: Option<NodeId>,
    },
    /// The group's configuration is sealed; the named configuration serves the keys now.
    #[error("configuration sealed, next is {next_config}")]
    Sealed {
        /// The next configuration.
        next_config: u32,
    },
    /// The command is older than the client's latest applied one; its answer is gone.
    #[error("request superseded by a newer one of the same client")]
    Superseded,
}

/// The answer to one [`KvCommand`], sent only to the requirer that asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvReply {
    /// The command answered.
    pub id: RequestId,
    /// Its result.
    pub result: Result<KvResult, KvError>,
}

/// Execute commands on a replicated key-value state machine.
pub struct KvPort;

impl Port for KvPort {
    type Request = KvCommand;
    type Indication = KvReply;
}
