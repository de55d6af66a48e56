//! Scenario and property tests of formation, planning and the coordinator together.

use std::collections::BTreeSet;

use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{SlotMap, SLOTS};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use super::actions::Action;
use super::balance::least_moves;
use super::core::{CoordinatorConfig, CoordinatorCore, CoordinatorOutput};
use super::formation::form;
use super::planner::{plan, Event, Plan, PlanError};
use super::testutil::{info, infos};

/// Every invariant a plan must keep, checked against the map it started from.
fn check_plan(prev: &SlotMap, p: &Plan, seen_groups: &mut BTreeSet<GroupId>) {
    let next = &p.target;
    let d = next.replication as usize;
    assert_eq!(next.validate(), Ok(()));
    assert_eq!(next.epoch, prev.epoch.next(), "epochs grow by one");
    let under = next.under_replicated();
    assert!(
        under.is_empty() || next.standbys.is_empty(),
        "standbys fill gaps first"
    );
    if under.is_empty() {
        assert!(next.standbys.len() < d, "δ standbys form a group");
        assert_eq!(
            next.groups.len(),
            (next.nodes.len() / d).max(1),
            "⌊N/δ⌋ groups"
        );
    }
    check_spread(next);
    check_actions(prev, p, seen_groups);
    check_movement(prev, p);
}

/// Every group owns ⌊SLOTS/G⌋ or ⌈SLOTS/G⌉ slots, which is within 10% of even for up to
/// SLOTS/10 groups (one slot is more than 10% of a share beyond that).
fn check_spread(map: &SlotMap) {
    let g = map.groups.len();
    let even = SLOTS / g;
    assert!(map
        .slot_counts()
        .values()
        .all(|&c| c == even || c == even + 1));
    if g <= SLOTS / 10 {
        assert!(
            map.spread_deviation() <= 0.10,
            "spread {}",
            map.spread_deviation()
        );
    }
}

/// The actions describe exactly the change, and new group ids are fresh.
fn check_actions(prev: &SlotMap, p: &Plan, seen_groups: &mut BTreeSet<GroupId>) {
    for action in &p.actions {
        match action {
            Action::MoveSlot { slot, from, to } => {
                assert_eq!(prev.slots[slot.index()], *from);
                assert_eq!(p.target.slots[slot.index()], *to);
            }
            Action::ChangeMembers {
                group,
                from_config,
                new_config,
                members,
            } => {
                assert_eq!(*new_config, from_config + 1);
                assert_eq!(p.target.members_of(*group), members.as_slice());
            }
            Action::CreateGroup { group, .. } => {
                assert!(seen_groups.insert(*group), "group id {group} reused");
            }
            _ => {}
        }
    }
    let moves = p.moved_slots();
    let differing = (0..SLOTS)
        .filter(|&s| prev.slots[s] != p.target.slots[s])
        .count();
    assert_eq!(moves, differing);
}

/// Only the slots that must move, move: what dissolved groups held plus what new groups take,
/// plus rounding slack of one slot per group.
fn check_movement(prev: &SlotMap, p: &Plan) {
    let old = prev.slot_counts();
    let new = p.target.slot_counts();
    let handed_off: usize = old
        .iter()
        .filter(|(g, _)| !new.contains_key(g))
        .map(|(_, c)| c)
        .sum();
    let taken: usize = new
        .iter()
        .filter(|(g, _)| !old.contains_key(g))
        .map(|(_, c)| c)
        .sum();
    let slack = new.len();
    assert!(p.moved_slots() <= handed_off + taken + slack);
    if old.keys().eq(new.keys()) {
        assert_eq!(p.moved_slots(), 0, "same groups, nothing moves");
    }
    assert_eq!(p.moved_slots(), least_moves(&prev.slots, &p.target.slots));
}

/// The rules that depend on the kind of event: leaves reshape to ⌊N/δ⌋ groups, failures never
/// create or dissolve a group, joins never dissolve one.
fn check_event_rules(prev: &SlotMap, event: &Event, next: &SlotMap) {
    let d = next.replication as usize;
    let dissolved = prev.groups.iter().any(|g| next.group(g.id).is_none());
    match event {
        Event::Left(_) => assert!(next.groups.len() <= (next.nodes.len() / d).max(1)),
        Event::Failed(_) => assert_eq!(prev.partition_ids(), next.partition_ids()),
        Event::Joined(_) => assert!(!dissolved, "a join dissolved a group"),
    }
}

/// Apply a plan after checking it; returns the next map.
fn step(map: &SlotMap, event: Event, seen: &mut BTreeSet<GroupId>) -> Result<SlotMap, PlanError> {
    let p = plan(map, &event)?;
    check_plan(map, &p, seen);
    check_event_rules(map, &event, &p.target);
    Ok(p.target)
}

fn seen_of(map: &SlotMap) -> BTreeSet<GroupId> {
    map.partition_ids().into_iter().collect()
}

#[test]
fn seed_001_n6_k3_grows_by_one_then_two() {
    let map = form(&infos(6), 3).unwrap();
    let mut seen = seen_of(&map);
    let map = step(&map, Event::Joined(info(7)), &mut seen).unwrap();
    assert_eq!(
        (map.groups.len(), map.standbys.clone()),
        (2, vec![NodeId(7)])
    );
    let map = step(&map, Event::Joined(info(8)), &mut seen).unwrap();
    let p = plan(&map, &Event::Joined(info(9))).unwrap();
    check_plan(&map, &p, &mut seen);
    assert_eq!(p.target.groups.len(), 3);
    assert!(p.target.standbys.is_empty());
    assert_eq!(p.moved_slots(), 341);
    assert!(p.actions.contains(&Action::CreateGroup {
        group: GroupId(2),
        members: vec![NodeId(7), NodeId(8), NodeId(9)],
    }));
}

#[test]
fn seed_001_n6_k2_loses_a_partition_on_remove() {
    let map = form(&infos(6), 2).unwrap();
    let mut seen = seen_of(&map);
    let p = plan(&map, &Event::Left(NodeId(3))).unwrap();
    check_plan(&map, &p, &mut seen);
    assert_eq!(p.target.groups.len(), 2);
    assert_eq!(
        p.target.standbys,
        vec![NodeId(4)],
        "the partner becomes the proxy"
    );
    assert!(p
        .actions
        .contains(&Action::DissolveGroup { group: GroupId(1) }));
    assert_eq!(
        p.moved_slots(),
        341,
        "only the dissolved group's slots move"
    );
}

#[test]
fn a_failure_is_replaced_by_a_standby() {
    let map = form(&infos(7), 2).unwrap();
    let p = plan(&map, &Event::Failed(NodeId(2))).unwrap();
    check_plan(&map, &p, &mut seen_of(&map));
    assert_eq!(p.target.members_of(GroupId(0)), &[NodeId(1), NodeId(7)]);
    assert_eq!(p.moved_slots(), 0);
    assert_eq!(
        p.actions,
        vec![
            Action::ChangeMembers {
                group: GroupId(0),
                from_config: 1,
                new_config: 2,
                members: vec![NodeId(1), NodeId(7)],
            },
            Action::StandbyRemoved(NodeId(7)),
        ]
    );
}

#[test]
fn a_failure_without_standby_leaves_the_group_under_replicated_until_a_join() {
    let map = form(&infos(6), 3).unwrap();
    let mut seen = seen_of(&map);
    let map = step(&map, Event::Failed(NodeId(5)), &mut seen).unwrap();
    assert_eq!(map.under_replicated(), vec![GroupId(1)]);
    assert_eq!(map.groups.len(), 2, "a failure does not dissolve");
    let map = step(&map, Event::Joined(info(7)), &mut seen).unwrap();
    assert!(map.under_replicated().is_empty());
    assert_eq!(
        map.members_of(GroupId(1)),
        &[NodeId(4), NodeId(6), NodeId(7)]
    );
}

#[test]
fn the_last_member_of_a_group_cannot_leave_unreplaced() {
    let map = form(&infos(1), 1).unwrap();
    assert_eq!(
        plan(&map, &Event::Left(NodeId(1))),
        Err(PlanError::GroupLost(GroupId(0)))
    );
    assert_eq!(
        plan(&map, &Event::Joined(info(1))),
        Err(PlanError::AlreadyKnown(NodeId(1)))
    );
    assert_eq!(
        plan(&map, &Event::Failed(NodeId(5))),
        Err(PlanError::UnknownNode(NodeId(5)))
    );
    assert_eq!(
        plan(&SlotMap::empty(2), &Event::Joined(info(1))),
        Err(PlanError::NotFormed)
    );
}

#[test]
fn four_six_eight_six_with_two_replicas() {
    let mut map = form(&infos(4), 2).unwrap();
    let mut seen = seen_of(&map);
    for id in 5..=8 {
        map = step(&map, Event::Joined(info(id)), &mut seen).unwrap();
    }
    assert_eq!(map.groups.len(), 4);
    for id in [8, 7] {
        map = step(&map, Event::Left(NodeId(id)), &mut seen).unwrap();
    }
    assert_eq!(map.groups.len(), 3);
    assert!(map.standbys.is_empty());
}

#[derive(Clone, Debug)]
enum Op {
    Join,
    Leave(usize),
    Fail(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Join),
        2 => any::<usize>().prop_map(Op::Leave),
        1 => any::<usize>().prop_map(Op::Fail),
    ]
}

/// Run a sequence of membership operations, checking every plan; refused events (losing a
/// group's last member) leave the map as it is.
fn run(d: u32, n: u64, ops: &[Op]) {
    let mut map = form(&infos(n), d).unwrap();
    let mut seen = seen_of(&map);
    let mut next_id = n + 1;
    for op in ops {
        let ids: Vec<NodeId> = map.nodes.iter().map(|n| n.id).collect();
        let event = match op {
            Op::Join => {
                next_id += 1;
                Event::Joined(info(next_id - 1))
            }
            Op::Leave(i) => Event::Left(ids[i % ids.len()]),
            Op::Fail(i) => Event::Failed(ids[i % ids.len()]),
        };
        match step(&map, event, &mut seen) {
            Ok(next) => map = next,
            Err(PlanError::GroupLost(_)) => {}
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x6b76_636c),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn random_membership_sequences_keep_every_invariant(
        d in 1u32..=4,
        extra in 0u64..=8,
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        run(d, u64::from(d) + extra, &ops);
    }
}

/// Long seeded runs beyond what the shrinking property test explores.
#[test]
fn long_seeded_runs_keep_every_invariant() {
    use rand::{rngs::SmallRng, Rng, SeedableRng};
    for seed in 0..40u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let d = rng.gen_range(1..=5);
        let n = u64::from(d) + rng.gen_range(0..12);
        let ops: Vec<Op> = (0..300)
            .map(|_| match rng.gen_range(0..10) {
                0..=4 => Op::Join,
                5..=7 => Op::Leave(rng.gen()),
                _ => Op::Fail(rng.gen()),
            })
            .collect();
        run(d, n, &ops);
    }
}

fn coordinator(d: u32) -> CoordinatorCore {
    CoordinatorCore::new(CoordinatorConfig {
        grace_ticks: 2,
        ..CoordinatorConfig::new(d)
    })
}

fn published(out: &[CoordinatorOutput]) -> Option<&SlotMap> {
    out.iter().find_map(|o| match o {
        CoordinatorOutput::Publish(m) => Some(m),
        _ => None,
    })
}

fn executed(out: &[CoordinatorOutput]) -> Option<&Plan> {
    out.iter().find_map(|o| match o {
        CoordinatorOutput::Execute(p) => Some(p),
        _ => None,
    })
}

#[test]
fn the_coordinator_forms_once_enough_nodes_checked_in() {
    let mut c = coordinator(2);
    for i in 1..=3 {
        assert!(c.check_in(info(i)).is_empty());
    }
    assert_eq!(c.status().waiting_for, 1);
    let out = c.check_in(info(4));
    let map = published(&out).expect("formed");
    assert_eq!((map.epoch.0, map.groups.len()), (1, 2));
    assert_eq!(c.map_request(map.epoch), None);
    assert_eq!(
        c.map_request(kv_ports::membership::Epoch(0)).as_ref(),
        Some(map)
    );
    let again = c.check_in(info(4));
    assert_eq!(again, vec![CoordinatorOutput::Send(NodeId(4), map.clone())]);
}

#[test]
fn a_standby_join_is_published_at_once_and_a_group_change_waits_for_its_plan() {
    let mut c = coordinator(2);
    for i in 1..=4 {
        c.check_in(info(i));
    }
    let out = c.check_in(info(5));
    assert_eq!(published(&out).map(|m| m.epoch.0), Some(2));
    let out = c.check_in(info(6));
    let p = executed(&out).expect("a new group needs work").clone();
    assert_eq!(c.status().in_flight, Some(p.target.epoch));
    assert!(c
        .check_in(info(7))
        .iter()
        .all(|o| published(std::slice::from_ref(o)).is_none()));
    assert_eq!(c.status().queued, 1);
    assert!(
        c.plan_done(kv_ports::membership::Epoch(99)).is_empty(),
        "stale report"
    );
    let out = c.plan_done(p.target.epoch);
    assert_eq!(published(&out).map(|m| m.groups.len()), Some(3));
    assert_eq!(c.current().standbys, vec![NodeId(7)]);
    assert_eq!(c.current().epoch.0, 4);
}

/// Seven nodes with δ = 3: groups [1,2,3] and [4,5,6], standby 7.
fn seven_of_three() -> CoordinatorCore {
    let mut c = coordinator(3);
    for i in 1..=7 {
        c.check_in(info(i));
    }
    assert_eq!(c.current().standbys, vec![NodeId(7)]);
    c
}

#[test]
fn a_suspicion_past_the_grace_period_replaces_the_node() {
    let mut c = seven_of_three();
    c.suspect(NodeId(1), NodeId(2));
    c.suspect(NodeId(1), NodeId(99));
    c.disconnected(NodeId(2));
    assert_eq!(c.status().suspected, vec![NodeId(2)]);
    assert!(
        c.tick().is_empty() && c.tick().is_empty(),
        "one voter of six"
    );
    for r in [3, 4, 5] {
        c.suspect(NodeId(r), NodeId(2));
    }
    assert!(c.tick().is_empty());
    let out = c.tick();
    assert_eq!(out[0], CoordinatorOutput::Failed(NodeId(2)));
    let p = executed(&out).expect("replacement");
    assert_eq!(
        p.target.members_of(GroupId(0)),
        &[NodeId(1), NodeId(3), NodeId(7)]
    );
    c.plan_done(p.target.epoch);
    assert!(c.current().node(NodeId(2)).is_none());
    let again = c.check_in(info(2));
    assert!(
        matches!(
            again.as_slice(),
            [CoordinatorOutput::Refused(_, PlanError::Removed(_))]
        ),
        "{again:?}"
    );
}

#[test]
fn a_new_member_dying_while_joining_can_be_suspected() {
    let mut c = seven_of_three();
    c.check_in(info(8));
    let out = c.check_in(info(9));
    let p = executed(&out).expect("a third group").clone();
    for r in [1, 2, 3, 4, 5] {
        c.suspect(NodeId(r), NodeId(9));
    }
    c.tick();
    let out = c.tick();
    assert_eq!(out, vec![CoordinatorOutput::Failed(NodeId(9))]);
    assert_eq!(
        c.status().queued,
        1,
        "planned once the plan under way is done"
    );
    let out = c.plan_done(p.target.epoch);
    assert!(executed(&out).is_some(), "the failure is planned next");
}

#[test]
fn a_group_without_a_live_majority_is_not_reconfigured() {
    // δ = 2: a group of two that loses one member cannot decide a StopSign.
    let mut c = coordinator(2);
    for i in 1..=5 {
        c.check_in(info(i));
    }
    for r in [1, 3, 4] {
        c.suspect(NodeId(r), NodeId(2));
    }
    c.tick();
    let out = c.tick();
    assert!(
        matches!(
            out.as_slice(),
            [
                CoordinatorOutput::Failed(_),
                CoordinatorOutput::Refused(Event::Failed(_), PlanError::NoQuorum(GroupId(0)))
            ]
        ),
        "{out:?}"
    );
    assert_eq!(c.status().under_replicated, vec![GroupId(0)]);
    assert_eq!(c.current().epoch.0, 2, "unchanged");
    // δ = 3: the second of two simultaneous failures in one group is refused too.
    let mut c = seven_of_three();
    for n in [1, 2] {
        for r in [3, 4, 5, 6] {
            c.suspect(NodeId(r), NodeId(n));
        }
    }
    c.tick();
    let out = c.tick();
    let refused: Vec<_> = out
        .iter()
        .filter(|o| matches!(o, CoordinatorOutput::Refused(_, PlanError::NoQuorum(_))))
        .collect();
    assert_eq!(refused.len(), 2, "{out:?}");
    assert!(executed(&out).is_none());
}

#[test]
fn a_restored_suspicion_changes_nothing() {
    let mut c = coordinator(2);
    for i in 1..=4 {
        c.check_in(info(i));
    }
    c.suspect(NodeId(1), NodeId(2));
    c.suspect(NodeId(3), NodeId(2));
    c.tick();
    c.restore(NodeId(1), NodeId(2));
    assert!(c.tick().is_empty() && c.tick().is_empty());
    assert_eq!(c.current().epoch.0, 1);
}

#[test]
fn a_refused_leave_is_reported_and_the_queue_goes_on() {
    let mut c = CoordinatorCore::new(CoordinatorConfig {
        min_nodes: 1,
        ..CoordinatorConfig::new(1)
    });
    c.check_in(info(1));
    let out = c.leave(NodeId(1));
    assert!(matches!(
        out.as_slice(),
        [CoordinatorOutput::Refused(
            Event::Left(_),
            PlanError::GroupLost(_)
        )]
    ));
    assert!(c
        .leave(NodeId(42))
        .iter()
        .all(|o| matches!(o, CoordinatorOutput::Refused(..))));
}

#[test]
fn a_planned_map_survives_the_wire() {
    let map = form(&infos(7), 2).unwrap();
    let map = plan(&map, &Event::Failed(NodeId(3))).unwrap().target;
    let bytes = postcard::to_stdvec(&map).unwrap();
    assert_eq!(postcard::from_bytes::<SlotMap>(&bytes).unwrap(), map);
}

/// One row of the report's table: the shape after an event and what it cost.
fn row(label: &str, prev: Option<&SlotMap>, p: &Plan) -> String {
    let m = &p.target;
    let counts: Vec<String> = m.slot_counts().values().map(|c| c.to_string()).collect();
    let moved = prev.map_or(0, |_| p.moved_slots());
    format!(
        "| {label} | {} | {} | {} | {moved} | {} | {:.1}% |",
        m.nodes.len(),
        m.groups.len(),
        m.standbys.len(),
        counts.join("/"),
        m.spread_deviation() * 100.0
    )
}

/// The seed 001 scenarios and 4→6→8→6 (δ=2), as printed for report/cluster.md
/// (`cargo test -p kv-components scenario_table -- --nocapture`).
#[test]
fn scenario_table() {
    let formed = |n: u64, d: u32| {
        let target = form(&infos(n), d).unwrap();
        Plan {
            target,
            actions: Vec::new(),
        }
    };
    let mut rows = Vec::new();
    for (n, k) in [(4, 2), (7, 2), (6, 3), (6, 2)] {
        rows.push(row(&format!("form N={n} K={k}"), None, &formed(n, k)));
    }
    let mut seq = |label: &str, start: (u64, u32), events: Vec<Event>| {
        let mut map = formed(start.0, start.1).target;
        for (i, e) in events.into_iter().enumerate() {
            let p = plan(&map, &e).unwrap();
            rows.push(row(&format!("{label} step {}", i + 1), Some(&map), &p));
            map = p.target;
        }
    };
    let joins = |ids: std::ops::RangeInclusive<u64>| ids.map(|i| Event::Joined(info(i))).collect();
    seq("N=6 K=3 +1, +2", (6, 3), joins(7..=9));
    seq("N=6 K=2 −1", (6, 2), vec![Event::Left(NodeId(3))]);
    let mut events: Vec<Event> = joins(5..=8);
    events.extend([Event::Left(NodeId(8)), Event::Left(NodeId(7))]);
    seq("4→6→8→6 δ=2", (4, 2), events);
    println!("| case | nodes | groups | standbys | moved slots | slots per group | max dev |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}

#[test]
fn a_restarted_coordinator_adopts_the_nodes_map() {
    let mut first = coordinator(2);
    for i in 1..=5 {
        first.check_in(info(i));
    }
    let held = first.current().clone();
    let mut restarted = coordinator(2);
    assert!(
        restarted.check_in(info(6)).is_empty(),
        "waiting: nothing formed yet"
    );
    let out = restarted.report_map(held.clone());
    assert_eq!(restarted.current(), &held);
    let p = executed(&out).expect("node 6 and standby 5 form a group");
    assert_eq!(p.target.epoch, held.epoch.next());
    assert_eq!(p.target.groups.len(), 3);
    assert!(restarted.report_map(held).is_empty(), "old news");
}

#[test]
fn a_formation_order_forms_groups_whoever_checked_in_first() {
    let order: Vec<_> = infos(4).iter().map(|n| n.link).collect();
    let mut c = CoordinatorCore::new(CoordinatorConfig {
        min_nodes: 4,
        formation_order: order,
        ..CoordinatorConfig::new(2)
    });
    let mut out = Vec::new();
    for id in [3, 1, 4, 2] {
        out = c.check_in(info(id));
    }
    let map = published(&out).expect("formed at the fourth check-in");
    assert_eq!(map.members_of(GroupId(0)), &[NodeId(1), NodeId(2)]);
    assert_eq!(map.members_of(GroupId(1)), &[NodeId(3), NodeId(4)]);
}

#[test]
fn a_held_coordinator_queues_events_and_plans_them_on_release() {
    let mut c = coordinator(2);
    for i in 1..=4 {
        c.check_in(info(i));
    }
    assert!(c.current().is_formed());
    c.hold();
    // A newcomer and a leave while held: queued, nothing planned or published.
    assert!(published(&c.check_in(info(5))).is_none());
    assert!(c.leave(NodeId(5)).is_empty());
    assert_eq!(c.status().queued, 2);
    // A map adopted while held stays the base of what is planned next.
    let mut adopted = c.current().clone();
    adopted.epoch = adopted.epoch.next().next();
    c.report_map(adopted.clone());
    assert_eq!(c.current(), &adopted);
    let out = c.release();
    assert!(!c.is_held());
    let map = published(&out).expect("the standby is published");
    assert_eq!(map.epoch, adopted.epoch.next());
    assert_eq!(c.status().queued, 0);
}
