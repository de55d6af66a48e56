//! The Replica core: parks client requests, applies decided entries in log order, answers.

use std::collections::HashSet;

use kv_ports::ids::NodeId;
use kv_ports::kv::{KvCommand, KvResult, RequestId, SlotPage};
use kv_ports::membership::{slot_of, Epoch, Slot};

use super::moves::{self, MoveTarget};
use super::ownership::Ownership;
use super::session::{Seen, SessionTable};
use super::state_machine::{KvStore, Snapshot};
use crate::sequence_paxos::{Entry, ProposeError};

/// Why a request got no result: the Kv port's error type, so the shell passes it through.
pub use kv_ports::kv::KvError;

/// Translate a Sequence Paxos refusal for the client (`hint`: the leader this node knows).
pub fn refusal(e: ProposeError, hint: Option<NodeId>) -> KvError {
    match e {
        ProposeError::NoLeader => KvError::NotLeader { hint },
        ProposeError::Sealed { next_config } => KvError::Sealed { next_config },
    }
}

/// An answer for a parked client request.
pub type Reply = (RequestId, Result<KvResult, KvError>);

/// What applying one log entry did (lets tests count effects per command).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The command took effect with this result.
    Executed(RequestId, KvResult),
    /// A retry of an applied command: no effect.
    Duplicate(RequestId),
    /// A client command on a slot this group does not serve (any more, or yet): answered
    /// `Moved`, no effect, not recorded in the session table.
    Moved(RequestId),
    /// A slot move (`Freeze` / `InstallPart` / `Install`) with its answer; the session table is not involved.
    SlotMove(RequestId, Result<KvResult, KvError>),
    /// A StopSign: no effect on the store.
    StopSign,
}

/// The pure replica: a key-value store plus sessions plus the slots it serves, driven by the
/// decided log.
///
/// Use: [`admit`](Self::admit) a client command (if it returns `None`, propose it to Sequence
/// Paxos; if the proposal fails, [`reject`](Self::reject) it); feed every decided entry to
/// [`apply`](Self::apply) in log order; drain [`take_replies`](Self::take_replies).
/// Every replica applies every command, so the one a client waits at answers it even when its
/// proposal was forwarded to the leader.
///
/// Ownership is checked when a command is applied, not when it arrives: whether a slot is
/// served is a fact about a log index (a `Freeze` or `Install` decided earlier or later), and a
/// replica that lags behind its log must not refuse what its group already serves.
#[derive(Clone, Debug, Default)]
pub struct Replica {
    store: KvStore,
    sessions: SessionTable,
    ownership: Ownership,
    applied: u64,
    parked: HashSet<RequestId>,
    replies: Vec<Reply>,
    unsafe_serve_frozen: bool,
}

impl Replica {
    /// An empty replica at log index 0 serving every slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty replica at log index 0 serving exactly `slots`.
    pub fn with_slots(slots: impl IntoIterator<Item = Slot>) -> Self {
        Replica {
            ownership: Ownership::of(slots),
            ..Self::default()
        }
    }

    /// TEST ONLY: keep serving client commands on slots this replica does not own (a source
    /// that goes on serving after a freeze). The simulator shows its checks catch it.
    pub fn set_unsafe_serve_frozen(&mut self, on: bool) {
        self.unsafe_serve_frozen = on;
    }

    /// A command arrives. `Some(answer)` when the session table already knows it (or a slot
    /// move is malformed); `None` when it is parked and the caller must propose it.
    pub fn admit(&mut self, cmd: &KvCommand) -> Option<Result<KvResult, KvError>> {
        if cmd.op.is_slot_move() {
            if let Err(e) = moves::validate(&cmd.op) {
                return Some(Err(e));
            }
            self.parked.insert(cmd.id);
            return None;
        }
        match self.sessions.seen(&cmd.id) {
            Seen::Latest(r) => Some(Ok(r)),
            Seen::Older => Some(Err(KvError::Superseded)),
            Seen::New => {
                self.parked.insert(cmd.id);
                None
            }
        }
    }

    /// The proposal of a parked command failed: answer it with `err`.
    pub fn reject(&mut self, id: RequestId, err: KvError) {
        if self.parked.remove(&id) {
            self.replies.push((id, Err(err)));
        }
    }

    /// Apply the decided entry at log index `idx`; indices must come in order, each once.
    pub fn apply(&mut self, idx: u64, entry: &Entry<KvCommand>) -> Applied {
        assert_eq!(
            idx, self.applied,
            "log entries are applied in order, each exactly once"
        );
        self.applied += 1;
        let cmd = match entry {
            Entry::StopSign(_) => return Applied::StopSign,
            Entry::Cmd(c) => c,
        };
        let (applied, answer) = if cmd.op.is_slot_move() {
            let r = moves::apply(self.move_target(), &cmd.op);
            (Applied::SlotMove(cmd.id, r.clone()), r)
        } else {
            self.apply_client(cmd)
        };
        if self.parked.remove(&cmd.id) {
            self.replies.push((cmd.id, answer));
        }
        applied
    }

    /// A client command: a known one is answered from its session (it took effect once,
    /// here or in the group a moved slot came from); a new one takes effect only if its slot is
    /// served here, else it is answered `Moved` and leaves no trace.
    fn apply_client(&mut self, cmd: &KvCommand) -> (Applied, Result<KvResult, KvError>) {
        match self.sessions.seen(&cmd.id) {
            Seen::New => {
                let key = cmd.op.key().expect("client operations have a key");
                let slot = slot_of(key);
                if !self.ownership.owns(slot) && !self.unsafe_serve_frozen {
                    let epoch = self.ownership.moved_epoch(slot);
                    return (Applied::Moved(cmd.id), Err(KvError::Moved { epoch }));
                }
                let r = self.store.apply(&cmd.op);
                self.sessions.record(cmd.id, r.clone());
                (Applied::Executed(cmd.id, r.clone()), Ok(r))
            }
            Seen::Latest(r) => (Applied::Duplicate(cmd.id), Ok(r)),
            Seen::Older => (Applied::Duplicate(cmd.id), Err(KvError::Superseded)),
        }
    }

    fn move_target(&mut self) -> MoveTarget<'_> {
        MoveTarget {
            store: &mut self.store,
            sessions: &mut self.sessions,
            ownership: &mut self.ownership,
        }
    }

    /// A page of the pairs of `slots` frozen here by `epoch`, after key `after`, of about
    /// `max_bytes` (see [`moves::page`]). A read of this replica's state, not through the log:
    /// refused with `Moved` unless this replica applied that very freeze.
    pub fn frozen_page(
        &self,
        slots: &[Slot],
        epoch: Epoch,
        after: Option<&[u8]>,
        max_bytes: usize,
    ) -> Result<SlotPage, KvError> {
        moves::page(&self.store, &self.ownership, slots, epoch, after, max_bytes)
    }

    /// Drain the answers for parked requests.
    pub fn take_replies(&mut self) -> Vec<Reply> {
        std::mem::take(&mut self.replies)
    }

    /// The next log index to apply (= number of entries applied).
    pub fn applied_idx(&self) -> u64 {
        self.applied
    }

    /// The store (for inspection and tests).
    pub fn store(&self) -> &KvStore {
        &self.store
    }

    /// The slots served and the moves applied (read-only, for status and tests).
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// Export the state for transfer to a new member.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            applied: self.applied,
            pairs: self
                .store
                .pairs()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            sessions: self.sessions.export(),
            ownership: self.ownership.export(),
        }
    }

    /// A replica continuing from a snapshot (no parked requests).
    pub fn from_snapshot(s: Snapshot) -> Self {
        Replica {
            store: KvStore::from_pairs(s.pairs),
            sessions: SessionTable::import(s.sessions),
            ownership: Ownership::import(s.ownership),
            applied: s.applied,
            parked: HashSet::new(),
            replies: Vec::new(),
            unsafe_serve_frozen: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kv_ports::ids::ClientId;
    use kv_ports::kv::KvOp;
    use uuid::Uuid;

    use super::*;
    use crate::sequence_paxos::StopSign;

    fn cmd(client: u128, seq: u64, op: KvOp) -> KvCommand {
        KvCommand {
            id: RequestId {
                client: ClientId(Uuid::from_u128(client)),
                seq,
            },
            op,
        }
    }

    fn put(client: u128, seq: u64, v: &'static str) -> KvCommand {
        cmd(
            client,
            seq,
            KvOp::Put {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(v.as_bytes()),
            },
        )
    }

    fn get(client: u128, seq: u64) -> KvCommand {
        cmd(
            client,
            seq,
            KvOp::Get {
                key: Bytes::from_static(b"k"),
            },
        )
    }

    #[test]
    fn duplicate_in_log_is_applied_once_and_answers_the_original_reply() {
        let mut r = Replica::new();
        let c = put(1, 1, "a");
        assert_eq!(r.admit(&c), None);
        assert!(matches!(
            r.apply(0, &Entry::Cmd(c.clone())),
            Applied::Executed(..)
        ));
        assert_eq!(r.take_replies(), vec![(c.id, Ok(KvResult::Written))]);
        // Another client overwrites, then the retry of the first put is decided again.
        r.apply(1, &Entry::Cmd(put(2, 1, "b")));
        assert_eq!(r.admit(&c), Some(Ok(KvResult::Written)));
        assert_eq!(
            r.apply(2, &Entry::Cmd(c)),
            Applied::Duplicate(put(1, 1, "a").id)
        );
        assert_eq!(r.store().get(b"k"), Some(&Bytes::from_static(b"b")));
    }

    #[test]
    fn older_sequence_is_superseded() {
        let mut r = Replica::new();
        r.apply(0, &Entry::Cmd(put(1, 5, "a")));
        assert_eq!(r.admit(&put(1, 4, "x")), Some(Err(KvError::Superseded)));
        assert_eq!(
            r.apply(1, &Entry::Cmd(put(1, 4, "x"))),
            Applied::Duplicate(put(1, 4, "x").id)
        );
        assert_eq!(r.store().get(b"k"), Some(&Bytes::from_static(b"a")));
    }

    #[test]
    fn reads_go_through_the_log_and_rejects_answer_parked_requests() {
        let mut r = Replica::new();
        let g = get(1, 1);
        assert_eq!(r.admit(&g), None);
        r.reject(
            g.id,
            KvError::NotLeader {
                hint: Some(NodeId(2)),
            },
        );
        assert_eq!(
            r.take_replies(),
            vec![(
                g.id,
                Err(KvError::NotLeader {
                    hint: Some(NodeId(2))
                })
            )]
        );
        let ss = StopSign {
            next_config: 2,
            members: vec![],
            metadata: vec![],
        };
        assert_eq!(r.apply(0, &Entry::StopSign(ss)), Applied::StopSign);
        assert_eq!(r.applied_idx(), 1);
    }

    #[test]
    #[should_panic(expected = "exactly once")]
    fn applying_an_index_twice_panics() {
        let mut r = Replica::new();
        r.apply(0, &Entry::Cmd(put(1, 1, "a")));
        r.apply(0, &Entry::Cmd(put(1, 1, "a")));
    }

    #[test]
    fn snapshot_round_trips_state_and_sessions() {
        let mut r = Replica::new();
        r.apply(0, &Entry::Cmd(put(1, 1, "a")));
        r.apply(1, &Entry::Cmd(put(2, 7, "b")));
        let snap = r.snapshot();
        let bytes = postcard::to_allocvec(&snap).expect("encode");
        let back: Snapshot = postcard::from_bytes(&bytes).expect("decode");
        let mut r2 = Replica::from_snapshot(back);
        assert_eq!(r2.applied_idx(), 2);
        assert_eq!(r2.store(), r.store());
        assert_eq!(r2.admit(&put(2, 7, "b")), Some(Ok(KvResult::Written)));
        assert_eq!(
            r2.apply(2, &Entry::Cmd(put(1, 1, "a"))),
            Applied::Duplicate(put(1, 1, "a").id)
        );
    }
}
