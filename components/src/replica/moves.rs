//! Applying the coordinator's slot moves (`Freeze`, `InstallPart`, `Install`) to a replica's
//! state, and reading frozen slots' pairs in pages.
//!
//! The moves are decided through the group's log like client commands, so every replica
//! applies them at the same index: client operations decided before a freeze were served here,
//! those decided after it are answered `Moved` and never touch the store. They bypass the
//! session table (they are idempotent by their epochs, see [`super::ownership`]).
//!
//! A move's pairs can be far larger than one message, so they travel in pages: the freeze
//! answers the sessions, the sizes and a first page; the coordinator reads the rest in pages
//! from any member that applied the freeze ([`page`]: frozen pairs never change, so this is a
//! plain read), hands each page to the destination's log as an `InstallPart` (stored, not yet
//! served), and ends with an `Install` that checks the sizes, merges the sessions and serves
//! the slots. Staged pairs live in the store and the staging mark in the ownership, so a
//! snapshot carries both to a new member.

use std::collections::BTreeSet;

use bytes::Bytes;
use kv_ports::kv::{pair_bytes, KvError, KvOp, KvResult, SlotData, SlotPage};
use kv_ports::membership::{slot_of, Epoch, Slot, SLOTS};

use super::ownership::{FreezeCheck, InstallCheck, Ownership};
use super::session::SessionTable;
use super::state_machine::KvStore;

/// The most bytes of pairs a freeze's answer carries (its first page); the rest is read in
/// pages. Small enough for one frame with room for the sessions.
pub const FREEZE_PAGE_BYTES: usize = 1 << 20;

/// The state a slot move changes.
pub struct MoveTarget<'a> {
    /// The pairs.
    pub store: &'a mut KvStore,
    /// The client sessions.
    pub sessions: &'a mut SessionTable,
    /// The served slots.
    pub ownership: &'a mut Ownership,
}

/// Check a slot move before it is proposed: slots in range, every pair of a part or an install
/// hashing into its slots, no pages announced after an install. A malformed move is answered
/// `Moved { epoch }` with its own epoch (refused; nothing is proposed), so only well-formed
/// moves ever reach a log.
pub fn validate(op: &KvOp) -> Result<(), KvError> {
    let (slots, epoch, pairs, more) = match op {
        KvOp::Freeze { slots, epoch } => (slots, *epoch, &[][..], false),
        KvOp::InstallPart {
            slots,
            epoch,
            pairs,
        } => (slots, *epoch, &pairs[..], false),
        KvOp::Install { slots, epoch, data } => (slots, *epoch, &data.pairs[..], data.more),
        _ => return Ok(()),
    };
    let set: BTreeSet<Slot> = slots.iter().copied().collect();
    let in_range = set.iter().all(|s| s.index() < SLOTS);
    let pairs_fit = pairs.iter().all(|(k, _)| set.contains(&slot_of(k)));
    if in_range && pairs_fit && !more {
        Ok(())
    } else {
        Err(KvError::Moved { epoch })
    }
}

/// Apply a decided slot move. Panics on a malformed one ([`validate`] keeps them out of the
/// log, so one here means a replica proposed without checking).
pub fn apply(t: MoveTarget<'_>, op: &KvOp) -> Result<KvResult, KvError> {
    let valid = validate(op);
    assert!(
        valid.is_ok(),
        "a slot move in the log carries only pairs of its slots"
    );
    match op {
        KvOp::Freeze { slots, epoch } => freeze(t, slots, *epoch),
        KvOp::InstallPart {
            slots,
            epoch,
            pairs,
        } => install_part(t, slots, *epoch, pairs),
        KvOp::Install { slots, epoch, data } => install(t, slots, *epoch, data),
        _ => unreachable!("only slot moves come here"),
    }
}

/// A page of the pairs of `slots` frozen by exactly `epoch`, after key `after`, up to
/// `max_bytes` (at least one pair). Refused with `Moved` when this replica has not applied
/// that freeze (it lags behind its log) or the slots moved on since: its pairs for them may
/// not be the frozen ones.
pub fn page(
    store: &KvStore,
    ownership: &Ownership,
    slots: &[Slot],
    epoch: Epoch,
    after: Option<&[u8]>,
    max_bytes: usize,
) -> Result<SlotPage, KvError> {
    ownership
        .check_frozen(slots, epoch)
        .map_err(|epoch| KvError::Moved { epoch })?;
    let set: BTreeSet<Slot> = slots.iter().copied().collect();
    Ok(store.page_where(|s| set.contains(&s), after, max_bytes))
}

/// Stop serving `slots`; answer every session, the size of their pairs and a first page.
/// Repeating a freeze answers the same: frozen pairs stay in the store, unchanged (client
/// operations on them are answered `Moved`), until an arrival of a later epoch replaces them.
fn freeze(t: MoveTarget<'_>, slots: &[Slot], epoch: Epoch) -> Result<KvResult, KvError> {
    match t.ownership.check_freeze(slots, epoch) {
        Err(epoch) => return Err(KvError::Moved { epoch }),
        Ok(FreezeCheck::Fresh) => t.ownership.freeze(slots, epoch),
        Ok(FreezeCheck::Repeat) => {}
    }
    let set: BTreeSet<Slot> = slots.iter().copied().collect();
    let (count, bytes) = t.store.size_where(|s| set.contains(&s));
    let first = t
        .store
        .page_where(|s| set.contains(&s), None, FREEZE_PAGE_BYTES);
    Ok(KvResult::Frozen(SlotData {
        pairs: first.pairs,
        sessions: t.sessions.entries(),
        more: first.more,
        count,
        bytes,
    }))
}

/// Store a page of arriving pairs without serving their slots: the slots' old pairs are
/// cleared when their staging starts (the first part of this epoch), never by a repeated part.
fn install_part(
    t: MoveTarget<'_>,
    slots: &[Slot],
    epoch: Epoch,
    pairs: &[(Bytes, Bytes)],
) -> Result<KvResult, KvError> {
    let check = t
        .ownership
        .check_stage(slots, epoch)
        .map_err(|epoch| KvError::Moved { epoch })?;
    let fresh: BTreeSet<Slot> = check.fresh.iter().copied().collect();
    t.store.remove_where(|s| fresh.contains(&s));
    t.ownership.stage(&check.fresh, epoch);
    let staging: BTreeSet<Slot> = check.staging.iter().copied().collect();
    for (k, v) in pairs {
        if staging.contains(&slot_of(k)) {
            t.store.insert(k.clone(), v.clone());
        }
    }
    Ok(KvResult::Installed)
}

/// Take over the slots not yet moved at `epoch` or later (or staged by it): keep their staged
/// pairs (a slot not staged has its old pairs removed), add the data's, merge the sessions,
/// serve them. When it takes every slot, the pairs they end up with must add up to the sizes
/// the freeze reported, else it is refused and nothing changes. A retry (or an install
/// overtaken by a later move) changes nothing and still answers `Installed`.
fn install(
    t: MoveTarget<'_>,
    slots: &[Slot],
    epoch: Epoch,
    data: &SlotData,
) -> Result<KvResult, KvError> {
    let take = match t.ownership.check_install(slots, epoch) {
        Err(epoch) => return Err(KvError::Moved { epoch }),
        Ok(InstallCheck::NoOp) => return Ok(KvResult::Installed),
        Ok(InstallCheck::Take(take)) => take,
    };
    let staged: BTreeSet<Slot> = take
        .iter()
        .copied()
        .filter(|&s| t.ownership.is_staged(s, epoch))
        .collect();
    let taken: BTreeSet<Slot> = take.iter().copied().collect();
    let all: BTreeSet<Slot> = slots.iter().copied().collect();
    if taken == all && outcome_size(t.store, &staged, data) != (data.count, data.bytes) {
        return Err(KvError::Moved { epoch });
    }
    t.store
        .remove_where(|s| taken.contains(&s) && !staged.contains(&s));
    for (k, v) in &data.pairs {
        if taken.contains(&slot_of(k)) {
            t.store.insert(k.clone(), v.clone());
        }
    }
    t.sessions.merge(&data.sessions);
    t.ownership.install(&take, epoch);
    Ok(KvResult::Installed)
}

/// How many pairs, of what size, the taken slots would hold after an install of `data`: the
/// pairs staged in `staged` slots, each replaced or joined by the data's.
fn outcome_size(store: &KvStore, staged: &BTreeSet<Slot>, data: &SlotData) -> (u64, u64) {
    let (mut count, mut bytes) = store.size_where(|s| staged.contains(&s));
    for (k, v) in &data.pairs {
        match store.get(k).filter(|_| staged.contains(&slot_of(k))) {
            Some(old) => bytes = bytes - pair_bytes(k, old) + pair_bytes(k, v),
            None => {
                count += 1;
                bytes += pair_bytes(k, v);
            }
        }
    }
    (count, bytes)
}
