//! Which hash slots a replica serves, and the last slot move it applied for each slot.
//!
//! Ownership is part of the replicated state: it changes only when a `Freeze`, an
//! `InstallPart` or an `Install` is applied from the log, so every replica of a group agrees on it at every log index, and it
//! travels in the group's snapshot to new members. The move records make the slot-move
//! operations idempotent and order them: a move whose epoch is not newer than the slot's last
//! recorded move is a retry or a stale duplicate, never a second move.

use std::collections::BTreeMap;

use kv_ports::membership::{slot_of, Epoch, Slot, SLOTS};
use serde::{Deserialize, Serialize};

/// Which kind of slot move was applied last for a slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveKind {
    /// The slot left this group (its pairs stay in the store, frozen, until an install).
    Freeze,
    /// The slot arrived in this group.
    Install,
    /// The slot is arriving: pages of its pairs are being stored (its old pairs were cleared
    /// when the first page came); not served until the install.
    Staged,
}

/// The last slot move applied for one slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMove {
    /// Freeze or install.
    pub kind: MoveKind,
    /// The map epoch that moved the slot.
    pub epoch: Epoch,
}

/// How a `Freeze` relates to the slots' current state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FreezeCheck {
    /// Freeze these slots now (owned, and no move at this epoch or later recorded).
    Fresh,
    /// Every slot is already frozen by this very epoch: answer the same data again.
    Repeat,
}

/// What an `Install` would do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallCheck {
    /// Take over these slots (the others already saw this epoch or a later one).
    Take(Vec<Slot>),
    /// Every slot already saw this epoch or a later one: a retry or a stale install, no-op.
    NoOp,
}

/// What an `InstallPart` would do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageCheck {
    /// Slots whose staging starts now: their old pairs are cleared first.
    pub fresh: Vec<Slot>,
    /// Every slot the part's pairs go to (the fresh ones and those staged by this epoch).
    pub staging: Vec<Slot>,
}

const WORDS: usize = SLOTS / 64;

/// The slot set a replica serves plus, per slot, the last move applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ownership {
    owned: [u64; WORDS],
    moves: BTreeMap<Slot, SlotMove>,
}

impl Default for Ownership {
    /// Every slot owned, no move recorded: a group that is the whole store (tests, simulator,
    /// single-group deployments).
    fn default() -> Self {
        Ownership::all()
    }
}

impl Ownership {
    /// Every slot owned.
    pub fn all() -> Self {
        Ownership {
            owned: [u64::MAX; WORDS],
            moves: BTreeMap::new(),
        }
    }

    /// Exactly `slots` owned.
    pub fn of(slots: impl IntoIterator<Item = Slot>) -> Self {
        let mut o = Ownership {
            owned: [0; WORDS],
            moves: BTreeMap::new(),
        };
        for s in slots {
            o.set(s, true);
        }
        o
    }

    fn set(&mut self, s: Slot, owned: bool) {
        let (w, b) = (s.index() / 64, s.index() % 64);
        assert!(w < WORDS, "slot {s} out of range");
        if owned {
            self.owned[w] |= 1 << b;
        } else {
            self.owned[w] &= !(1 << b);
        }
    }

    /// Whether this replica serves `s`.
    pub fn owns(&self, s: Slot) -> bool {
        let (w, b) = (s.index() / 64, s.index() % 64);
        w < WORDS && self.owned[w] & (1 << b) != 0
    }

    /// Whether this replica serves the slot of `key`.
    pub fn owns_key(&self, key: &[u8]) -> bool {
        self.owns(slot_of(key))
    }

    /// The owned slots, ascending.
    pub fn owned(&self) -> Vec<Slot> {
        (0..SLOTS as u16)
            .map(Slot)
            .filter(|s| self.owns(*s))
            .collect()
    }

    /// The last move applied for `s`.
    pub fn last_move(&self, s: Slot) -> Option<SlotMove> {
        self.moves.get(&s).copied()
    }

    /// The epoch a `Moved` answer for `s` names: the slot's last move, else the newest move
    /// this replica knows (a client must refresh its map to at least that), else 0.
    pub fn moved_epoch(&self, s: Slot) -> Epoch {
        match self.moves.get(&s) {
            Some(m) => m.epoch,
            None => self
                .moves
                .values()
                .map(|m| m.epoch)
                .max()
                .unwrap_or_default(),
        }
    }

    /// Whether `Freeze { slots, epoch }` may be applied. `Err(epoch)` refuses it (nothing
    /// changes) and names the epoch for the `Moved` answer: a slot moved at this epoch or later
    /// in another way (a stale freeze), or a slot this replica does not serve (freezing it would
    /// hand out stale or no data).
    pub fn check_freeze(&self, slots: &[Slot], epoch: Epoch) -> Result<FreezeCheck, Epoch> {
        let repeat = SlotMove {
            kind: MoveKind::Freeze,
            epoch,
        };
        let mut fresh = 0;
        for &s in slots {
            let last = self.last_move(s);
            if last == Some(repeat) {
                continue;
            }
            if !self.owns(s) || last.is_some_and(|m| m.epoch >= epoch) {
                return Err(self.moved_epoch(s).max(epoch));
            }
            fresh += 1;
        }
        Ok(if fresh == 0 {
            FreezeCheck::Repeat
        } else {
            FreezeCheck::Fresh
        })
    }

    /// Stop serving `slots` (checked by [`check_freeze`](Self::check_freeze)).
    pub fn freeze(&mut self, slots: &[Slot], epoch: Epoch) {
        for &s in slots {
            self.set(s, false);
            let kind = MoveKind::Freeze;
            self.moves.insert(s, SlotMove { kind, epoch });
        }
    }

    /// What `Install { slots, epoch }` would do. Slots whose last move is at `epoch` or later
    /// are skipped (a retry, or an install overtaken by a later move), except those staged by
    /// this very epoch, which it completes. `Err(epoch)` refuses the whole install when a slot
    /// it would take is served here already: replacing live pairs would lose writes, so that
    /// can only be a coordinator's mistake.
    pub fn check_install(&self, slots: &[Slot], epoch: Epoch) -> Result<InstallCheck, Epoch> {
        let mut take = Vec::new();
        for &s in slots {
            match self.arriving(s, epoch)? {
                Arrival::Skip => {}
                Arrival::Fresh | Arrival::Staged => take.push(s),
            }
        }
        take.sort();
        take.dedup();
        Ok(if take.is_empty() {
            InstallCheck::NoOp
        } else {
            InstallCheck::Take(take)
        })
    }

    /// What `InstallPart { slots, epoch }` would do: like an install (same skips and refusals),
    /// but the slots are only staged. A slot staged by an older epoch (a move that never
    /// finished) starts over.
    pub fn check_stage(&self, slots: &[Slot], epoch: Epoch) -> Result<StageCheck, Epoch> {
        let mut c = StageCheck::default();
        for &s in slots {
            match self.arriving(s, epoch)? {
                Arrival::Skip => {}
                Arrival::Fresh => {
                    c.fresh.push(s);
                    c.staging.push(s);
                }
                Arrival::Staged => c.staging.push(s),
            }
        }
        for v in [&mut c.fresh, &mut c.staging] {
            v.sort();
            v.dedup();
        }
        Ok(c)
    }

    /// Whether slot `s` is staged by a move at `epoch`.
    pub fn is_staged(&self, s: Slot, epoch: Epoch) -> bool {
        self.last_move(s)
            == Some(SlotMove {
                kind: MoveKind::Staged,
                epoch,
            })
    }

    /// How slot `s` stands toward an arrival (part or install) at `epoch`.
    fn arriving(&self, s: Slot, epoch: Epoch) -> Result<Arrival, Epoch> {
        if self.is_staged(s, epoch) {
            return Ok(Arrival::Staged);
        }
        if self.last_move(s).is_some_and(|m| m.epoch >= epoch) {
            return Ok(Arrival::Skip);
        }
        if self.owns(s) {
            return Err(self.moved_epoch(s).max(epoch));
        }
        Ok(Arrival::Fresh)
    }

    /// Whether every slot of `slots` was frozen by exactly `epoch` (and nothing since):
    /// their pairs are then the frozen ones. `Err(epoch)` names the epoch for a `Moved`.
    pub fn check_frozen(&self, slots: &[Slot], epoch: Epoch) -> Result<(), Epoch> {
        let frozen = SlotMove {
            kind: MoveKind::Freeze,
            epoch,
        };
        match slots.iter().find(|&&s| self.last_move(s) != Some(frozen)) {
            None => Ok(()),
            Some(&s) => Err(self.moved_epoch(s).max(epoch)),
        }
    }

    /// Mark `slots` staged by `epoch` (checked by [`check_stage`](Self::check_stage)).
    pub fn stage(&mut self, slots: &[Slot], epoch: Epoch) {
        for &s in slots {
            assert!(!self.owns(s), "a served slot is never staged");
            let kind = MoveKind::Staged;
            self.moves.insert(s, SlotMove { kind, epoch });
        }
    }

    /// Serve `slots` from now on (checked by [`check_install`](Self::check_install)).
    pub fn install(&mut self, slots: &[Slot], epoch: Epoch) {
        for &s in slots {
            self.set(s, true);
            let kind = MoveKind::Install;
            self.moves.insert(s, SlotMove { kind, epoch });
        }
    }

    /// The transferable form (for snapshots): owned slots as ranges, moves sorted by slot.
    pub fn export(&self) -> OwnershipState {
        let mut ranges = Vec::new();
        let mut start = None;
        for i in 0..=SLOTS {
            let owned = i < SLOTS && self.owns(Slot(i as u16));
            match (owned, start) {
                (true, None) => start = Some(i),
                (false, Some(a)) => {
                    ranges.push((a as u16, (i - a) as u16));
                    start = None;
                }
                _ => {}
            }
        }
        let moves = self.moves.iter().map(|(s, m)| (*s, *m)).collect();
        OwnershipState {
            owned: ranges,
            moves,
        }
    }

    /// Rebuild from [`export`](Self::export)'s output.
    pub fn import(state: OwnershipState) -> Self {
        let slots = state
            .owned
            .iter()
            .flat_map(|&(a, n)| (a..a.saturating_add(n)).map(Slot));
        let mut o = Ownership::of(slots);
        o.moves = state.moves.into_iter().collect();
        o
    }
}

/// How a slot stands toward an arrival at some epoch.
enum Arrival {
    /// Already moved at this epoch or later (and not staged by it): leave it.
    Skip,
    /// Not served, nothing at this epoch yet: clear its old pairs and take it.
    Fresh,
    /// Staged by this epoch: keep its staged pairs.
    Staged,
}

/// [`Ownership`] as it travels in a snapshot. Equal ownerships export to equal values, so
/// equal replica states still encode to equal bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnershipState {
    /// Owned slots as `(first, count)` runs, ascending.
    pub owned: Vec<(u16, u16)>,
    /// The last move of every slot that moved, sorted by slot.
    pub moves: Vec<(Slot, SlotMove)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u16]) -> Vec<Slot> {
        v.iter().copied().map(Slot).collect()
    }

    fn e(n: u64) -> Epoch {
        Epoch(n)
    }

    #[test]
    fn export_round_trips_and_is_compact() {
        let cases = [
            Ownership::all(),
            Ownership::of([]),
            Ownership::of(s(&[0, 1, 2, 7, 1023])),
        ];
        for o in cases {
            let back = Ownership::import(o.export());
            assert_eq!(back, o);
        }
        assert_eq!(Ownership::all().export().owned, vec![(0, 1024)]);
        let mut o = Ownership::of(s(&[3, 4, 5]));
        o.freeze(&s(&[4]), e(2));
        assert_eq!(o.export().owned, vec![(3, 1), (5, 1)]);
        assert_eq!(Ownership::import(o.export()), o);
    }

    /// One table row: its name, the ownership asked, the slots, the epoch and the verdict.
    type CheckCase<'a, V> = (
        &'static str,
        &'a Ownership,
        Vec<Slot>,
        u64,
        Result<V, Epoch>,
    );

    /// Each row: ownership and move history before, the freeze asked, the verdict.
    #[test]
    fn freeze_checks() {
        let mut frozen = Ownership::of(s(&[1, 2]));
        frozen.freeze(&s(&[1]), e(3));
        let mut back = frozen.clone();
        back.install(&s(&[1]), e(5));
        let cases: Vec<CheckCase<FreezeCheck>> = vec![
            (
                "owned, never moved",
                &frozen,
                s(&[2]),
                3,
                Ok(FreezeCheck::Fresh),
            ),
            (
                "same freeze again",
                &frozen,
                s(&[1]),
                3,
                Ok(FreezeCheck::Repeat),
            ),
            (
                "part repeat, part fresh",
                &frozen,
                s(&[1, 2]),
                3,
                Ok(FreezeCheck::Fresh),
            ),
            ("frozen at 3, asked at 4", &frozen, s(&[1]), 4, Err(e(4))),
            ("frozen at 3, stale 2", &frozen, s(&[1]), 2, Err(e(3))),
            ("never owned", &frozen, s(&[9]), 4, Err(e(4))),
            ("moved back at 5, stale 3", &back, s(&[1]), 3, Err(e(5))),
            ("moved back at 5, asked 5", &back, s(&[1]), 5, Err(e(5))),
            (
                "moved back at 5, asked 6",
                &back,
                s(&[1]),
                6,
                Ok(FreezeCheck::Fresh),
            ),
        ];
        for (name, o, slots, epoch, want) in cases {
            assert_eq!(o.check_freeze(&slots, e(epoch)), want, "{name}");
        }
    }

    /// Each row: the install asked against `frozen` (slot 1 left at 3, slot 2 owned, slot 9
    /// never seen) and the verdict.
    #[test]
    fn install_checks() {
        let mut frozen = Ownership::of(s(&[1, 2]));
        frozen.freeze(&s(&[1]), e(3));
        let mut arrived = Ownership::of([]);
        arrived.install(&s(&[9]), e(4));
        let cases: Vec<CheckCase<InstallCheck>> = vec![
            (
                "new slot",
                &frozen,
                s(&[9]),
                4,
                Ok(InstallCheck::Take(s(&[9]))),
            ),
            (
                "move back",
                &frozen,
                s(&[1]),
                4,
                Ok(InstallCheck::Take(s(&[1]))),
            ),
            (
                "stale install of a frozen slot",
                &frozen,
                s(&[1]),
                3,
                Ok(InstallCheck::NoOp),
            ),
            ("older install", &frozen, s(&[1]), 2, Ok(InstallCheck::NoOp)),
            ("into an owned slot", &frozen, s(&[2]), 4, Err(e(4))),
            ("retry", &arrived, s(&[9]), 4, Ok(InstallCheck::NoOp)),
            (
                "retry plus new",
                &arrived,
                s(&[9, 8, 8]),
                4,
                Ok(InstallCheck::Take(s(&[8]))),
            ),
            ("owned, newer", &arrived, s(&[9]), 5, Err(e(5))),
        ];
        for (name, o, slots, epoch, want) in cases {
            assert_eq!(o.check_install(&slots, e(epoch)), want, "{name}");
        }
    }

    #[test]
    fn moved_epoch_names_the_slot_move_or_the_newest_known() {
        let mut o = Ownership::all();
        assert_eq!(o.moved_epoch(Slot(5)), e(0));
        o.freeze(&s(&[1]), e(3));
        o.freeze(&s(&[2]), e(7));
        assert_eq!(o.moved_epoch(Slot(1)), e(3));
        assert_eq!(o.moved_epoch(Slot(5)), e(7));
        assert!(!o.owns(Slot(1)) && o.owns(Slot(5)));
    }
}
