//! Checks across groups (slot-move schedules): each client command takes effect at most once in
//! the whole cluster, and each slot is served by one group at a time.
//!
//! "Served by one group at a time" is checked in log positions. The simulated coordinator
//! registers every move `(epoch, slots, from, to)` before it starts. For each group and slot,
//! the group serves the slot from its start (if the initial map gives it the slot) or from the
//! first position of its log where the move's `Install` was applied, up to the first position
//! where the next move's `Freeze` was applied. Every client command that takes effect must lie
//! in such an interval of its group, and every command answered `Moved` outside of them. A
//! position is `(configuration, index)`: one group's log across its configurations, in order.
//! In real time, each move's install is first applied after its freeze: so everything served
//! at the source precedes everything served at the destination.

use std::collections::{BTreeMap, HashMap};

use kv_components::replica::Applied;
use kv_components::sequence_paxos::Entry;
use kv_ports::ids::NodeId;
use kv_ports::kv::{KvCommand, KvOp, KvResult, RequestId};
use kv_ports::membership::{slot_of, Epoch, Slot};

/// A place in one group's log: (group, configuration, index).
pub type At = (usize, u32, u64);
/// A position in a group's log: (configuration, index).
type Pos = (u32, u64);

/// One move the coordinator started.
#[derive(Clone, Debug)]
pub struct MoveRec {
    pub epoch: Epoch,
    pub slots: Vec<Slot>,
    pub from: usize,
    pub to: usize,
}

#[derive(Default)]
pub struct SlotChecks {
    /// The groups' slots at the start, for the slots that can move (the others are group 0's).
    initial: BTreeMap<Slot, usize>,
    moves: Vec<MoveRec>,
    /// First position (and tick) where each (group, epoch, slot) freeze / install was applied.
    frozen: HashMap<(usize, Epoch, Slot), (Pos, u64)>,
    installed: HashMap<(usize, Epoch, Slot), (Pos, u64)>,
    /// Where each command took effect, across all groups.
    executed: HashMap<RequestId, At>,
    /// Client commands checked against the ownership intervals (figures).
    pub served: u64,
    /// Client commands answered `Moved` by a replica (figures; counted once per node).
    pub moved: u64,
}

impl SlotChecks {
    /// Checks for a cluster whose movable slots start at these groups.
    pub fn new(initial: BTreeMap<Slot, usize>) -> Self {
        SlotChecks {
            initial,
            ..Self::default()
        }
    }

    /// The coordinator starts a move (before it sends anything).
    pub fn start_move(&mut self, m: MoveRec) {
        if let Some(last) = self.moves.last() {
            assert!(last.epoch < m.epoch, "moves come in epoch order");
        }
        self.moves.push(m);
    }

    /// A node applied `entry` at `at` with this outcome.
    pub fn applied(
        &mut self,
        node: NodeId,
        at: At,
        entry: &Entry<KvCommand>,
        applied: &Applied,
        now: u64,
    ) -> Result<(), String> {
        let Entry::Cmd(cmd) = entry else {
            return Ok(());
        };
        let (g, pos) = (at.0, (at.1, at.2));
        match applied {
            Applied::Executed(id, _) => {
                if let Some(prev) = self.executed.insert(*id, at) {
                    if prev != at {
                        return Err(format!(
                            "{node}: command {id:?} took effect at g{}c{}[{}] and before at g{}c{}[{}]",
                            at.0, at.1, at.2, prev.0, prev.1, prev.2
                        ));
                    }
                }
                self.served += 1;
                self.check_owner(node, g, pos, cmd, true)
            }
            Applied::Moved(_) => {
                self.moved += 1;
                self.check_owner(node, g, pos, cmd, false)
            }
            Applied::SlotMove(_, answer) => self.slot_move(g, pos, &cmd.op, answer, now),
            Applied::Duplicate(_) | Applied::StopSign => Ok(()),
        }
    }

    fn slot_move(
        &mut self,
        g: usize,
        pos: Pos,
        op: &KvOp,
        answer: &Result<KvResult, kv_ports::kv::KvError>,
        now: u64,
    ) -> Result<(), String> {
        // `part`: an install part, checked like an install but not starting the service.
        let (slots, epoch, install, part, ok) = match op {
            KvOp::Freeze { slots, epoch } => (
                slots,
                *epoch,
                false,
                false,
                matches!(answer, Ok(KvResult::Frozen(_))),
            ),
            KvOp::InstallPart { slots, epoch, .. } => (
                slots,
                *epoch,
                true,
                true,
                answer == &Ok(KvResult::Installed),
            ),
            KvOp::Install { slots, epoch, .. } => (
                slots,
                *epoch,
                true,
                false,
                answer == &Ok(KvResult::Installed),
            ),
            _ => unreachable!("slot moves only"),
        };
        let Some(m) = self.moves.iter().find(|m| m.epoch == epoch) else {
            return Err(format!("g{g}: slot move of unknown epoch {epoch}"));
        };
        let (want, name) = match (install, part) {
            (true, true) => (m.to, "install part"),
            (true, false) => (m.to, "install"),
            _ => (m.from, "freeze"),
        };
        if g != want {
            return Err(format!(
                "{name} of {epoch} applied at g{g}, meant for g{want}"
            ));
        }
        if !ok {
            // A late duplicate of a freeze already applied may be refused (the slot has moved
            // on since); the first one, or any install (or part), may not.
            let first = slots
                .iter()
                .any(|s| !self.frozen.contains_key(&(g, epoch, *s)));
            if install || first {
                return Err(format!("g{g}: {name} of {epoch} refused: {answer:?}"));
            }
            return Ok(());
        }
        let from = m.from;
        for &s in slots {
            if install {
                let Some(&(_, t)) = self.frozen.get(&(from, epoch, s)) else {
                    return Err(format!("g{g}: {name} of {s} at {epoch} before any freeze"));
                };
                if t >= now {
                    return Err(format!(
                        "g{g}: {name} of {s} at {epoch} in the freeze's tick"
                    ));
                }
                if !part {
                    self.installed.entry((g, epoch, s)).or_insert((pos, now));
                }
            } else {
                self.frozen.entry((g, epoch, s)).or_insert((pos, now));
            }
        }
        Ok(())
    }

    /// Whether group `g` serves slot `s` at log position `pos`.
    fn serves(&self, g: usize, s: Slot, pos: Pos) -> bool {
        let mut owner = self.initial.get(&s).copied().unwrap_or(0);
        let mut start: Option<Pos> = (owner == g).then_some((0, 0));
        for m in self.moves.iter().filter(|m| m.slots.contains(&s)) {
            assert_eq!(m.from, owner, "the coordinator moves {s} from its owner");
            if m.from == g {
                let end = self.frozen.get(&(g, m.epoch, s)).map(|&(p, _)| p);
                let inside = start.is_some_and(|a| a <= pos) && end.is_none_or(|e| pos < e);
                if inside {
                    return true;
                }
                start = None;
            }
            if m.to == g {
                let begin = self.installed.get(&(g, m.epoch, s));
                start = begin.map(|&((c, i), _)| (c, i + 1));
            }
            owner = m.to;
        }
        start.is_some_and(|a| a <= pos)
    }

    fn check_owner(
        &self,
        node: NodeId,
        g: usize,
        pos: Pos,
        cmd: &KvCommand,
        took_effect: bool,
    ) -> Result<(), String> {
        let key = cmd.op.key().expect("client commands have a key");
        let s = slot_of(key);
        if self.serves(g, s, pos) == took_effect {
            return Ok(());
        }
        let what = if took_effect {
            "served"
        } else {
            "refused (Moved)"
        };
        Err(format!(
            "{node}: g{g} {what} {:?} on {s} at c{}[{}], {} it owns the slot there; moves {:?}",
            cmd.id,
            pos.0,
            pos.1,
            if took_effect {
                "but not where"
            } else {
                "where"
            },
            self.moves
        ))
    }

    /// Moves the coordinator started.
    pub fn moves(&self) -> &[MoveRec] {
        &self.moves
    }
}
