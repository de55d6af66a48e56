//! The key-value vocabulary: commands clients send and the answers the state machine gives.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, NodeId};
use crate::membership::{Epoch, Slot};
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
    /// Slot move, source side: the group stops serving `slots` and answers their data
    /// ([`KvResult::Frozen`]). Sent by the coordinator through the group's log, never by
    /// clients (front ends refuse it). Idempotent: freezing slots frozen by the same epoch
    /// answers the same pairs. Refused with [`KvError::Moved`] (nothing changes) when a slot is
    /// not served here or already moved at this epoch or a later one (a stale duplicate).
    Freeze {
        /// The slots leaving the group.
        slots: Vec<Slot>,
        /// The epoch of the map that moves them.
        epoch: Epoch,
    },
    /// Slot move, destination side: the group takes over `slots` with `data`
    /// ([`KvResult::Installed`]): their old pairs are replaced, the sessions merged (per client
    /// the higher sequence number). Coordinator only, like [`KvOp::Freeze`]. Idempotent: slots
    /// already moved at this epoch or a later one are skipped (`Installed`, no change). Refused
    /// with [`KvError::Moved`] when a slot to take is served here already, or when a pair's
    /// key is not in `slots`.
    Install {
        /// The slots arriving.
        slots: Vec<Slot>,
        /// The epoch of the map that moves them.
        epoch: Epoch,
        /// Their pairs and the source's client sessions.
        data: SlotData,
    },
}

/// The state that travels with moving slots: the pairs whose keys hash to them, and the
/// source group's client sessions, so a command that took effect at the source and is retried
/// at the destination is answered from its session instead of being applied twice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotData {
    /// The key-value pairs of the moving slots, in key order.
    pub pairs: Vec<(Bytes, Bytes)>,
    /// Every client session of the source group, sorted by client.
    pub sessions: Vec<SessionEntry>,
}

/// One client's latest applied command in a group, as it travels with moving slots.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionEntry {
    /// The client.
    pub client: ClientId,
    /// Its latest applied sequence number.
    pub seq: u64,
    /// The reply that command got.
    pub reply: KvResult,
}

impl KvOp {
    /// The key a client operation touches (each touches exactly one); `None` for the slot-move
    /// operations, which are addressed to a group, not routed by key.
    pub fn key(&self) -> Option<&Bytes> {
        match self {
            KvOp::Get { key } | KvOp::Put { key, .. } | KvOp::Delete { key } => Some(key),
            KvOp::Cas { key, .. } => Some(key),
            KvOp::Freeze { .. } | KvOp::Install { .. } => None,
        }
    }

    /// Whether the operation may change the state (reads can be served without one).
    pub fn is_write(&self) -> bool {
        !matches!(self, KvOp::Get { .. })
    }

    /// Whether this is a coordinator's slot-move operation, which clients may not send.
    pub fn is_slot_move(&self) -> bool {
        matches!(self, KvOp::Freeze { .. } | KvOp::Install { .. })
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
    /// A `Freeze`: the data of the frozen slots.
    Frozen(SlotData),
    /// An `Install`: the slots are served here now.
    Installed,
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
    /// The group does not serve the key's slot: it moved away (or has not arrived yet). Refresh
    /// the map to at least `epoch` and retry with the same request id at the new owner: the
    /// command had no effect here. (Also the refusal of a stale, misdirected or malformed slot
    /// move.)
    #[error("slot moved (map epoch {epoch})")]
    Moved {
        /// The epoch of the map that moved the slot.
        epoch: Epoch,
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
