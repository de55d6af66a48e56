//! The steps that take the cluster from one slot map to the next, derived by comparing them.
//!
//! Deriving the steps from the two maps (rather than recording them while planning) keeps
//! them honest: whatever the planner decided, the actions are exactly the difference.

use std::collections::BTreeSet;

use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{Slot, SlotMap};

/// One step of a reconfiguration, for the coordinator's shell to drive.
///
/// Execution order is the order [`diff`] lists them in: groups are created before slots move
/// into them, member changes happen before slots move, slots leave a group before it is
/// dissolved, and standby changes come last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a new group's log (configuration 1) on these members.
    CreateGroup {
        /// The new group.
        group: GroupId,
        /// Its members.
        members: Vec<NodeId>,
    },
    /// Seal the group's current configuration with a StopSign naming the next one.
    ChangeMembers {
        /// The group.
        group: GroupId,
        /// The configuration being sealed.
        from_config: u32,
        /// The configuration the StopSign names.
        new_config: u32,
        /// The members of the new configuration.
        members: Vec<NodeId>,
    },
    /// Freeze, transfer and install one slot from one group to another.
    MoveSlot {
        /// The slot.
        slot: Slot,
        /// Its owner now.
        from: GroupId,
        /// Its owner after the move.
        to: GroupId,
    },
    /// Stop a group whose slots have all moved away.
    DissolveGroup {
        /// The group.
        group: GroupId,
    },
    /// A node becomes a standby (proxy).
    StandbyAdded(NodeId),
    /// A node stops being a standby (it joined a group or left the cluster).
    StandbyRemoved(NodeId),
}

/// The actions that turn `old` into `new`.
pub fn diff(old: &SlotMap, new: &SlotMap) -> Vec<Action> {
    let mut actions = created(old, new);
    actions.extend(changed(old, new));
    actions.extend(moves(old, new));
    actions.extend(dissolved(old, new));
    actions.extend(standby_changes(old, new));
    actions
}

fn created(old: &SlotMap, new: &SlotMap) -> Vec<Action> {
    new.groups
        .iter()
        .filter(|g| old.group(g.id).is_none())
        .map(|g| Action::CreateGroup {
            group: g.id,
            members: g.members.clone(),
        })
        .collect()
}

fn changed(old: &SlotMap, new: &SlotMap) -> Vec<Action> {
    new.groups
        .iter()
        .filter_map(|g| {
            let before = old.group(g.id)?;
            (before.members != g.members).then(|| Action::ChangeMembers {
                group: g.id,
                from_config: before.config,
                new_config: g.config,
                members: g.members.clone(),
            })
        })
        .collect()
}

fn moves(old: &SlotMap, new: &SlotMap) -> Vec<Action> {
    old.slots
        .iter()
        .zip(&new.slots)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| Action::MoveSlot {
            slot: Slot(i as u16),
            from: *a,
            to: *b,
        })
        .collect()
}

fn dissolved(old: &SlotMap, new: &SlotMap) -> Vec<Action> {
    old.groups
        .iter()
        .filter(|g| new.group(g.id).is_none())
        .map(|g| Action::DissolveGroup { group: g.id })
        .collect()
}

fn standby_changes(old: &SlotMap, new: &SlotMap) -> Vec<Action> {
    let before: BTreeSet<NodeId> = old.standbys.iter().copied().collect();
    let after: BTreeSet<NodeId> = new.standbys.iter().copied().collect();
    let removed = before
        .difference(&after)
        .map(|n| Action::StandbyRemoved(*n));
    let added = after.difference(&before).map(|n| Action::StandbyAdded(*n));
    removed.chain(added).collect()
}

/// Whether an action needs the groups to do work (a log change or a data move), as opposed to
/// a standby change the coordinator can simply publish.
pub fn needs_groups(action: &Action) -> bool {
    !matches!(action, Action::StandbyAdded(_) | Action::StandbyRemoved(_))
}
