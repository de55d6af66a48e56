//! The planner: from the current slot map and one membership event to the next map and the
//! actions that reach it. Pure functions; the coordinator core decides when to call them.
//!
//! Rules (seed 001 and issue 7):
//! - a node that joins fills the most under-replicated group first, else waits as a standby;
//! - as soon as δ standbys wait, they form a new group (fresh id) that takes an even share of
//!   the slots, taken evenly from the groups that have the most;
//! - a node that leaves or fails is replaced in its group by the oldest standby, if any;
//! - a failed node with no standby to replace it leaves its group under-replicated (it keeps
//!   serving while it has a majority; a later join fills it). A failure may be a long pause,
//!   and reshaping moves data, so failures never dissolve groups;
//! - a graceful leave keeps ⌊N/δ⌋ groups (at least one), dissolving the group with the fewest
//!   members (ties: the one that lost the node, then the newest); its members fill other
//!   under-replicated groups or become standbys, and its slots spread evenly over the rest;
//! - only the slots that must move, move (see [`super::balance`]).

use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{GroupInfo, MapError, NodeInfo, SlotMap};

use super::actions::{diff, Action};
use super::balance::rebalance;
use super::formation::FIRST_CONFIG;

/// A change of membership the planner reacts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new node checked in.
    Joined(NodeInfo),
    /// A node asked to leave (seed 001's `update_view?type=remove`).
    Left(NodeId),
    /// A node was suspected for longer than the grace period.
    Failed(NodeId),
}

/// Why the planner refuses an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Planning needs a formed map (groups owning the slots).
    #[error("the cluster is not formed yet")]
    NotFormed,
    /// A joining node's id is already in the map.
    #[error("node {0} is already a member of the cluster")]
    AlreadyKnown(NodeId),
    /// The node leaving or failing is not in the map.
    #[error("node {0} is not in the cluster")]
    UnknownNode(NodeId),
    /// The event would leave a group with no member and no standby to take over: its data
    /// would be lost (a leave is refused; a failure means the data is already gone).
    #[error("group {0} would have no members left")]
    GroupLost(GroupId),
    /// A failed member's group has too few live members left to decide its own
    /// reconfiguration (a StopSign needs a majority of the configuration it ends): the group
    /// stays as it is, without a majority, until its members come back.
    #[error("group {0} has lost the majority it needs to replace a member")]
    NoQuorum(GroupId),
    /// The node was removed from the cluster (it left or was declared failed); a process
    /// that comes back under the same id is refused. Restarted, it joins as a new node.
    #[error("node {0} was removed from the cluster; restart it to join as a new node")]
    Removed(NodeId),
    /// The planner broke a map invariant (a bug, reported rather than published).
    #[error("planned map is invalid: {0}")]
    Invalid(#[from] MapError),
}

/// The next slot map and the steps to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The map once every action is done; its epoch is the current one plus one.
    pub target: SlotMap,
    /// The steps, in execution order.
    pub actions: Vec<Action>,
}

impl Plan {
    /// How many slots change group in this plan.
    pub fn moved_slots(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::MoveSlot { .. }))
            .count()
    }

    /// Groups left with fewer than δ members, for `status`.
    pub fn under_replicated(&self) -> Vec<GroupId> {
        self.target.under_replicated()
    }
}

/// Plan the reaction to `event` on the formed map `current`.
pub fn plan(current: &SlotMap, event: &Event) -> Result<Plan, PlanError> {
    if !current.is_formed() {
        return Err(PlanError::NotFormed);
    }
    let mut next = current.clone();
    next.epoch = current.epoch.next();
    match event {
        Event::Joined(info) => admit(&mut next, info)?,
        Event::Left(node) => {
            let lost = remove(&mut next, *node)?;
            fill(&mut next);
            ensure_none_empty(&next)?;
            shrink(&mut next, lost);
        }
        Event::Failed(node) => {
            remove(&mut next, *node)?;
            fill(&mut next);
        }
    }
    grow(&mut next);
    finish(current, next)
}

/// Refuse a map in which a group has no members left.
fn ensure_none_empty(map: &SlotMap) -> Result<(), PlanError> {
    match map.groups.iter().find(|g| g.members.is_empty()) {
        Some(g) => Err(PlanError::GroupLost(g.id)),
        None => Ok(()),
    }
}

/// Check the target, bump the changed groups' configurations and derive the actions.
fn finish(current: &SlotMap, mut next: SlotMap) -> Result<Plan, PlanError> {
    ensure_none_empty(&next)?;
    for group in &mut next.groups {
        if let Some(before) = current.group(group.id) {
            if before.members != group.members {
                group.config = before.config + 1;
            }
        }
    }
    next.slots = rebalance(&next.slots, &next.partition_ids());
    next.validate()?;
    let actions = diff(current, &next);
    Ok(Plan {
        target: next,
        actions,
    })
}

/// Add a new node as a standby, then let [`fill`] place it.
fn admit(map: &mut SlotMap, info: &NodeInfo) -> Result<(), PlanError> {
    match map.nodes.binary_search_by_key(&info.id, |n| n.id) {
        Ok(_) => Err(PlanError::AlreadyKnown(info.id)),
        Err(at) => {
            map.nodes.insert(at, info.clone());
            map.standbys.push(info.id);
            fill(map);
            Ok(())
        }
    }
}

/// Forget a node; returns the group it was a member of, if any.
fn remove(map: &mut SlotMap, node: NodeId) -> Result<Option<GroupId>, PlanError> {
    let at = map
        .nodes
        .binary_search_by_key(&node, |n| n.id)
        .map_err(|_| PlanError::UnknownNode(node))?;
    map.nodes.remove(at);
    map.standbys.retain(|n| *n != node);
    let group = map.groups.iter_mut().find(|g| g.members.contains(&node));
    Ok(group.map(|g| {
        g.members.retain(|n| *n != node);
        g.id
    }))
}

/// Move standbys, oldest first, into the groups missing the most members (ties: lowest id).
fn fill(map: &mut SlotMap) {
    let d = map.replication as usize;
    while !map.standbys.is_empty() {
        let neediest = map
            .groups
            .iter_mut()
            .filter(|g| g.members.len() < d)
            .min_by_key(|g| (g.members.len(), g.id));
        match neediest {
            Some(group) => group.members.push(map.standbys.remove(0)),
            None => return,
        }
    }
}

/// Dissolve groups until at most ⌊N/δ⌋ (and at least one) remain.
fn shrink(map: &mut SlotMap, lost: Option<GroupId>) {
    let want = (map.nodes.len() / map.replication as usize).max(1);
    while map.groups.len() > want {
        let victim = map
            .groups
            .iter()
            .min_by_key(|g| {
                let not_lost = Some(g.id) != lost;
                (g.members.len(), not_lost, std::cmp::Reverse(g.id))
            })
            .map(|g| g.id)
            .expect("more groups than wanted means at least one");
        let at = map.groups.iter().position(|g| g.id == victim).unwrap();
        let group = map.groups.remove(at);
        map.standbys.extend(group.members);
        fill(map);
    }
}

/// Form new groups from the oldest standbys while δ of them wait.
fn grow(map: &mut SlotMap) {
    let d = map.replication as usize;
    while map.standbys.len() >= d {
        let members: Vec<NodeId> = map.standbys.drain(..d).collect();
        map.groups.push(GroupInfo {
            id: map.next_group,
            config: FIRST_CONFIG,
            members,
        });
        map.next_group = GroupId(map.next_group.0 + 1);
    }
}
