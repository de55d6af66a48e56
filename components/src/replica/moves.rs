//! Applying the coordinator's slot moves (`Freeze`, `Install`) to a replica's state.
//!
//! Both are decided through the group's log like client commands, so every replica applies
//! them at the same index: client operations decided before a freeze were served here, those
//! decided after it are answered `Moved` and never touch the store. They bypass the session
//! table (they are idempotent by their epochs, see [`super::ownership`]).

use std::collections::BTreeSet;

use kv_ports::kv::{KvError, KvOp, KvResult, SlotData};
use kv_ports::membership::{slot_of, Epoch, Slot, SLOTS};

use super::ownership::{FreezeCheck, InstallCheck, Ownership};
use super::session::SessionTable;
use super::state_machine::KvStore;

/// The state a slot move changes.
pub struct MoveTarget<'a> {
    /// The pairs.
    pub store: &'a mut KvStore,
    /// The client sessions.
    pub sessions: &'a mut SessionTable,
    /// The served slots.
    pub ownership: &'a mut Ownership,
}

/// Check a slot move before it is proposed: slots in range, and every pair of an install
/// hashing into its slots. A malformed move is answered `Moved { epoch }` with its own epoch
/// (refused; nothing is proposed), so only well-formed moves ever reach a log.
pub fn validate(op: &KvOp) -> Result<(), KvError> {
    let (slots, epoch, pairs) = match op {
        KvOp::Freeze { slots, epoch } => (slots, *epoch, &[][..]),
        KvOp::Install { slots, epoch, data } => (slots, *epoch, &data.pairs[..]),
        _ => return Ok(()),
    };
    let set: BTreeSet<Slot> = slots.iter().copied().collect();
    let in_range = set.iter().all(|s| s.index() < SLOTS);
    let pairs_fit = pairs.iter().all(|(k, _)| set.contains(&slot_of(k)));
    if in_range && pairs_fit {
        Ok(())
    } else {
        Err(KvError::Moved { epoch })
    }
}

/// Apply a decided slot move. Panics on a malformed one ([`validate`] keeps them out of the
/// log, so one here means a replica proposed without checking).
pub fn apply(t: MoveTarget<'_>, op: &KvOp) -> Result<KvResult, KvError> {
    match op {
        KvOp::Freeze { slots, epoch } => freeze(t, slots, *epoch),
        KvOp::Install { slots, epoch, data } => install(t, slots, *epoch, data),
        _ => unreachable!("only slot moves come here"),
    }
}

/// Stop serving `slots`; answer their pairs and every session. Repeating a freeze answers the
/// same pairs: frozen pairs stay in the store, unchanged (client operations on them are
/// answered `Moved`), until an install of a later epoch replaces them.
fn freeze(t: MoveTarget<'_>, slots: &[Slot], epoch: Epoch) -> Result<KvResult, KvError> {
    match t.ownership.check_freeze(slots, epoch) {
        Err(epoch) => return Err(KvError::Moved { epoch }),
        Ok(FreezeCheck::Fresh) => t.ownership.freeze(slots, epoch),
        Ok(FreezeCheck::Repeat) => {}
    }
    let set: BTreeSet<Slot> = slots.iter().copied().collect();
    Ok(KvResult::Frozen(SlotData {
        pairs: t.store.pairs_where(|s| set.contains(&s)),
        sessions: t.sessions.entries(),
    }))
}

/// Take over the slots not yet moved at `epoch` or later: replace their pairs with the data's,
/// merge the sessions, serve them. A retry (or an install overtaken by a later move) changes
/// nothing and still answers `Installed`.
fn install(
    t: MoveTarget<'_>,
    slots: &[Slot],
    epoch: Epoch,
    data: &SlotData,
) -> Result<KvResult, KvError> {
    let set: BTreeSet<Slot> = slots.iter().copied().collect();
    for (k, _) in &data.pairs {
        assert!(
            set.contains(&slot_of(k)),
            "an install carries only pairs of its slots"
        );
    }
    let take = match t.ownership.check_install(slots, epoch) {
        Err(epoch) => return Err(KvError::Moved { epoch }),
        Ok(InstallCheck::NoOp) => return Ok(KvResult::Installed),
        Ok(InstallCheck::Take(take)) => take,
    };
    let taken: BTreeSet<Slot> = take.iter().copied().collect();
    t.store.remove_where(|s| taken.contains(&s));
    for (k, v) in &data.pairs {
        if taken.contains(&slot_of(k)) {
            t.store.insert(k.clone(), v.clone());
        }
    }
    t.sessions.merge(&data.sessions);
    t.ownership.install(&take, epoch);
    Ok(KvResult::Installed)
}
