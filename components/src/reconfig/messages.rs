//! What the members of a group's configurations say to each other, and what a node reports.

use bytes::Bytes;
use kv_ports::ids::NodeId;
use serde::{Deserialize, Serialize};

use crate::replica::MemberMsg;
use crate::sequence_paxos::StopSign;

/// One message between two nodes serving the same group, in any of its configurations.
///
/// Every message names a configuration, so the traffic of configuration `c` never reaches the
/// protocol cores of `c + 1` (and a forwarded proposal of `c` can never be decided in `c + 1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupMsg {
    /// Leader election and Sequence Paxos traffic of configuration `config`.
    Member {
        /// The configuration the sender runs.
        config: u32,
        /// The protocol message.
        msg: MemberMsg,
    },
    /// "Send me a chunk of the state at the StopSign of configuration `config` (or of a later
    /// one)": the chunk at `resume`'s offset if the receiver holds exactly that encoded state,
    /// else its first chunk.
    SnapshotRequest {
        /// The sealed configuration whose final state the sender needs.
        config: u32,
        /// The transfer under way (the state being assembled and the next offset wanted), or
        /// `None` to start from the beginning.
        resume: Option<(SnapshotId, u64)>,
    },
    /// One chunk of the state at the StopSign of `id.config`: bytes `offset..offset + len` of
    /// a postcard-encoded [`crate::replica::Snapshot`] (store, client sessions and slot
    /// ownership), with the StopSign that names the next configuration.
    ///
    /// A snapshot larger than the link's frame limit travels in many chunks, one per request
    /// (see `report/reconfiguration.md`, "Snapshot transfer").
    Snapshot {
        /// Which encoded state these bytes are part of.
        id: SnapshotId,
        /// The decided StopSign of `id.config`.
        stopsign: StopSign,
        /// Where the chunk starts in the encoded state.
        offset: u64,
        /// The chunk (never empty, never past `id.len`).
        bytes: Bytes,
    },
    /// "Configuration `config` is sealed by this decided StopSign": the answer to traffic of
    /// a configuration the sender has left behind, and the probe a leaving node sends to the
    /// next configuration's members. `config` may be later than the receiver's: then every
    /// configuration before it is sealed too.
    Sealed {
        /// The newest sealed configuration the sender knows.
        config: u32,
        /// Its decided StopSign.
        stopsign: StopSign,
    },
    /// "I run `config`": the answer to a `Sealed` notice about an earlier configuration. It
    /// tells a leaving node that this member holds the state it started from.
    Running {
        /// The configuration the sender runs.
        config: u32,
    },
}

/// Names one encoded final state: chunks of a transfer are only ever assembled when they name
/// the same one, so chunks of different configurations (or of differently encoded states)
/// never mix. Every node that holds the state at a StopSign encodes it to the same bytes (the
/// simulator checks the hashes), so a transfer may resume at another holder of the same state.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotId {
    /// The sealed configuration this is the final state of.
    pub config: u32,
    /// Length of the encoded state, in bytes.
    pub len: u64,
    /// [`fnv1a`] of the encoded state: checked once every chunk has arrived.
    pub hash: u64,
}

impl GroupMsg {
    /// A short name for traces and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            GroupMsg::Member { .. } => "member",
            GroupMsg::SnapshotRequest { .. } => "snapshot-request",
            GroupMsg::Snapshot { .. } => "snapshot",
            GroupMsg::Sealed { .. } => "sealed",
            GroupMsg::Running { .. } => "running",
        }
    }
}

/// A configuration change as seen by one node (for the shell's logs and the simulator's
/// invariants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigEvent {
    /// This node holds the state at the StopSign of `config`: it applied the whole log up to the
    /// StopSign itself (`own`), or installed a peer's snapshot of it.
    Sealed {
        /// The sealed configuration.
        config: u32,
        /// Its StopSign.
        stopsign: StopSign,
        /// FNV-1a of the encoded snapshot: equal on every node, whichever way it got there.
        hash: u64,
        /// Whether this node reached the state by applying its own log.
        own: bool,
    },
    /// This node runs `config` from now on, starting from the state with this hash.
    Started {
        /// The configuration.
        config: u32,
        /// Its members.
        members: Vec<NodeId>,
        /// Hash of the state it starts from (the previous configuration's final state).
        hash: u64,
    },
    /// This node is in no later configuration: it serves snapshots and redirects clients until
    /// a majority of the next configuration holds the state and a grace period passed, then
    /// retires.
    Leaving {
        /// The newest sealed configuration it knows.
        config: u32,
    },
    /// This node learnt that its configuration was sealed without having applied the
    /// StopSign itself: it keeps running it (so its remaining members can decide the StopSign
    /// again) and asks for the state at the StopSign of `config`, whichever comes first.
    CatchingUp {
        /// The sealed configuration.
        config: u32,
        /// The configuration it will run.
        next: u32,
    },
    /// The grace period is over: the shell can stop this group member.
    Retired,
}

/// FNV-1a, 64 bits: a stable hash of the snapshot bytes (the same in every process).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
