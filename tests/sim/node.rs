//! One simulated node: the library's `GroupNode` (a `MemberCore` of BLE + Sequence Paxos +
//! Replica per configuration, glued as a shell drives them) plus the simulator's per-node
//! checks.

use std::collections::HashSet;

use kv_components::ble::Ballot;
use kv_components::reconfig::{ConfigEvent, GroupNode, GroupNodeConfig, GroupOutput};
use kv_components::replica::{Applied, KvError, Reply};
use kv_ports::ids::NodeId;
use kv_ports::kv::{KvCommand, KvOp, KvResult, RequestId};
use kv_ports::membership::Slot;

use super::invariants::Invariants;
use super::net::Msg;
use super::slots::SlotChecks;

/// Ticks a leaving node stays to serve snapshots and redirect clients (ten election rounds).
pub const RETIRE_GRACE: u64 = 120;

/// Largest snapshot chunk, in bytes: small enough that a snapshot of the simulator's few
/// keys travels in several chunks.
pub const SNAPSHOT_CHUNK: usize = 24;

pub struct Node {
    pub id: NodeId,
    /// Which of the simulator's groups this node serves (each node serves one).
    pub gi: usize,
    pub group: GroupNode,
    last_promise: Ballot,
    promise_config: u32,
    last_epoch: u32,
    check_ballots: bool,
    /// TEST ONLY: answer reads from the local state, bypassing the log (a classic stale-read bug).
    pub stale_reads: bool,
    executed: HashSet<RequestId>,
    out: GroupOutput,
}

/// Which deliberate bugs a node runs with (tests only).
#[derive(Copy, Clone, Debug, Default)]
pub struct Bugs {
    /// Acceptors promise any ballot.
    pub skip_promise_check: bool,
    /// A new configuration starts without the client sessions.
    pub forget_sessions: bool,
    /// Replicas keep serving slots they froze (or never owned).
    pub serve_frozen: bool,
}

fn node_config(id: NodeId, bugs: Bugs) -> GroupNodeConfig {
    let mut cfg = GroupNodeConfig::new(id);
    cfg.unsafe_skip_promise_check = bugs.skip_promise_check;
    cfg.unsafe_forget_sessions = bugs.forget_sessions;
    cfg.unsafe_serve_frozen = bugs.serve_frozen;
    cfg.retire_grace_ticks = RETIRE_GRACE;
    // Tiny chunks: every snapshot transfer takes many chunks, under loss, duplication,
    // reordering and crashes.
    cfg.snapshot_chunk_bytes = SNAPSHOT_CHUNK;
    cfg
}

impl Node {
    fn with_group(id: NodeId, group: GroupNode, check_ballots: bool) -> Self {
        Node {
            id,
            gi: 0,
            last_epoch: group.epoch(),
            group,
            last_promise: Ballot::ZERO,
            promise_config: 0,
            check_ballots,
            stale_reads: false,
            executed: HashSet::new(),
            out: GroupOutput::default(),
        }
    }

    /// A member of configuration `config` from the group's start.
    pub fn new(
        id: NodeId,
        config: u32,
        members: &[NodeId],
        bugs: Bugs,
        check_ballots: bool,
    ) -> Self {
        let group = GroupNode::new(node_config(id, bugs), config, members.to_vec());
        Self::with_group(id, group, check_ballots)
    }

    /// A member of configuration `config` of group `gi` from its start, serving `slots`.
    pub fn with_slots(
        id: NodeId,
        gi: usize,
        members: &[NodeId],
        slots: Vec<Slot>,
        bugs: Bugs,
    ) -> Self {
        let cfg = node_config(id, bugs);
        let group = GroupNode::with_slots(cfg, 0, members.to_vec(), slots);
        let mut node = Self::with_group(id, group, true);
        node.gi = gi;
        node
    }

    /// A brand-new node named in configuration `next`, which follows `after`.
    pub fn joining(
        id: NodeId,
        after: u32,
        next: u32,
        sources: Vec<NodeId>,
        bugs: Bugs,
        check_ballots: bool,
    ) -> Self {
        let group = GroupNode::joining(node_config(id, bugs), after, next, sources);
        Self::with_group(id, group, check_ballots)
    }

    pub fn handle(&mut self, from: NodeId, msg: Msg) {
        self.group.handle(from, msg);
    }

    pub fn tick(&mut self) {
        self.group.tick();
    }

    /// A client command arrives here (see `GroupNode::client_request`).
    pub fn client_request(&mut self, cmd: KvCommand) -> Option<Result<KvResult, KvError>> {
        if let (true, KvOp::Get { key }, Some(m)) = (self.stale_reads, &cmd.op, self.group.member())
        {
            let value = m.replica().store().get(key).cloned();
            return Some(Ok(KvResult::Value(value)));
        }
        self.group.client_request(cmd)
    }

    /// Drain the node: messages to `out`, answers to `replies`; check the invariants on
    /// everything decided, on configuration changes and on the promised ballot. Returns
    /// whether the node retired (the simulator then drops it).
    pub fn drain(
        &mut self,
        out: &mut Vec<(NodeId, Msg)>,
        replies: &mut Vec<Reply>,
        inv: &mut Invariants,
        slots: &mut SlotChecks,
        now: u64,
    ) -> Result<bool, String> {
        self.group.drain_into(&mut self.out);
        if let (Some(c), Some(m)) = (self.group.config(), self.group.member()) {
            if c != self.promise_config {
                // A new configuration: a new Sequence Paxos instance, ballots start over.
                self.promise_config = c;
                self.last_promise = Ballot::ZERO;
            }
            let prom = m.sp().promised();
            if self.check_ballots && prom < self.last_promise {
                return Err(format!(
                    "{} (c{c}): promised ballot decreased {:?} -> {:?}",
                    self.id, self.last_promise, prom
                ));
            }
            self.last_promise = prom;
        }
        let epoch = self.group.epoch();
        if epoch < self.last_epoch {
            return Err(format!(
                "{}: configuration went back from c{} to c{epoch}",
                self.id, self.last_epoch
            ));
        }
        self.last_epoch = epoch;
        out.append(&mut self.out.messages);
        replies.append(&mut self.out.replies);
        for (config, idx, entry, applied) in self.out.applied.drain(..) {
            inv.decided(config, self.id, idx, &entry)?;
            let at = (self.gi, config, idx);
            slots.applied(self.id, at, &entry, &applied, now)?;
            if let Applied::Executed(id, _) = applied {
                if !self.executed.insert(id) {
                    return Err(format!("{}: command {id:?} executed twice", self.id));
                }
                inv.executed(self.id, id, config, idx)?;
            }
        }
        let mut retired = false;
        for ev in self.out.events.drain(..) {
            if matches!(ev, ConfigEvent::Retired) {
                retired = true;
            }
            inv.config_event(self.id, &ev)?;
        }
        Ok(retired)
    }

    /// A one-line summary of the node's protocol state, for failure reports.
    pub fn describe(&self) -> String {
        self.group.describe()
    }
}
