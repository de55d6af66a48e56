//! The cases of [`reconcile`]: each test builds the groups' reports of a cluster cut short in
//! one way and checks the corrected map and the moves left to finish.

use std::net::SocketAddr;

use kv_components::bootstrap::formation::form;

use super::*;
use crate::native::SlotRecord;

fn info(i: u64) -> NodeInfo {
    NodeInfo::at(NodeId(i), SocketAddr::from(([127, 0, 0, 1], i as u16)))
}

/// Four nodes in two groups of two (group 0: n1 n2, group 1: n3 n4), at epoch 3.
fn adopted() -> SlotMap {
    let mut map = form(&(1..=4).map(info).collect::<Vec<_>>(), 2).unwrap();
    map.epoch = Epoch(3);
    map
}

/// What every member of `map`'s group `g` reports when its replica serves `owned` and
/// recorded `moves`.
fn reports_of(
    map: &SlotMap,
    g: u32,
    owned: Vec<Slot>,
    moves: &[(u16, bool, u64)],
) -> Vec<(NodeId, GroupReport)> {
    let group = map.group(GroupId(g)).unwrap();
    group
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let report = GroupReport {
                group: group.id,
                config: group.config,
                active: true,
                members: group.members.clone(),
                leading: i == 0,
                applied: 10,
                owned: owned.clone(),
                moves: moves
                    .iter()
                    .map(|&(slot, installed, epoch)| SlotRecord {
                        slot: Slot(slot),
                        installed,
                        epoch: Epoch(epoch),
                    })
                    .collect(),
            };
            (*m, report)
        })
        .collect()
}

/// Every group reports what the map says, without moves.
fn agreeing(map: &SlotMap) -> Vec<(NodeId, GroupReport)> {
    map.groups
        .iter()
        .flat_map(|g| reports_of(map, g.id.0, map.slots_of(g.id), &[]))
        .collect()
}

fn without(slots: Vec<Slot>, gone: &[u16]) -> Vec<Slot> {
    slots.into_iter().filter(|s| !gone.contains(&s.0)).collect()
}

fn no_known() -> BTreeMap<NodeId, NodeInfo> {
    BTreeMap::new()
}

#[test]
fn groups_that_agree_with_the_map_change_nothing_but_the_epoch() {
    let map = adopted();
    let r = reconcile(&map, &agreeing(&map), &no_known());
    assert!(r.unchanged(), "{:?}", r.notes);
    assert_eq!(r.map.epoch, Epoch(4));
    assert_eq!(r.map.slots, map.slots);
    assert_eq!(r.map.groups, map.groups);
}

#[test]
fn a_slot_frozen_at_its_source_and_installed_nowhere_is_an_orphan() {
    let map = adopted();
    let s = map.slots_of(GroupId(0))[0];
    let mut reports = reports_of(
        &map,
        0,
        without(map.slots_of(GroupId(0)), &[s.0]),
        &[(s.0, false, 4)],
    );
    reports.extend(reports_of(&map, 1, map.slots_of(GroupId(1)), &[]));
    let r = reconcile(&map, &reports, &no_known());
    assert_eq!(
        r.orphans,
        vec![Orphan {
            epoch: Epoch(4),
            slot: s,
            from: GroupId(0),
            to: GroupId(1),
        }]
    );
    assert_eq!(r.map.slots[s.index()], GroupId(1));
    assert!(r.map.epoch > Epoch(4), "above the freeze's epoch");
    assert_eq!(r.map.validate(), Ok(()));
}

#[test]
fn a_slot_installed_at_its_destination_belongs_to_it() {
    let map = adopted();
    let s = map.slots_of(GroupId(0))[5];
    let mut reports = reports_of(
        &map,
        0,
        without(map.slots_of(GroupId(0)), &[s.0]),
        &[(s.0, false, 4)],
    );
    let mut owned = map.slots_of(GroupId(1));
    owned.push(s);
    reports.extend(reports_of(&map, 1, owned, &[(s.0, true, 4)]));
    let r = reconcile(&map, &reports, &no_known());
    assert!(r.orphans.is_empty());
    assert_eq!(r.map.slots[s.index()], GroupId(1));
    assert_eq!(r.map.epoch, Epoch(5));
    assert!(!r.unchanged());
}

#[test]
fn a_source_that_did_not_report_keeps_its_slots() {
    let map = adopted();
    // Only group 1 reports; group 0's slots stay where the map has them.
    let reports = reports_of(&map, 1, map.slots_of(GroupId(1)), &[]);
    let r = reconcile(&map, &reports, &no_known());
    assert!(r.orphans.is_empty());
    assert_eq!(r.map.slots, map.slots);
}

#[test]
fn a_sealed_configuration_is_reported_with_its_new_members() {
    let mut map = adopted();
    // n5 waited as a standby; group 0 replaced n2 with it in configuration 2.
    map.nodes.push(info(5));
    map.standbys.push(NodeId(5));
    assert_eq!(map.validate(), Ok(()));
    let mut reports = agreeing(&map);
    for (_, r) in reports.iter_mut().filter(|(_, r)| r.group == GroupId(0)) {
        r.config += 1;
        r.members = vec![NodeId(1), NodeId(5)];
    }
    // n2 left: it reports the old configuration, no longer active.
    reports.push((
        NodeId(2),
        GroupReport {
            active: false,
            members: Vec::new(),
            owned: Vec::new(),
            ..reports[0].1.clone()
        },
    ));
    let r = reconcile(&map, &reports, &no_known());
    let g = r.map.group(GroupId(0)).unwrap();
    assert_eq!(g.members, vec![NodeId(1), NodeId(5)]);
    assert_eq!(g.config, map.group(GroupId(0)).unwrap().config + 1);
    assert_eq!(
        r.map.standbys,
        vec![NodeId(2)],
        "the old member waits as a standby"
    );
    assert_eq!(r.map.validate(), Ok(()));
}

#[test]
fn a_new_member_is_named_with_the_address_it_checked_in_with() {
    let map = adopted();
    let mut reports = agreeing(&map);
    for (_, r) in reports.iter_mut().filter(|(_, r)| r.group == GroupId(1)) {
        r.config += 1;
        r.members = vec![NodeId(3), NodeId(9)];
    }
    // Unknown address: the group is kept as the map says.
    let r = reconcile(&map, &reports, &no_known());
    assert_eq!(r.map.groups, map.groups);
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    // Known from its check-in: taken in.
    let known = BTreeMap::from([(NodeId(9), info(9))]);
    let r = reconcile(&map, &reports, &known);
    assert_eq!(r.map.members_of(GroupId(1)), &[NodeId(3), NodeId(9)]);
    assert_eq!(r.map.node(NodeId(9)), Some(&info(9)));
    assert_eq!(r.map.standbys, vec![NodeId(4)]);
    assert_eq!(r.map.validate(), Ok(()));
}

#[test]
fn a_group_the_map_lacks_is_taken_in_when_it_serves_slots() {
    let mut map = adopted();
    map.nodes.extend([info(5), info(6)]);
    map.standbys.extend([NodeId(5), NodeId(6)]);
    let s = map.slots_of(GroupId(1))[0];
    let mut reports = reports_of(&map, 0, map.slots_of(GroupId(0)), &[]);
    reports.extend(reports_of(
        &map,
        1,
        without(map.slots_of(GroupId(1)), &[s.0]),
        &[(s.0, false, 4)],
    ));
    let new_group = GroupReport {
        group: GroupId(2),
        config: 1,
        active: true,
        members: vec![NodeId(5), NodeId(6)],
        leading: true,
        applied: 3,
        owned: vec![s],
        moves: vec![SlotRecord {
            slot: s,
            installed: true,
            epoch: Epoch(4),
        }],
    };
    reports.push((NodeId(5), new_group));
    let r = reconcile(&map, &reports, &no_known());
    assert!(r.orphans.is_empty());
    assert_eq!(r.map.slots[s.index()], GroupId(2));
    assert_eq!(r.map.members_of(GroupId(2)), &[NodeId(5), NodeId(6)]);
    assert!(r.map.standbys.is_empty());
    assert_eq!(r.map.next_group, GroupId(3));
    assert_eq!(r.map.validate(), Ok(()));
}

#[test]
fn a_group_the_map_lacks_that_serves_nothing_only_reserves_its_id() {
    let mut map = adopted();
    map.nodes.extend([info(5), info(6)]);
    map.standbys.extend([NodeId(5), NodeId(6)]);
    let mut reports = agreeing(&map);
    reports.push((
        NodeId(5),
        GroupReport {
            group: GroupId(2),
            config: 1,
            active: true,
            members: vec![NodeId(5), NodeId(6)],
            leading: true,
            applied: 1,
            owned: Vec::new(),
            moves: Vec::new(),
        },
    ));
    let r = reconcile(&map, &reports, &no_known());
    assert_eq!(r.map.groups, map.groups);
    assert_eq!(
        r.map.next_group,
        GroupId(3),
        "the id is never handed out again"
    );
}

#[test]
fn the_freshest_member_speaks_for_its_group() {
    let map = adopted();
    let s = map.slots_of(GroupId(0))[0];
    let mut reports = agreeing(&map);
    // A lagging follower of group 0 still serves s; its leader applied the freeze.
    for (n, r) in reports.iter_mut().filter(|(_, r)| r.group == GroupId(0)) {
        if *n == NodeId(1) {
            r.applied = 11;
            r.owned.retain(|x| *x != s);
            r.moves = vec![SlotRecord {
                slot: s,
                installed: false,
                epoch: Epoch(4),
            }];
        }
    }
    let r = reconcile(&map, &reports, &no_known());
    assert_eq!(r.orphans.len(), 1, "{:?}", r.orphans);
    assert_eq!(r.orphans[0].slot, s);
}
