//! Slot assignment: an even spread that moves as few slots as possible.
//!
//! An even spread gives every group ⌊SLOTS/G⌋ or ⌈SLOTS/G⌉ slots. Among the even spreads the
//! one chosen gives the larger shares to the groups that own the most slots now, so the number
//! of slots leaving each group, `max(0, owned − share)`, sums to the least any even spread
//! needs. A group keeps its lowest-numbered slots; the freed slots (plus every slot of a group
//! that no longer exists) go in slot order to the groups below their share, each receiver
//! taking a consecutive run, so ranges stay as contiguous as the history allows.

use std::collections::BTreeMap;

use kv_ports::ids::GroupId;
use kv_ports::membership::SLOTS;

/// The slot share of each group in `groups` under an even spread, the larger shares going to
/// the groups with the most slots in `slots` (ties to the lower id).
pub fn shares(slots: &[GroupId], groups: &[GroupId]) -> BTreeMap<GroupId, usize> {
    assert!(!groups.is_empty(), "an even spread needs a group");
    let owned = owned_counts(slots, groups);
    let mut order: Vec<GroupId> = groups.to_vec();
    order.sort_by_key(|g| (std::cmp::Reverse(owned[g]), *g));
    let (base, extra) = (SLOTS / groups.len(), SLOTS % groups.len());
    order
        .into_iter()
        .enumerate()
        .map(|(rank, g)| (g, base + usize::from(rank < extra)))
        .collect()
}

/// Re-spread `slots` (empty = nothing assigned yet) over `groups`, moving the fewest slots.
/// Returns the new slot table.
pub fn rebalance(slots: &[GroupId], groups: &[GroupId]) -> Vec<GroupId> {
    let share = shares(slots, groups);
    let mut kept: BTreeMap<GroupId, usize> = groups.iter().map(|g| (*g, 0)).collect();
    let mut table: Vec<Option<GroupId>> = vec![None; SLOTS];
    for (slot, owner) in slots.iter().enumerate() {
        if let Some(count) = kept.get_mut(owner) {
            if *count < share[owner] {
                *count += 1;
                table[slot] = Some(*owner);
            }
        }
    }
    let mut receivers = groups
        .iter()
        .flat_map(|g| std::iter::repeat_n(*g, share[g] - kept[g]));
    let filled: Vec<GroupId> = table
        .into_iter()
        .map(|owner| owner.unwrap_or_else(|| receivers.next().expect("free slots match deficits")))
        .collect();
    assert!(receivers.next().is_none(), "every deficit is filled");
    filled
}

/// How many of `slots` each group in `groups` owns (0 for a group owning none).
fn owned_counts(slots: &[GroupId], groups: &[GroupId]) -> BTreeMap<GroupId, usize> {
    let mut counts: BTreeMap<GroupId, usize> = groups.iter().map(|g| (*g, 0)).collect();
    for owner in slots {
        if let Some(c) = counts.get_mut(owner) {
            *c += 1;
        }
    }
    counts
}

/// How many slots change owner between two tables (all of them count as unmoved when the
/// old table is empty: nothing held them yet).
pub fn moved(old: &[GroupId], new: &[GroupId]) -> usize {
    old.iter().zip(new).filter(|(a, b)| a != b).count()
}

/// The fewest slots any table with the owner counts of `new` must move from `old`: every slot
/// a group loses moves, and nothing else has to.
pub fn least_moves(old: &[GroupId], new: &[GroupId]) -> usize {
    let mut balance: BTreeMap<GroupId, i64> = BTreeMap::new();
    for g in old {
        *balance.entry(*g).or_default() += 1;
    }
    for g in new {
        *balance.entry(*g).or_default() -= 1;
    }
    balance
        .values()
        .filter(|&&d| d > 0)
        .map(|&d| d as usize)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32) -> Vec<GroupId> {
        (0..n).map(GroupId).collect()
    }

    fn counts(table: &[GroupId]) -> BTreeMap<GroupId, usize> {
        let mut c = BTreeMap::new();
        for g in table {
            *c.entry(*g).or_insert(0) += 1;
        }
        c
    }

    #[test]
    fn a_fresh_table_is_contiguous_and_even() {
        let table = rebalance(&[], &ids(3));
        assert_eq!(table.len(), SLOTS);
        assert_eq!(
            counts(&table).values().copied().collect::<Vec<_>>(),
            [342, 341, 341]
        );
        assert!(table.windows(2).all(|w| w[0] <= w[1]), "contiguous ranges");
    }

    #[test]
    fn a_new_group_takes_only_its_share() {
        let old = rebalance(&[], &ids(2));
        let new = rebalance(&old, &ids(3));
        assert_eq!(moved(&old, &new), 341);
        assert_eq!(moved(&old, &new), least_moves(&old, &new));
        assert_eq!(counts(&new)[&GroupId(2)], 341);
    }

    #[test]
    fn a_dissolved_group_is_spread_over_the_rest() {
        let old = rebalance(&[], &ids(3));
        let new = rebalance(&old, &[GroupId(0), GroupId(2)]);
        assert_eq!(moved(&old, &new), 341);
        assert_eq!(
            counts(&new).values().copied().collect::<Vec<_>>(),
            [512, 512]
        );
    }

    #[test]
    fn an_unchanged_group_set_moves_nothing() {
        let old = rebalance(&[], &ids(5));
        assert_eq!(rebalance(&old, &ids(5)), old);
    }
}
