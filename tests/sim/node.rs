//! One simulated node: the library's `MemberCore` (BLE + Sequence Paxos + Replica, glued as a
//! shell drives them) plus the simulator's per-node checks.

use std::collections::HashSet;

use kv_components::ble::Ballot;
use kv_components::replica::{Applied, KvError, MemberCore, MemberCoreConfig, MemberOutput, Reply};
use kv_ports::ids::NodeId;
use kv_ports::kv::{KvCommand, KvOp, KvResult, RequestId};

use super::invariants::Invariants;
use super::net::Msg;

pub struct Node {
    pub id: NodeId,
    pub member: MemberCore,
    last_promise: Ballot,
    check_ballots: bool,
    /// TEST ONLY: answer reads from the local state, bypassing the log (a classic stale-read bug).
    pub stale_reads: bool,
    executed: HashSet<RequestId>,
    out: MemberOutput,
}

impl Node {
    pub fn new(id: NodeId, members: &[NodeId], broken: bool, check_ballots: bool) -> Self {
        let mut cfg = MemberCoreConfig::new(id, members.to_vec());
        cfg.unsafe_skip_promise_check = broken;
        Node {
            id,
            member: MemberCore::new(cfg),
            last_promise: Ballot::ZERO,
            check_ballots,
            stale_reads: false,
            executed: HashSet::new(),
            out: MemberOutput::default(),
        }
    }

    pub fn handle(&mut self, from: NodeId, msg: Msg) {
        self.member.handle(from, msg);
    }

    pub fn tick(&mut self) {
        self.member.tick();
    }

    /// A client command arrives here (see `MemberCore::client_request`).
    pub fn client_request(&mut self, cmd: KvCommand) -> Option<Result<KvResult, KvError>> {
        if let (true, KvOp::Get { key }) = (self.stale_reads, &cmd.op) {
            let value = self.member.replica().store().get(key).cloned();
            return Some(Ok(KvResult::Value(value)));
        }
        self.member.client_request(cmd)
    }

    /// Drain the member: messages to `out`, answers to `replies`; check the invariants on
    /// everything decided and on the promised ballot.
    pub fn drain(
        &mut self,
        out: &mut Vec<(NodeId, Msg)>,
        replies: &mut Vec<Reply>,
        inv: &mut Invariants,
    ) -> Result<(), String> {
        self.member.drain_into(&mut self.out);
        let prom = self.member.sp().promised();
        if self.check_ballots && prom < self.last_promise {
            return Err(format!(
                "{}: promised ballot decreased {:?} -> {:?}",
                self.id, self.last_promise, prom
            ));
        }
        self.last_promise = prom;
        out.append(&mut self.out.messages);
        replies.append(&mut self.out.replies);
        for (idx, entry, applied) in self.out.applied.drain(..) {
            inv.decided(self.id, idx, &entry)?;
            if let Applied::Executed(id, _) = applied {
                if !self.executed.insert(id) {
                    return Err(format!("{}: command {id:?} executed twice", self.id));
                }
            }
        }
        Ok(())
    }

    /// A one-line summary of the node's protocol state, for failure reports.
    pub fn describe(&self) -> String {
        self.member.describe()
    }
}
