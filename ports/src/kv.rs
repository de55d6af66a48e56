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
    /// Slot move, source side: the group stops serving `slots` and answers a summary of their
    /// data ([`KvResult::Frozen`]: the sessions, the sizes and a first page of pairs; the rest
    /// is read in pages from any member that applied the freeze). Sent by the coordinator
    /// through the group's log, never by clients (front ends refuse it). Idempotent: freezing
    /// slots frozen by the same epoch answers the same summary. Refused with
    /// [`KvError::Moved`] (nothing changes) when a slot is not served here or already moved at
    /// this epoch or a later one (a stale duplicate).
    Freeze {
        /// The slots leaving the group.
        slots: Vec<Slot>,
        /// The epoch of the map that moves them.
        epoch: Epoch,
    },
    /// Slot move, destination side, one page of pairs ([`KvResult::Installed`]): stored
    /// without serving the slots yet. The first part of a move at `epoch` clears the slots'
    /// old pairs (once: the slots are marked staging for `epoch`); a repeated part writes the
    /// same pairs again and changes nothing. Coordinator only, like [`KvOp::Freeze`]. Slots
    /// already moved at this epoch or a later one are skipped. Refused with
    /// [`KvError::Moved`] when a slot is served here, or when a pair's key is not in `slots`.
    InstallPart {
        /// The slots arriving (all of the move's batch, in every part).
        slots: Vec<Slot>,
        /// The epoch of the map that moves them.
        epoch: Epoch,
        /// A page of their pairs, in key order.
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// Slot move, destination side, the end ([`KvResult::Installed`]): the group takes over
    /// `slots` with the pairs staged by earlier [`KvOp::InstallPart`]s of this epoch plus
    /// `data.pairs` (a slot not staged has its old pairs replaced), the sessions merged (per
    /// client the higher sequence number). Coordinator only. Idempotent: slots already moved
    /// at this epoch or a later one are skipped (`Installed`, no change). Refused with
    /// [`KvError::Moved`] (nothing changes) when a slot to take is served here already, when a
    /// pair's key is not in `slots`, or when the pairs the slots would hold do not add up to
    /// `data.count` and `data.bytes` (a page went missing).
    Install {
        /// The slots arriving.
        slots: Vec<Slot>,
        /// The epoch of the map that moves them.
        epoch: Epoch,
        /// The last pairs (or all of them, for a small move), the source's client sessions,
        /// and the sizes the freeze reported.
        data: SlotData,
    },
}

/// The state that travels with moving slots: the source group's client sessions, so a command
/// that took effect at the source and is retried at the destination is answered from its
/// session instead of being applied twice, and the pairs whose keys hash to the slots, which
/// travel in pages.
///
/// In a [`KvResult::Frozen`] answer, `pairs` is the first page (in key order), `more` says
/// whether pages follow (read them after the last key of `pairs`), and `count` and `bytes`
/// are the sizes of all the frozen pairs. In an [`KvOp::Install`], `pairs` is the last page
/// (the earlier ones were staged by [`KvOp::InstallPart`]), `more` is false, and `count` and
/// `bytes` are the freeze's, checked by the destination. The default is a move of nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotData {
    /// A page of the moving slots' pairs, in key order.
    pub pairs: Vec<(Bytes, Bytes)>,
    /// Every client session of the source group, sorted by client.
    pub sessions: Vec<SessionEntry>,
    /// Whether pairs after the last of `pairs` remain to be read.
    pub more: bool,
    /// How many pairs the moving slots hold in all.
    pub count: u64,
    /// Their size in all: the sum of their keys' and values' lengths.
    pub bytes: u64,
}

/// One page of frozen slots' pairs, read from a member of the source group (not through its
/// log: the frozen pairs never change).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotPage {
    /// The pairs, in key order.
    pub pairs: Vec<(Bytes, Bytes)>,
    /// Whether pairs after the last of `pairs` remain.
    pub more: bool,
}

/// The size a pair counts for in pages and move sizes: its key's and value's lengths.
pub fn pair_bytes(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
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
            KvOp::Freeze { .. } | KvOp::InstallPart { .. } | KvOp::Install { .. } => None,
        }
    }

    /// Whether the operation may change the state (reads can be served without one).
    pub fn is_write(&self) -> bool {
        !matches!(self, KvOp::Get { .. })
    }

    /// Whether this is a coordinator's slot-move operation, which clients may not send.
    pub fn is_slot_move(&self) -> bool {
        matches!(
            self,
            KvOp::Freeze { .. } | KvOp::InstallPart { .. } | KvOp::Install { .. }
        )
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
    /// A `Freeze`: the summary of the frozen slots (sessions, sizes, a first page).
    Frozen(SlotData),
    /// An `Install`: the slots are served here now. An `InstallPart`: the page is staged.
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
