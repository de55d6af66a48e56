//! One member of a replication group: the BLE, Sequence Paxos and Replica cores glued together,
//! still pure. A node's shell (or the simulator) drives one `MemberCore` per group it serves:
//! feed it messages, client commands, link events and ticks; drain its output.

use std::collections::HashSet;

use kv_ports::ids::NodeId;
use kv_ports::kv::{KvCommand, KvResult, RequestId};
use kv_ports::membership::Slot;
use serde::{Deserialize, Serialize};

use super::core::{refusal, Applied, KvError, Replica, Reply};
use super::state_machine::Snapshot;
use crate::ble::{Ble, BleConfig, BleMsg};
use crate::sequence_paxos::{Entry, PaxosMsg, ProposeError, SequencePaxos, SpConfig, StopSign};

/// Settings of one member.
#[derive(Clone, Debug)]
pub struct MemberCoreConfig {
    /// This node.
    pub pid: NodeId,
    /// Every member of the group, this node included.
    pub members: Vec<NodeId>,
    /// BLE tie-breaker between equal rounds (higher wins).
    pub priority: u64,
    /// Ticks per BLE heartbeat round; must exceed the round trip in ticks.
    pub round_ticks: u64,
    /// Ticks between Sequence Paxos resends.
    pub resend_ticks: u64,
    /// TEST ONLY: see [`SpConfig::unsafe_skip_promise_check`].
    pub unsafe_skip_promise_check: bool,
    /// TEST ONLY: see [`Replica::set_unsafe_serve_frozen`].
    pub unsafe_serve_frozen: bool,
}

impl MemberCoreConfig {
    /// Defaults: a BLE round every 12 ticks, resends every 4.
    pub fn new(pid: NodeId, members: Vec<NodeId>) -> Self {
        MemberCoreConfig {
            pid,
            members,
            priority: 0,
            round_ticks: 12,
            resend_ticks: 4,
            unsafe_skip_promise_check: false,
            unsafe_serve_frozen: false,
        }
    }
}

/// Everything one member sends to another (one enum, so one link carries both protocols).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberMsg {
    /// Leader election.
    Ble(BleMsg),
    /// Sequence Paxos.
    Sp(PaxosMsg<KvCommand>),
}

/// What one drain produced. Reused across drains to avoid allocating every time.
#[derive(Clone, Debug, Default)]
pub struct MemberOutput {
    /// Messages to send, by destination.
    pub messages: Vec<(NodeId, MemberMsg)>,
    /// Answers for client requests parked here.
    pub replies: Vec<Reply>,
    /// Entries decided and applied in this drain, in log order, with what applying did
    /// (for tests and metrics; a shell may just clear it).
    pub applied: Vec<(u64, Entry<KvCommand>, Applied)>,
}

/// BLE + Sequence Paxos + Replica of one node in one group (in one configuration: a
/// reconfiguration starts a new `MemberCore`, see [`crate::reconfig`]).
#[derive(Clone, Debug)]
pub struct MemberCore {
    ble: Ble,
    sp: SequencePaxos<KvCommand>,
    replica: Replica,
    members: Vec<NodeId>,
    /// Client requests parked here and not answered yet (so a configuration change can answer
    /// them from the final state instead of dropping them).
    unanswered: HashSet<RequestId>,
}

impl MemberCore {
    /// A fresh member with an empty log and store, serving every slot.
    pub fn new(cfg: MemberCoreConfig) -> Self {
        Self::with_replica(cfg, Replica::new())
    }

    /// A fresh member with an empty log and store, serving exactly `slots`.
    pub fn with_slots(cfg: MemberCoreConfig, slots: Vec<Slot>) -> Self {
        Self::with_replica(cfg, Replica::with_slots(slots))
    }

    /// A member of a new configuration: an empty log (indices start at 0 again) over the state
    /// at the previous configuration's StopSign (store and client sessions).
    pub fn from_snapshot(cfg: MemberCoreConfig, snapshot: Snapshot) -> Self {
        let rebased = Snapshot {
            applied: 0,
            ..snapshot
        };
        Self::with_replica(cfg, Replica::from_snapshot(rebased))
    }

    fn with_replica(cfg: MemberCoreConfig, mut replica: Replica) -> Self {
        replica.set_unsafe_serve_frozen(cfg.unsafe_serve_frozen);
        let ble = Ble::new(BleConfig {
            pid: cfg.pid,
            members: cfg.members.clone(),
            priority: cfg.priority,
            round_ticks: cfg.round_ticks,
        });
        let members = cfg.members.clone();
        let mut sp_cfg = SpConfig::new(cfg.pid, cfg.members);
        sp_cfg.resend_ticks = cfg.resend_ticks;
        sp_cfg.unsafe_skip_promise_check = cfg.unsafe_skip_promise_check;
        MemberCore {
            ble,
            sp: SequencePaxos::new(sp_cfg),
            replica,
            members,
            unanswered: HashSet::new(),
        }
    }

    /// Handle a message from another member.
    pub fn handle(&mut self, from: NodeId, msg: MemberMsg) {
        match msg {
            MemberMsg::Ble(m) => self.ble.handle(from, m),
            MemberMsg::Sp(m) => self.sp.handle(from, m),
        }
    }

    /// One tick of time for both protocols.
    pub fn tick(&mut self) {
        self.ble.tick();
        self.sp.tick();
    }

    /// A client command arrives: answered at once from the session table (`Some`), or parked
    /// and proposed (a follower forwards it to the leader); its answer comes out of a drain.
    pub fn client_request(&mut self, cmd: KvCommand) -> Option<Result<KvResult, KvError>> {
        if let Some(answer) = self.replica.admit(&cmd) {
            return Some(answer);
        }
        let id = cmd.id;
        self.unanswered.insert(id);
        if let Err(e) = self.sp.propose(cmd) {
            let hint = self.sp.leader_hint();
            self.replica.reject(id, refusal(e, hint));
        }
        None
    }

    /// Propose the StopSign that seals this group's configuration.
    pub fn reconfigure(&mut self, ss: StopSign) -> Result<(), ProposeError> {
        self.sp.reconfigure(ss)
    }

    /// The link to `peer` came back: re-synchronise with it.
    pub fn reconnected(&mut self, peer: NodeId) {
        self.sp.reconnected(peer);
    }

    /// The link to `peer` dropped.
    pub fn connection_lost(&mut self, peer: NodeId) {
        self.sp.connection_lost(peer);
    }

    /// Pass indications between the cores, then collect everything to send and answer.
    pub fn drain_into(&mut self, out: &mut MemberOutput) {
        if let Some(b) = self.ble.take_leader() {
            self.sp.handle_leader(b);
        }
        if let Some(b) = self.sp.take_ballot_hint() {
            self.ble.overtake(b);
        }
        self.ble.observe_promise(self.sp.promised());
        let ble = self.ble.take_outgoing().into_iter();
        out.messages
            .extend(ble.map(|(to, m)| (to, MemberMsg::Ble(m))));
        let sp = self.sp.take_outgoing().into_iter();
        out.messages
            .extend(sp.map(|(to, m)| (to, MemberMsg::Sp(m))));
        for (idx, entry) in self.sp.take_decided() {
            let applied = self.replica.apply(idx, &entry);
            out.applied.push((idx, entry, applied));
        }
        let replies = self.replica.take_replies();
        if !self.unanswered.is_empty() {
            for (id, _) in &replies {
                self.unanswered.remove(id);
            }
        }
        out.replies.extend(replies);
    }

    /// Client requests parked here that got no answer yet (sorted, for determinism). When this
    /// configuration ends, whoever drops the member answers them (see [`crate::reconfig`]).
    pub fn unanswered(&self) -> Vec<RequestId> {
        let mut v: Vec<RequestId> = self.unanswered.iter().copied().collect();
        v.sort();
        v
    }

    /// The members of this configuration, this node included.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// The leader election core (read-only, for status and tests).
    pub fn ble(&self) -> &Ble {
        &self.ble
    }

    /// The Sequence Paxos core (read-only, for status and tests).
    pub fn sp(&self) -> &SequencePaxos<KvCommand> {
        &self.sp
    }

    /// The replica (read-only, for status and tests).
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// A one-line summary of the protocol state, for logs and failure reports.
    pub fn describe(&self) -> String {
        let sp = &self.sp;
        format!(
            "{}: {:?}/{:?} prom {:?} acc {:?} ld {} len {} trim {} leader {:?} ble {:?} own {:?} qc {}",
            sp.pid(),
            sp.role(),
            sp.phase(),
            sp.promised(),
            sp.accepted_round(),
            sp.decided_idx(),
            sp.log_len(),
            sp.trimmed_idx(),
            sp.leader_hint(),
            self.ble.leader(),
            self.ble.ballot(),
            self.ble.is_quorum_connected(),
        )
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kv_ports::ids::ClientId;
    use kv_ports::kv::{KvOp, RequestId};
    use uuid::Uuid;

    use super::*;

    /// Three members over a lossless, instant network: a leader emerges and serves a client
    /// that talks to a follower.
    #[test]
    fn three_members_elect_a_leader_and_serve_a_request() {
        let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let mut members: Vec<MemberCore> = ids
            .iter()
            .map(|&p| MemberCore::new(MemberCoreConfig::new(p, ids.clone())))
            .collect();
        let cmd = KvCommand {
            id: RequestId {
                client: ClientId(Uuid::from_u128(1)),
                seq: 1,
            },
            op: KvOp::Put {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
            },
        };
        let mut out = MemberOutput::default();
        let mut answer = None;
        for t in 0..200 {
            if t == 100 {
                assert!(members.iter().any(|m| m.sp().is_accepting_leader()));
                let follower = members.iter().position(|m| !m.sp().is_accepting_leader());
                assert_eq!(members[follower.unwrap()].client_request(cmd.clone()), None);
            }
            for m in members.iter_mut() {
                m.tick();
            }
            for i in 0..members.len() {
                members[i].drain_into(&mut out);
                let from = ids[i];
                for (to, msg) in out.messages.drain(..) {
                    members[(to.0 - 1) as usize].handle(from, msg);
                }
                answer = answer.or(out.replies.pop());
                out.applied.clear();
            }
        }
        assert_eq!(answer, Some((cmd.id, Ok(KvResult::Written))));
        for m in &members {
            assert_eq!(
                m.replica().store().get(b"k"),
                Some(&Bytes::from_static(b"v"))
            );
        }
    }
}
