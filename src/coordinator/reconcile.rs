//! Reconciling the map a restarted coordinator adopted with what the groups really hold.
//!
//! A coordinator that dies in the middle of a plan leaves the cluster between two maps: the
//! nodes re-report the last *published* map, but the groups may already have carried out
//! part of the plan that followed it.
//!
//! - A group's StopSign was decided: the group runs a later configuration with other
//!   members than the map says.
//! - A slot was frozen at its source (which now answers `Moved` for it) but installed
//!   nowhere: no group serves it until the move is finished.
//! - A slot was installed at its destination: the map names the wrong owner.
//! - A group the plan created may hold slots the map does not give it.
//!
//! [`reconcile`] is a pure function from the adopted map and the groups' reports (each
//! node's members, their configurations and their replicas' slot ownership with the epoch of
//! every slot's last move) to a corrected map and the moves still to finish. The rules:
//!
//! - A group's members are those of the newest configuration an active member reports.
//! - A slot some group serves belongs to that group (the one with the newest install, should
//!   two claim it).
//! - A slot served by no group and frozen at some group at epoch `E` is an **orphan**: it
//!   must be moved again — a `Freeze` repeated at the same epoch answers the same data, and
//!   an `Install` at `E` at any other group takes it — before the map is published. Its
//!   destination is the reported group with the fewest slots other than the source.
//! - The corrected map's epoch is above every epoch the adopted map or any report names, so
//!   no later plan reuses an epoch a group already saw.

use std::collections::{BTreeMap, BTreeSet};

use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{Epoch, GroupInfo, NodeInfo, Slot, SlotMap, SLOTS};

use crate::native::GroupReport;

/// A slot frozen at its source and installed nowhere: the move to finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Orphan {
    /// The epoch of the freeze: the repeated `Freeze` and the `Install` carry it.
    pub epoch: Epoch,
    /// The slot.
    pub slot: Slot,
    /// The group that froze it.
    pub from: GroupId,
    /// The group that takes it.
    pub to: GroupId,
}

/// What [`reconcile`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciled {
    /// The corrected map (orphans already given to their destination), to publish once the
    /// orphans are moved.
    pub map: SlotMap,
    /// The moves to finish first, by epoch then slot.
    pub orphans: Vec<Orphan>,
    /// What differs from the adopted map, one line each, for the log.
    pub notes: Vec<String>,
}

impl Reconciled {
    /// Whether the groups agreed with the adopted map (nothing to correct).
    pub fn unchanged(&self) -> bool {
        self.notes.is_empty() && self.orphans.is_empty()
    }
}

/// The best report of each group: from an active member, the newest configuration, then
/// the most applied entries, then the leader.
fn best_reports(reports: &[(NodeId, GroupReport)]) -> BTreeMap<GroupId, &GroupReport> {
    let mut best: BTreeMap<GroupId, &GroupReport> = BTreeMap::new();
    for (_, r) in reports.iter().filter(|(_, r)| r.active) {
        let rank = |r: &GroupReport| (r.config, r.applied, r.leading);
        match best.get(&r.group) {
            Some(b) if rank(b) >= rank(r) => {}
            _ => {
                best.insert(r.group, r);
            }
        }
    }
    best
}

/// A group's claim on one slot, from its best report.
#[derive(Clone, Copy, Debug)]
struct Claim {
    owned: bool,
    /// The slot's last move at this group: (installed, epoch).
    last: Option<(bool, Epoch)>,
}

fn claims(best: &BTreeMap<GroupId, &GroupReport>) -> BTreeMap<GroupId, Vec<Claim>> {
    best.iter()
        .map(|(g, r)| {
            let mut c = vec![
                Claim {
                    owned: false,
                    last: None
                };
                SLOTS
            ];
            for s in &r.owned {
                if let Some(c) = c.get_mut(s.index()) {
                    c.owned = true;
                }
            }
            for m in &r.moves {
                if let Some(c) = c.get_mut(m.slot.index()) {
                    c.last = Some((m.installed, m.epoch));
                }
            }
            (*g, c)
        })
        .collect()
}

/// The corrected map and the orphaned moves: see the module documentation. `known` holds
/// the addresses of nodes that checked in (new members may be in no published map yet).
pub fn reconcile(
    adopted: &SlotMap,
    reports: &[(NodeId, GroupReport)],
    known: &BTreeMap<NodeId, NodeInfo>,
) -> Reconciled {
    assert!(adopted.is_formed(), "only a formed map is reconciled");
    let best = best_reports(reports);
    let claims = claims(&best);
    let mut map = adopted.clone();
    let mut notes = Vec::new();

    // Who serves each slot, by the groups' own account.
    let mut owners: Vec<Option<GroupId>> = vec![None; SLOTS];
    let mut frozen: Vec<Option<(GroupId, Epoch)>> = vec![None; SLOTS];
    for (g, cs) in &claims {
        for (i, c) in cs.iter().enumerate() {
            let installed_at = |c: &Claim| match c.last {
                Some((true, e)) => e,
                _ => Epoch(0),
            };
            if c.owned {
                let better = match owners[i] {
                    None => true,
                    Some(o) => installed_at(c) > installed_at(&claims[&o][i]),
                };
                if better {
                    owners[i] = Some(*g);
                }
            } else if let Some((false, e)) = c.last {
                if frozen[i].is_none_or(|(_, f)| e > f) {
                    frozen[i] = Some((*g, e));
                }
            }
        }
    }

    // Members: every reported group, at its newest configuration; groups the map lacks are
    // taken in only if they serve slots.
    let serving: BTreeSet<GroupId> = owners.iter().flatten().copied().collect();
    for (g, r) in &best {
        let info = GroupInfo {
            id: *g,
            config: r.config,
            members: r.members.clone(),
        };
        let unknown: Vec<NodeId> = r
            .members
            .iter()
            .filter(|n| map.node(**n).is_none() && !known.contains_key(n))
            .copied()
            .collect();
        if !unknown.is_empty() || r.members.is_empty() {
            notes.push(format!(
                "group {} runs configuration {} with members of unknown address {unknown:?}; \
                 kept as the map says",
                g.0, r.config
            ));
            continue;
        }
        match map.groups.iter_mut().find(|x| x.id == *g) {
            Some(x) if r.config > x.config => {
                if x.members != r.members {
                    notes.push(format!(
                        "group {} runs configuration {} with members {:?} (the map said {} with {:?})",
                        g.0, r.config, r.members, x.config, x.members
                    ));
                }
                *x = info;
            }
            Some(_) => {}
            None if serving.contains(g) => {
                notes.push(format!(
                    "group {} (not in the map) runs with members {:?} and serves slots",
                    g.0, r.members
                ));
                map.groups.push(info);
                map.groups.sort_by_key(|x| x.id);
            }
            None => {}
        }
    }
    let highest_group = best.keys().map(|g| g.0 + 1).max().unwrap_or(0);
    map.next_group = GroupId(map.next_group.0.max(highest_group));

    // Slots: served ones to their server, orphans to a new home.
    let in_map: BTreeSet<GroupId> = map.groups.iter().map(|g| g.id).collect();
    let mut orphans = Vec::new();
    let mut moved_to: BTreeMap<GroupId, usize> = BTreeMap::new();
    for i in 0..SLOTS {
        let slot = Slot(i as u16);
        match owners[i] {
            Some(o) if in_map.contains(&o) => {
                if map.slots[i] != o {
                    moved_to.entry(o).and_modify(|n| *n += 1).or_insert(1);
                    map.slots[i] = o;
                }
                continue;
            }
            // Served by a group the map cannot name (see the notes): left as it is.
            Some(_) => continue,
            None => {}
        }
        let Some((from, epoch)) = frozen[i] else {
            continue;
        };
        // Only when every reported group agrees nobody serves it: a group that did not
        // report keeps the slot the map gives it.
        if !best.contains_key(&map.slots[i]) {
            continue;
        }
        match home(&map, &best, from) {
            Some(to) => {
                map.slots[i] = to;
                orphans.push(Orphan {
                    epoch,
                    slot,
                    from,
                    to,
                });
            }
            None => notes.push(format!(
                "slot {} frozen at group {} (epoch {}) has no other group to go to",
                slot.0, from.0, epoch.0
            )),
        }
    }
    for (g, n) in moved_to {
        notes.push(format!("group {} already serves {n} more slots", g.0));
    }
    orphans.sort();

    regroup_nodes(&mut map, known);
    let seen = reports
        .iter()
        .flat_map(|(_, r)| r.moves.iter().map(|m| m.epoch))
        .max()
        .unwrap_or(Epoch(0));
    map.epoch = Epoch(adopted.epoch.0.max(seen.0) + 1);
    if let Err(e) = map.validate() {
        notes.push(format!(
            "the corrected map is invalid ({e}); kept the adopted one"
        ));
        let mut kept = adopted.clone();
        kept.epoch = map.epoch;
        return Reconciled {
            map: kept,
            orphans: Vec::new(),
            notes,
        };
    }
    Reconciled {
        map,
        orphans,
        notes,
    }
}

/// Where an orphan of `from` goes: the reported group of the map with the fewest slots,
/// other than `from` (ties: the lowest id).
fn home(map: &SlotMap, best: &BTreeMap<GroupId, &GroupReport>, from: GroupId) -> Option<GroupId> {
    map.groups
        .iter()
        .map(|g| g.id)
        .filter(|g| *g != from && best.contains_key(g))
        .min_by_key(|g| (map.slots.iter().filter(|s| *s == g).count(), *g))
}

/// After members changed: nodes in a group are no standbys, nodes in no group are, and
/// every member's address is in the node list.
fn regroup_nodes(map: &mut SlotMap, known: &BTreeMap<NodeId, NodeInfo>) {
    let members: BTreeSet<NodeId> = map
        .groups
        .iter()
        .flat_map(|g| g.members.iter().copied())
        .collect();
    for m in &members {
        if map.node(*m).is_none() {
            if let Some(info) = known.get(m) {
                map.nodes.push(info.clone());
            }
        }
    }
    map.nodes.sort_by_key(|n| n.id);
    map.standbys.retain(|n| !members.contains(n));
    let idle: Vec<NodeId> = map
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|n| !members.contains(n) && !map.standbys.contains(n))
        .collect();
    map.standbys.extend(idle);
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
