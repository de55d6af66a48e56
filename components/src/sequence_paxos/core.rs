//! The Sequence Paxos state machine: state, inputs, outputs. Handlers live in `leader.rs`
//! and `follower.rs`.

use std::collections::{BTreeMap, BTreeSet};

use kv_ports::ids::NodeId;
use thiserror::Error;

use super::log::Log;
use super::messages::{Entry, PaxosMsg, StopSign};
use crate::ble::Ballot;

/// Static settings of one Sequence Paxos replica.
#[derive(Clone, Debug)]
pub struct SpConfig {
    /// This replica.
    pub pid: NodeId,
    /// Every member of the configuration, this replica included.
    pub members: Vec<NodeId>,
    /// Ticks between resends of unanswered Prepares, lagging accepts and PrepareReqs.
    pub resend_ticks: u64,
    /// Largest number of entries in one resent batch (bounds message size on catch-up).
    pub max_resend: usize,
    /// TEST ONLY: promise every Prepare without comparing its ballot to the promised one.
    /// This breaks Paxos on purpose so the simulator can show it catches the bug. Never set it
    /// outside tests.
    pub unsafe_skip_promise_check: bool,
}

impl SpConfig {
    /// A configuration with the default timings.
    pub fn new(pid: NodeId, members: Vec<NodeId>) -> Self {
        SpConfig {
            pid,
            members,
            resend_ticks: 4,
            max_resend: 1024,
            unsafe_skip_promise_check: false,
        }
    }
}

/// Why a proposal was not taken.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProposeError {
    /// This replica does not know a leader to forward to; retry later or elsewhere.
    #[error("no leader known")]
    NoLeader,
    /// The log is sealed by a StopSign; the named configuration takes over.
    #[error("log sealed: configuration {next_config} takes over")]
    Sealed {
        /// The configuration named by the StopSign.
        next_config: u32,
    },
}

/// Whether this replica leads or follows.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Drives the protocol in its ballot.
    Leader,
    /// Answers the leader.
    Follower,
}

/// Where in the protocol this replica is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Collecting promises (leader) or waiting for an AcceptSync (follower).
    Prepare,
    /// Replicating entries in the current ballot.
    Accept,
}

/// What a follower told the leader in its promise (the suffix is consumed at adoption).
#[derive(Copy, Clone, Debug)]
pub(super) struct PromiseMeta {
    pub acc_rnd: Ballot,
    pub log_len: u64,
    pub ld: u64,
}

/// The best log offered in the promises so far: its round and end, and the entries.
#[derive(Clone, Debug)]
pub(super) struct BestLog<T> {
    pub acc_rnd: Ballot,
    pub end: u64,
    /// `None` when the leader's own log is the best.
    pub suffix: Option<(u64, Vec<Entry<T>>)>,
}

/// State only a leader keeps, reset at every new ballot.
#[derive(Clone, Debug)]
pub(super) struct LeaderState<T> {
    pub n: Ballot,
    pub promises: BTreeMap<NodeId, PromiseMeta>,
    pub best: BestLog<T>,
    /// The round of the adopted log; followers accepted in it hold a prefix of it.
    pub max_prom_acc: Ballot,
    /// Length of the adopted log before new entries of this ballot were appended.
    pub adopted_len: u64,
    /// Followers that were sent an AcceptSync in this ballot.
    pub synced: BTreeSet<NodeId>,
    /// Highest log length each follower accepted in this ballot.
    pub las: BTreeMap<NodeId, u64>,
    /// Highest decided index each follower reported.
    pub lds: BTreeMap<NodeId, u64>,
    /// `(las, lds)` per follower at the last resend check, to spot lack of progress.
    pub last_check: BTreeMap<NodeId, (u64, u64)>,
    /// Entries from here on have not been broadcast yet (batching).
    pub unsent_from: u64,
    /// The decided index last broadcast.
    pub decided_sent: u64,
    /// The compaction point last broadcast.
    pub trim_sent: u64,
}

/// One Sequence Paxos replica: a pure state machine (no I/O, no clock, no randomness).
///
/// Inputs: [`handle`](Self::handle), [`propose`](Self::propose),
/// [`reconfigure`](Self::reconfigure), [`handle_leader`](Self::handle_leader) (from BLE),
/// [`tick`](Self::tick), [`reconnected`](Self::reconnected). Outputs are buffered:
/// [`take_outgoing`](Self::take_outgoing), [`take_decided`](Self::take_decided) and
/// [`take_ballot_hint`](Self::take_ballot_hint).
#[derive(Clone, Debug)]
pub struct SequencePaxos<T> {
    pub(super) cfg: SpConfig,
    pub(super) peers: Vec<NodeId>,
    pub(super) majority: usize,
    pub(super) role: Role,
    pub(super) phase: Phase,
    pub(super) n_prom: Ballot,
    pub(super) acc_rnd: Ballot,
    pub(super) log: Log<T>,
    pub(super) ld: u64,
    /// The leader this replica believes in (from BLE or from a Prepare).
    pub(super) leader: Option<NodeId>,
    pub(super) lead: Option<LeaderState<T>>,
    /// Proposals held by a leader still in its prepare phase.
    pub(super) pending: Vec<Entry<T>>,
    /// Proposals to forward to the leader at the next drain (batching).
    pub(super) forward: Vec<Entry<T>>,
    pub(super) outgoing: Vec<(NodeId, PaxosMsg<T>)>,
    /// Decided entries below this index were handed to the caller.
    pub(super) taken: u64,
    /// The highest compaction point the leader allowed.
    pub(super) trim_allowed: u64,
    pub(super) decided_ss: Option<StopSign>,
    pub(super) ballot_hint: Option<Ballot>,
    pub(super) ticks: u64,
}

impl<T: Clone> SequencePaxos<T> {
    /// A fresh replica with an empty log, following nobody yet.
    pub fn new(cfg: SpConfig) -> Self {
        assert!(
            cfg.members.contains(&cfg.pid),
            "a replica is a member of its configuration"
        );
        assert!(cfg.resend_ticks > 0 && cfg.max_resend > 0);
        let peers = crate::quorum::peers(&cfg.members, cfg.pid);
        let majority = crate::quorum::majority(cfg.members.len());
        SequencePaxos {
            cfg,
            peers,
            majority,
            role: Role::Follower,
            phase: Phase::Prepare,
            n_prom: Ballot::ZERO,
            acc_rnd: Ballot::ZERO,
            log: Log::default(),
            ld: 0,
            leader: None,
            lead: None,
            pending: Vec::new(),
            forward: Vec::new(),
            outgoing: Vec::new(),
            taken: 0,
            trim_allowed: 0,
            decided_ss: None,
            ballot_hint: None,
            ticks: 0,
        }
    }

    /// This replica's id.
    pub fn pid(&self) -> NodeId {
        self.cfg.pid
    }

    /// The ballot this replica promised (never decreases).
    pub fn promised(&self) -> Ballot {
        self.n_prom
    }

    /// The ballot in which the log was last accepted.
    pub fn accepted_round(&self) -> Ballot {
        self.acc_rnd
    }

    /// Everything below this index is decided.
    pub fn decided_idx(&self) -> u64 {
        self.ld
    }

    /// The log length (absolute).
    pub fn log_len(&self) -> u64 {
        self.log.len()
    }

    /// The first index still held after compaction.
    pub fn trimmed_idx(&self) -> u64 {
        self.log.trimmed()
    }

    /// The entry at absolute index `idx`, if still held.
    pub fn entry(&self, idx: u64) -> Option<&Entry<T>> {
        self.log.get(idx)
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The leader this replica believes in, if any (a hint for clients: `NotLeader { hint }`).
    pub fn leader_hint(&self) -> Option<NodeId> {
        self.leader
    }

    /// Whether this replica leads and replicates in its ballot.
    pub fn is_accepting_leader(&self) -> bool {
        self.role == Role::Leader && self.phase == Phase::Accept
    }

    /// The decided StopSign, once the log is sealed for good.
    pub fn decided_stopsign(&self) -> Option<&StopSign> {
        self.decided_ss.as_ref()
    }

    /// Whether the log holds a StopSign at its end (decided or not): nothing may follow it.
    pub fn stopsign_pending(&self) -> Option<&StopSign> {
        match self.log.last() {
            Some(Entry::StopSign(ss)) => Some(ss),
            _ => self.decided_ss.as_ref(),
        }
    }

    /// Propose a command. A leader appends it (batched until the next drain); a follower
    /// forwards it to the leader it knows. Decision is reported through `take_decided` on every
    /// replica, so the caller answers its client when the command shows up there.
    pub fn propose(&mut self, cmd: T) -> Result<(), ProposeError> {
        self.propose_entry(Entry::Cmd(cmd))
    }

    /// Propose a StopSign that seals this configuration and names the next one.
    pub fn reconfigure(&mut self, ss: StopSign) -> Result<(), ProposeError> {
        self.propose_entry(Entry::StopSign(ss))
    }

    fn propose_entry(&mut self, entry: Entry<T>) -> Result<(), ProposeError> {
        if let Some(ss) = self.stopsign_pending() {
            return Err(ProposeError::Sealed {
                next_config: ss.next_config,
            });
        }
        match (self.role, self.phase) {
            (Role::Leader, Phase::Accept) => {
                self.append_as_leader(vec![entry]);
                Ok(())
            }
            (Role::Leader, Phase::Prepare) => {
                self.pending.push(entry);
                Ok(())
            }
            (Role::Follower, _) => match self.leader {
                Some(l) if l != self.cfg.pid => {
                    self.forward.push(entry);
                    Ok(())
                }
                _ => Err(ProposeError::NoLeader),
            },
        }
    }

    /// Handle one message from `from`.
    pub fn handle(&mut self, from: NodeId, msg: PaxosMsg<T>) {
        match msg {
            PaxosMsg::Prepare {
                n,
                ld,
                acc_rnd,
                log_len,
            } => self.on_prepare(from, n, ld, acc_rnd, log_len),
            PaxosMsg::Promise {
                n,
                acc_rnd,
                log_len,
                ld,
                sfx_start,
                suffix,
            } => {
                let meta = PromiseMeta {
                    acc_rnd,
                    log_len,
                    ld,
                };
                self.on_promise(from, n, meta, sfx_start, suffix)
            }
            PaxosMsg::AcceptSync {
                n,
                sync_idx,
                suffix,
                ld,
            } => self.on_accept_sync(from, n, sync_idx, suffix, ld),
            PaxosMsg::AcceptDecide {
                n,
                start,
                entries,
                ld,
            } => self.on_accept_decide(from, n, start, entries, ld),
            PaxosMsg::Accepted { n, log_len, ld } => self.on_accepted(from, n, log_len, ld),
            PaxosMsg::Decide { n, ld } => self.on_decide(from, n, ld),
            PaxosMsg::Trim { n, idx } => self.on_trim(n, idx),
            PaxosMsg::PrepareReq { n } => self.on_prepare_req(from, n),
            PaxosMsg::Nack { n, promised } => self.on_nack(n, promised),
            PaxosMsg::Proposal { entries } => self.on_proposal(entries),
        }
    }

    /// BLE elected `b`. If it is ours and higher than our promise we lead in it; if it is ours
    /// but not high enough, we ask BLE (through the ballot hint) for a higher one.
    pub fn handle_leader(&mut self, b: Ballot) {
        self.leader = Some(b.pid);
        if b.pid == self.cfg.pid {
            if b > self.n_prom {
                self.become_leader(b);
            } else if self.lead.as_ref().map(|l| l.n) != Some(b) {
                self.hint(self.n_prom);
            }
        } else {
            self.step_down();
            if self.phase == Phase::Prepare && b >= self.n_prom {
                self.outgoing
                    .push((b.pid, PaxosMsg::PrepareReq { n: self.n_prom }));
            }
        }
    }

    /// Time passes by one tick: resend what may have been lost.
    pub fn tick(&mut self) {
        self.ticks += 1;
        if !self.ticks.is_multiple_of(self.cfg.resend_ticks) {
            return;
        }
        match self.role {
            Role::Leader => self.leader_resend(),
            Role::Follower => self.follower_resend(),
        }
    }

    /// The link to `peer` came back after a loss: re-synchronise with it.
    pub fn reconnected(&mut self, peer: NodeId) {
        // A shell may report every link of the node (other groups', other configurations'):
        // only this instance's peers take part in its protocol.
        if !self.peers.contains(&peer) {
            return;
        }
        match self.role {
            Role::Leader => self.send_prepare(peer),
            Role::Follower if Some(peer) == self.leader => {
                self.phase = Phase::Prepare;
                self.outgoing
                    .push((peer, PaxosMsg::PrepareReq { n: self.n_prom }));
            }
            Role::Follower => {}
        }
    }

    /// The link to `peer` dropped. Nothing to do until it comes back (see `reconnected`).
    pub fn connection_lost(&mut self, _peer: NodeId) {}

    /// Drain the messages to send, flushing the current batch first.
    pub fn take_outgoing(&mut self) -> Vec<(NodeId, PaxosMsg<T>)> {
        self.flush();
        std::mem::take(&mut self.outgoing)
    }

    /// Drain newly decided entries `(absolute index, entry)`, in log order, each exactly once.
    pub fn take_decided(&mut self) -> Vec<(u64, Entry<T>)> {
        let from = self.taken;
        let out: Vec<_> = (from..self.ld).zip(self.log.slice(from, self.ld)).collect();
        self.taken = self.ld;
        self.compact();
        out
    }

    /// A ballot this replica needs BLE to exceed before it can lead (see `handle_leader`).
    pub fn take_ballot_hint(&mut self) -> Option<Ballot> {
        self.ballot_hint.take()
    }

    pub(super) fn hint(&mut self, above: Ballot) {
        if self.ballot_hint.is_none_or(|h| h < above) {
            self.ballot_hint = Some(above);
        }
    }

    /// Raise the decided index to `idx` (capped by the log), noticing a decided StopSign.
    pub(super) fn decide_up_to(&mut self, idx: u64) {
        let idx = idx.min(self.log.len());
        if idx <= self.ld {
            return;
        }
        self.ld = idx;
        if let Some(Entry::StopSign(ss)) = self.log.get(idx - 1) {
            self.decided_ss = Some(ss.clone());
        }
        assert!(self.ld <= self.log.len(), "decided index beyond the log");
    }

    /// Append entries at the end of the log, refusing anything after a StopSign.
    pub(super) fn append(&mut self, entries: Vec<Entry<T>>) {
        if entries.is_empty() {
            return;
        }
        assert!(self.decided_ss.is_none(), "append after a decided StopSign");
        assert!(
            !self.log.last().is_some_and(Entry::is_stopsign),
            "append after a StopSign"
        );
        if let Some(i) = entries.iter().position(Entry::is_stopsign) {
            assert_eq!(i + 1, entries.len(), "a StopSign must end the log");
        }
        self.log.extend(entries);
    }

    /// Drop the decided prefix the leader allowed and the caller already took.
    pub(super) fn compact(&mut self) {
        let idx = self.trim_allowed.min(self.taken).min(self.ld);
        self.log.trim(idx);
    }

    pub(super) fn set_promise(&mut self, n: Ballot) {
        if !self.cfg.unsafe_skip_promise_check {
            assert!(n >= self.n_prom, "promised ballot decreased");
        }
        self.n_prom = n;
    }
}
