//! What Sequence Paxos replicas say to each other, and what their logs hold.

use serde::{Deserialize, Serialize};

use crate::ble::Ballot;

/// Log entries and the StopSign are port types (`kv_ports::consensus`): decided entries cross
/// the Consensus port to the replica, and a StopSign is requested through it.
pub use kv_ports::consensus::{Entry, StopSign};

/// A Sequence Paxos message between members of one replication group.
///
/// Log positions are absolute (they survive compaction). Every message tagged with a ballot is
/// ignored when the ballot is stale, so the protocol stays safe under loss, duplication and
/// reordering; progress after loss comes from resends on `tick()` and from `PrepareReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaxosMsg<T> {
    /// Leader → follower: promise not to accept lower ballots, and tell me your log.
    Prepare {
        /// The leader's ballot.
        n: Ballot,
        /// The leader's decided index.
        ld: u64,
        /// The ballot in which the leader last accepted.
        acc_rnd: Ballot,
        /// The leader's log length.
        log_len: u64,
    },
    /// Follower → leader: promised `n`, with the part of the log the leader may be missing.
    Promise {
        /// The ballot promised.
        n: Ballot,
        /// The ballot in which the follower last accepted.
        acc_rnd: Ballot,
        /// The follower's log length.
        log_len: u64,
        /// The follower's decided index.
        ld: u64,
        /// Absolute index of the first entry of `suffix`.
        sfx_start: u64,
        /// Log entries the leader may lack (empty when the leader's log is at least as good).
        suffix: Vec<Entry<T>>,
    },
    /// Leader → follower: replace your log from `sync_idx` on with `suffix`.
    AcceptSync {
        /// The leader's ballot.
        n: Ballot,
        /// Absolute index where `suffix` starts.
        sync_idx: u64,
        /// The leader's log from `sync_idx` on.
        suffix: Vec<Entry<T>>,
        /// The leader's decided index.
        ld: u64,
    },
    /// Leader → follower: accept these entries (a batch), and everything below `ld` is decided.
    AcceptDecide {
        /// The leader's ballot.
        n: Ballot,
        /// Absolute index of the first entry.
        start: u64,
        /// The batch.
        entries: Vec<Entry<T>>,
        /// The leader's decided index.
        ld: u64,
    },
    /// Follower → leader: my log is accepted in `n` up to `log_len`; I decided up to `ld`.
    Accepted {
        /// The ballot accepted in.
        n: Ballot,
        /// The follower's log length.
        log_len: u64,
        /// The follower's decided index (lets the leader compact).
        ld: u64,
    },
    /// Leader → follower: everything below `ld` is decided.
    Decide {
        /// The leader's ballot.
        n: Ballot,
        /// The leader's decided index.
        ld: u64,
    },
    /// Leader → follower: every member decided below `idx`; you may drop that prefix.
    Trim {
        /// The leader's ballot.
        n: Ballot,
        /// The compaction point.
        idx: u64,
    },
    /// Follower → leader: I lost my session with you; send me a Prepare to resynchronise.
    PrepareReq {
        /// The ballot the follower promised.
        n: Ballot,
    },
    /// Acceptor → would-be leader: I promised a higher ballot, so your Prepare was ignored.
    Nack {
        /// The rejected ballot.
        n: Ballot,
        /// The ballot the acceptor has promised.
        promised: Ballot,
    },
    /// Follower → leader: client proposals forwarded for the leader to append (a batch).
    Proposal {
        /// The forwarded entries.
        entries: Vec<Entry<T>>,
    },
}
