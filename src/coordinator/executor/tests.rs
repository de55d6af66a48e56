//! The executor driven by hand (table-driven scenarios) and by a simulated cluster that
//! loses, duplicates and misdirects answers.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kv_components::bootstrap::formation::form;
use kv_components::bootstrap::planner::{plan, Event, Plan};
use kv_ports::ids::GroupId;
use kv_ports::kv::{pair_bytes, SlotData, SlotPage};
use kv_ports::membership::{NodeInfo, Slot, SLOTS};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

fn info(id: u64) -> NodeInfo {
    NodeInfo::at(NodeId(id), ([127, 0, 0, 1], 9000 + id as u16).into())
}

fn infos(n: u64) -> Vec<NodeInfo> {
    (1..=n).map(info).collect()
}

fn config() -> ExecutorConfig {
    ExecutorConfig {
        retry_ticks: 10,
        pause_ticks: 2,
        batch_slots: 64,
        page_bytes: PAGE,
        max_hops: 3,
    }
}

/// The page size of the tests: a few pairs of [`source_pairs`].
const PAGE: u32 = 64;

/// The pairs a simulated source holds in `slots`, in key order: two of about 30 bytes in
/// every eighth slot.
fn source_pairs(slots: &[Slot]) -> Vec<(Bytes, Bytes)> {
    let mut pairs: Vec<(Bytes, Bytes)> = slots
        .iter()
        .filter(|s| s.0 % 8 == 0)
        .flat_map(|s| {
            (0..2).map(move |i| {
                let k = Bytes::from(format!("key-{:04}-{i}", s.0));
                (k, Bytes::from(format!("value of slot {}", s.0)))
            })
        })
        .collect();
    pairs.sort();
    pairs
}

/// A page of [`source_pairs`] after `after`, as a replica cuts it.
fn source_page(slots: &[Slot], after: Option<&Bytes>, max: u32) -> SlotPage {
    let mut page = SlotPage::default();
    let mut size = 0;
    for (k, v) in source_pairs(slots)
        .into_iter()
        .filter(|(k, _)| after.is_none_or(|a| k > a))
    {
        let n = pair_bytes(&k, &v);
        if !page.pairs.is_empty() && size + n > u64::from(max) {
            page.more = true;
            break;
        }
        size += n;
        page.pairs.push((k, v));
    }
    page
}

/// What a simulated source answers a freeze of `slots`: sizes and a first page.
fn frozen(slots: &[Slot]) -> SlotData {
    let all = source_pairs(slots);
    let first = source_page(slots, None, PAGE);
    SlotData {
        pairs: first.pairs,
        sessions: Vec::new(),
        more: first.more,
        count: all.len() as u64,
        bytes: all.iter().map(|(k, v)| pair_bytes(k, v)).sum(),
    }
}

/// `events` applied to the map formed of `n` nodes with δ = `d`; the last one's plan and
/// the map it starts from.
fn planned(n: u64, d: u32, events: &[Event]) -> (SlotMap, Plan) {
    let mut map = form(&infos(n), d).unwrap();
    let (last, before) = events.split_last().expect("an event");
    for e in before {
        map = plan(&map, e).unwrap().target;
    }
    let p = plan(&map, last).unwrap();
    (map, p)
}

/// An executor whose nodes 1..=n all have sessions up.
fn executor(n: u64) -> Executor {
    let mut ex = Executor::new(config(), 1);
    for i in 1..=n {
        assert!(ex.session_up(NodeId(i)).is_empty());
    }
    ex
}

/// The directives in `out`, as (to, id, directive).
fn sends(out: &[Output]) -> Vec<(NodeId, DirectiveId, Directive)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to, id, directive, ..
            } => Some((*to, *id, directive.clone())),
            Output::PlanDone(_) => None,
        })
        .collect()
}

fn done(out: &[Output]) -> Option<Epoch> {
    out.iter().find_map(|o| match o {
        Output::PlanDone(e) => Some(*e),
        Output::Send { .. } => None,
    })
}

/// The one directive in `out`.
fn only(out: &[Output]) -> (NodeId, DirectiveId, Directive) {
    let s = sends(out);
    assert_eq!(s.len(), 1, "{out:?}");
    s.into_iter().next().unwrap()
}

fn kind(d: &Directive) -> &'static str {
    match d {
        Directive::StartGroup { .. } => "start",
        Directive::JoinGroup { .. } => "join",
        Directive::ChangeMembers { .. } => "change",
        Directive::Freeze { .. } => "freeze",
        Directive::ReadFrozen { .. } => "read",
        Directive::InstallPart { .. } => "part",
        Directive::Install { .. } => "install",
        Directive::StopGroup { .. } => "stop",
    }
}

/// What a healthy node answers.
fn success(d: &Directive) -> DirectiveOutcome {
    match d {
        Directive::Freeze { slots, .. } => DirectiveOutcome::Frozen(frozen(slots)),
        Directive::ReadFrozen {
            slots,
            after,
            max_bytes,
            ..
        } => DirectiveOutcome::Page(source_page(slots, after.as_ref(), *max_bytes)),
        _ => DirectiveOutcome::Done,
    }
}

/// Answers every directive at once as a healthy cluster would (but never `StopGroup` if
/// `stops` is false), until the plan is done; returns how many directives of each kind were
/// sent.
fn answer_all(
    ex: &mut Executor,
    first: Vec<Output>,
    stops: bool,
) -> (BTreeMap<&'static str, usize>, Epoch) {
    let mut counts = BTreeMap::new();
    let mut queue = Vec::new();
    let mut count = |out: Vec<Output>, queue: &mut Vec<Output>| {
        for (_, _, d) in sends(&out) {
            *counts.entry(kind(&d)).or_default() += 1;
        }
        let end = done(&out);
        queue.extend(out);
        end
    };
    let mut end = count(first, &mut queue);
    while end.is_none() {
        let Some(o) = queue.pop() else {
            panic!("stalled without finishing");
        };
        if let Output::Send {
            to, id, directive, ..
        } = o
        {
            if stops || kind(&directive) != "stop" {
                let out = ex.answered(to, id, success(&directive));
                end = count(out, &mut queue);
            }
        }
    }
    (counts, end.unwrap())
}

fn run_healthy(ex: &mut Executor, first: Vec<Output>) -> (BTreeMap<&'static str, usize>, Epoch) {
    answer_all(ex, first, true)
}

/// What it shows, nodes, δ, events, directives expected per kind.
type Scenario = (
    &'static str,
    u64,
    u32,
    Vec<Event>,
    Vec<(&'static str, usize)>,
);

#[test]
fn every_action_kind_runs_to_the_end() {
    // (what, nodes, δ, events, directives expected per kind)
    let table: Vec<Scenario> = vec![
        (
            "a third group: created, then 341 slots move in 6 batches",
            6,
            3,
            vec![
                Event::Joined(info(7)),
                Event::Joined(info(8)),
                Event::Joined(info(9)),
            ],
            vec![("start", 3), ("freeze", 6), ("install", 6)],
        ),
        (
            "a failed member replaced by the standby",
            7,
            3,
            vec![Event::Failed(NodeId(2))],
            vec![("join", 1), ("change", 1)],
        ),
        (
            "a failure without standby: the group shrinks",
            6,
            3,
            vec![Event::Failed(NodeId(5))],
            vec![("change", 1)],
        ),
        (
            "a leave dissolves a group: its slots move out, its members stop it",
            6,
            2,
            vec![Event::Left(NodeId(3))],
            vec![("freeze", 6), ("install", 6), ("stop", 2)],
        ),
        (
            "a join fills an under-replicated group",
            6,
            3,
            vec![Event::Failed(NodeId(5)), Event::Joined(info(7))],
            vec![("join", 1), ("change", 1)],
        ),
    ];
    for (what, n, d, events, expected) in table {
        let (before, p) = planned(n, d, &events);
        let mut ex = executor(n + 3);
        let first = ex.start(&p, &before);
        let (mut counts, epoch) = run_healthy(&mut ex, first);
        assert_eq!(epoch, p.target.epoch, "{what}");
        // Every page but a batch's last is staged, then the next one read.
        let (parts, reads) = (counts.remove("part"), counts.remove("read"));
        assert_eq!(parts, reads, "{what}");
        assert_eq!(parts.is_some(), counts.contains_key("freeze"), "{what}");
        let expected: BTreeMap<&str, usize> = expected.into_iter().collect();
        assert_eq!(counts, expected, "{what}");
        assert!(ex.running().is_none(), "{what}");
    }
}

#[test]
fn formation_starts_every_member_with_its_slots_and_retries_until_answered() {
    let map = form(&infos(4), 2).unwrap();
    let mut ex = executor(3); // node 4's session is not up yet
    let out = ex.form(&map);
    let s = sends(&out);
    assert_eq!(s.len(), 3);
    for (to, _, d) in &s {
        let Directive::StartGroup {
            group,
            config,
            members,
            slots,
        } = d
        else {
            panic!("{d:?}");
        };
        assert!(members.contains(to));
        assert_eq!(*config, 1);
        assert_eq!(slots, &map.slots_of(*group));
    }
    let peers = match &out[0] {
        Output::Send { to, peers, .. } => {
            assert!(peers.iter().all(|p| p.id != *to));
            peers.len()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(peers, 1, "the other member of a group of two");
    // Node 4 checks in: its StartGroup goes out first.
    let (to, id4, _) = only(&ex.session_up(NodeId(4)));
    assert_eq!(to, NodeId(4));
    // Nodes 1 and 4 answer; 2 and 3 get theirs again after the timeout, and on reconnect.
    assert!(ex
        .answered(NodeId(4), id4, DirectiveOutcome::Done)
        .is_empty());
    assert!(ex
        .answered(s[0].0, s[0].1, DirectiveOutcome::Done)
        .is_empty());
    for _ in 0..9 {
        assert!(ex.tick().is_empty());
    }
    let again: BTreeSet<NodeId> = sends(&ex.tick()).iter().map(|s| s.0).collect();
    assert_eq!(again, [s[1].0, s[2].0].into_iter().collect());
    assert!(ex.session_down(s[1].0).is_empty());
    assert_eq!(only(&ex.session_up(s[1].0)).0, s[1].0);
    assert_eq!(ex.unanswered(), 2);
}

#[test]
fn a_member_change_follows_hints_and_waits_for_the_new_member() {
    let (before, p) = planned(7, 3, &[Event::Failed(NodeId(2))]);
    let mut ex = executor(7);
    ex.node_failed(NodeId(2));
    let out = ex.start(&p, &before);
    let mut s = sends(&out);
    s.sort_by_key(|(_, _, d)| kind(d));
    let [(c_to, c_id, change), (j_to, j_id, join)] = [s[0].clone(), s[1].clone()];
    assert_eq!((kind(&change), kind(&join)), ("change", "join"));
    assert_eq!(
        c_to,
        NodeId(1),
        "the first live member of the old configuration"
    );
    assert_eq!(j_to, NodeId(7));
    assert_eq!(
        join,
        Directive::JoinGroup {
            group: GroupId(0),
            after: 1,
            next: 2,
            sources: vec![NodeId(1), NodeId(2), NodeId(3), NodeId(7)],
        }
    );
    // Node 1 points at node 3, which leads.
    let hint = DirectiveOutcome::NotLeader {
        hint: Some(NodeId(3)),
    };
    let (to, id, _) = only(&ex.answered(NodeId(1), c_id, hint));
    assert_eq!((to, id), (NodeId(3), c_id), "same directive, next member");
    // A late refusal from node 1 changes nothing; node 3 seals.
    let late = DirectiveOutcome::Failed("late".into());
    assert!(ex.answered(NodeId(1), c_id, late).is_empty());
    assert!(ex
        .answered(NodeId(3), c_id, DirectiveOutcome::Done)
        .is_empty());
    assert!(ex.running().is_some(), "node 7 has not answered");
    // An answer to node 7's directive from someone else does not count.
    assert!(ex
        .answered(NodeId(3), j_id, DirectiveOutcome::Done)
        .is_empty());
    let out = ex.answered(NodeId(7), j_id, DirectiveOutcome::Done);
    assert_eq!(done(&out), Some(p.target.epoch));
    assert!(
        ex.answered(NodeId(7), j_id, DirectiveOutcome::Done)
            .is_empty(),
        "duplicate"
    );
}

#[test]
fn lost_answers_and_refusals_move_a_group_directive_on() {
    let (before, p) = planned(7, 3, &[Event::Failed(NodeId(2))]);
    let mut ex = executor(7);
    ex.node_failed(NodeId(2));
    let out = ex.start(&p, &before);
    let change = sends(&out)
        .into_iter()
        .find(|s| kind(&s.2) == "change")
        .unwrap();
    assert_eq!(change.0, NodeId(1));
    // No answer: after the timeout it goes to the next live member (2 is failed).
    for _ in 0..9 {
        assert!(sends(&ex.tick()).iter().all(|s| kind(&s.2) != "change"));
    }
    let retried: Vec<_> = sends(&ex.tick());
    let to: Vec<NodeId> = retried
        .iter()
        .filter(|s| kind(&s.2) == "change")
        .map(|s| s.0)
        .collect();
    assert_eq!(to, [NodeId(3)]);
    assert!(
        retried
            .iter()
            .any(|s| kind(&s.2) == "join" && s.0 == NodeId(7)),
        "the unanswered join too"
    );
    // Node 3 knows no leader: pause, then the next member (7, a new member that may run
    // the next configuration already).
    let none = DirectiveOutcome::NotLeader { hint: None };
    assert!(ex.answered(NodeId(3), change.1, none).is_empty());
    assert!(ex.tick().is_empty());
    assert_eq!(only(&ex.tick()).0, NodeId(7));
    // A hint naming a node whose session is down is not followed.
    ex.session_down(NodeId(1));
    let bad_hint = DirectiveOutcome::NotLeader {
        hint: Some(NodeId(1)),
    };
    assert!(ex.answered(NodeId(7), change.1, bad_hint).is_empty());
    ex.tick();
    assert_eq!(only(&ex.tick()).0, NodeId(3));
    // The holder's session drops: next member at once.
    assert_eq!(only(&ex.session_down(NodeId(3))).0, NodeId(7));
}

#[test]
fn hints_are_followed_a_few_hops_at_most() {
    let (before, p) = planned(7, 3, &[Event::Failed(NodeId(2))]);
    let mut ex = executor(7);
    ex.node_failed(NodeId(2));
    let change = sends(&ex.start(&p, &before))
        .into_iter()
        .find(|s| kind(&s.2) == "change")
        .unwrap();
    let mut at = change.0;
    for _ in 0..3 {
        let other = if at == NodeId(1) {
            NodeId(3)
        } else {
            NodeId(1)
        };
        let hint = DirectiveOutcome::NotLeader { hint: Some(other) };
        let (to, _, _) = only(&ex.answered(at, change.1, hint));
        assert_eq!(to, other);
        at = to;
    }
    let hint = DirectiveOutcome::NotLeader {
        hint: Some(NodeId(1)),
    };
    assert!(
        ex.answered(at, change.1, hint).is_empty(),
        "ping-pong: pause"
    );
}

#[test]
fn a_new_member_dying_mid_plan_is_not_waited_for() {
    let (before, p) = planned(7, 3, &[Event::Failed(NodeId(2))]);
    let mut ex = executor(7);
    ex.node_failed(NodeId(2));
    let out = ex.start(&p, &before);
    let change = sends(&out)
        .into_iter()
        .find(|s| kind(&s.2) == "change")
        .unwrap();
    assert!(ex
        .answered(change.0, change.1, DirectiveOutcome::Done)
        .is_empty());
    let out = ex.node_failed(NodeId(7));
    assert_eq!(done(&out), Some(p.target.epoch));
    assert_eq!(ex.unanswered(), 0);
}

#[test]
fn slot_moves_freeze_then_install_batch_by_batch() {
    let (before, p) = planned(
        6,
        3,
        &[
            Event::Joined(info(7)),
            Event::Joined(info(8)),
            Event::Joined(info(9)),
        ],
    );
    let mut ex = executor(9);
    let starts = sends(&ex.start(&p, &before));
    assert_eq!(starts.len(), 3);
    assert!(starts.iter().all(|s| s.2
        == Directive::StartGroup {
            group: GroupId(2),
            config: 1,
            members: vec![NodeId(7), NodeId(8), NodeId(9)],
            slots: Vec::new(),
        }));
    assert!(ex
        .answered(NodeId(7), starts[0].1, DirectiveOutcome::Done)
        .is_empty());
    assert!(
        ex.answered(NodeId(7), starts[0].1, DirectiveOutcome::Done)
            .is_empty(),
        "a duplicate does not count twice"
    );
    let freezes = sends(&ex.answered(NodeId(8), starts[1].1, DirectiveOutcome::Done));
    assert_eq!(freezes.len(), 2, "one batch from each old group at once");
    // Node 9 never answered its StartGroup: it goes on in the background.
    assert_eq!(ex.unanswered(), 3);
    let (to, id, d) = freezes[0].clone();
    let Directive::Freeze {
        group,
        slots,
        epoch,
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        (group, slots.len(), epoch),
        (GroupId(0), 64, p.target.epoch)
    );
    assert!(p.target.members_of(GroupId(0)).contains(&to));
    // Done is not what a freeze answers: treated as a refusal, the next member is tried.
    assert!(ex.answered(to, id, DirectiveOutcome::Done).is_empty());
    ex.tick();
    let (to, id, _) = only(&ex.tick());
    let data = SlotData {
        pairs: vec![(Bytes::from_static(b"k"), Bytes::from_static(b"v"))],
        sessions: Vec::new(),
        more: false,
        count: 1,
        bytes: 2,
    };
    let (ito, iid, install) = only(&ex.answered(to, id, DirectiveOutcome::Frozen(data.clone())));
    assert!(
        ex.answered(to, id, DirectiveOutcome::Frozen(data.clone()))
            .is_empty(),
        "a second freeze answer starts no second install"
    );
    assert_eq!(
        install,
        Directive::Install {
            group: GroupId(2),
            slots: slots.clone(),
            epoch: p.target.epoch,
            data,
        }
    );
    assert!(p.target.members_of(GroupId(2)).contains(&ito));
    let (_, _, next) = only(&ex.answered(ito, iid, DirectiveOutcome::Done));
    let Directive::Freeze {
        slots: next_slots, ..
    } = next
    else {
        panic!("{next:?}")
    };
    assert!(next_slots[0] > slots[63], "the next batch of the same pair");
}

/// A batch larger than a page: the first page (from the freeze) is staged, the next read
/// from the member that froze, staged, and the last goes with the install; a refused read
/// moves on to another member of the source.
#[test]
fn a_large_batch_moves_page_by_page() {
    let (before, p) = planned(
        6,
        3,
        &[
            Event::Joined(info(7)),
            Event::Joined(info(8)),
            Event::Joined(info(9)),
        ],
    );
    let mut ex = executor(9);
    let starts = sends(&ex.start(&p, &before));
    ex.answered(NodeId(7), starts[0].1, DirectiveOutcome::Done);
    let freezes = sends(&ex.answered(NodeId(8), starts[1].1, DirectiveOutcome::Done));
    let (froze, fid, d) = freezes[0].clone();
    let Directive::Freeze {
        group,
        slots,
        epoch,
    } = d
    else {
        panic!("{d:?}")
    };
    let key = |k: &str| Bytes::from(k.to_owned());
    let pair = |k: &str| (key(k), Bytes::from_static(b"0123456789"));
    let session = kv_ports::kv::SessionEntry {
        client: kv_ports::ids::ClientId::random(),
        seq: 3,
        reply: kv_ports::kv::KvResult::Written,
    };
    let summary = SlotData {
        pairs: vec![pair("a")],
        sessions: vec![session],
        more: true,
        count: 3,
        bytes: 33,
    };
    let (pto, pid, part) =
        only(&ex.answered(froze, fid, DirectiveOutcome::Frozen(summary.clone())));
    assert_eq!(
        part,
        Directive::InstallPart {
            group: GroupId(2),
            slots: slots.clone(),
            epoch,
            pairs: vec![pair("a")]
        }
    );
    let (rto, rid, read) = only(&ex.answered(pto, pid, DirectiveOutcome::Done));
    assert_eq!(rto, froze, "read where the freeze was applied");
    assert_eq!(
        read,
        Directive::ReadFrozen {
            group,
            slots: slots.clone(),
            epoch,
            after: Some(key("a")),
            max_bytes: PAGE
        }
    );
    assert!(ex
        .answered(rto, rid, DirectiveOutcome::Failed("not frozen here".into()))
        .is_empty());
    ex.tick();
    let (rto2, rid2, read2) = only(&ex.tick());
    assert_ne!(rto2, froze, "another member of the source");
    assert!(p.target.members_of(group).contains(&rto2));
    assert_eq!(read2, read);
    let page = SlotPage {
        pairs: vec![pair("b")],
        more: true,
    };
    let (pto, pid, part) = only(&ex.answered(rto2, rid2, DirectiveOutcome::Page(page)));
    assert!(matches!(&part, Directive::InstallPart { pairs, .. } if pairs == &vec![pair("b")]));
    assert!(
        ex.answered(rto2, rid2, DirectiveOutcome::Page(SlotPage::default()))
            .is_empty(),
        "a late answer"
    );
    let (rto, rid, read) = only(&ex.answered(pto, pid, DirectiveOutcome::Done));
    assert!(matches!(&read, Directive::ReadFrozen { after: Some(a), .. } if a == &key("b")));
    let last = SlotPage {
        pairs: vec![pair("c")],
        more: false,
    };
    let (_, _, install) = only(&ex.answered(rto, rid, DirectiveOutcome::Page(last)));
    let want = SlotData {
        pairs: vec![pair("c")],
        more: false,
        ..summary
    };
    assert_eq!(
        install,
        Directive::Install {
            group: GroupId(2),
            slots,
            epoch,
            data: want
        }
    );
}

#[test]
fn a_dissolved_group_is_stopped_in_the_background() {
    let (before, p) = planned(6, 2, &[Event::Left(NodeId(3))]);
    let mut ex = executor(6);
    let out = ex.start(&p, &before);
    let (counts, epoch) = run_healthy_except_stops(&mut ex, out);
    assert_eq!(epoch, p.target.epoch);
    assert_eq!(counts.get("stop"), Some(&2));
    assert_eq!(ex.unanswered(), 2, "stops unanswered");
    // After the timeout both are sent again; once node 3 is out of the map, only node 4's.
    for _ in 0..9 {
        ex.tick();
    }
    assert_eq!(sends(&ex.tick()).len(), 2);
    ex.published(&p.target);
    assert_eq!(ex.unanswered(), 1);
    for _ in 0..9 {
        ex.tick();
    }
    assert_eq!(only(&ex.tick()).0, NodeId(4));
}

/// Like [`run_healthy`], but `StopGroup`s go unanswered.
fn run_healthy_except_stops(
    ex: &mut Executor,
    first: Vec<Output>,
) -> (BTreeMap<&'static str, usize>, Epoch) {
    answer_all(ex, first, false)
}

/// A cluster that loses and duplicates answers, answers from followers with hints (some
/// wrong), and drops sessions now and then: every plan still finishes, every slot is frozen
/// before it is installed, and each batch is installed.
#[test]
fn an_unreliable_cluster_still_finishes_every_plan() {
    for seed in 0..200u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let scenarios: [(u64, u32, Vec<Event>); 3] = [
            (
                6,
                3,
                vec![
                    Event::Joined(info(7)),
                    Event::Joined(info(8)),
                    Event::Joined(info(9)),
                ],
            ),
            (6, 2, vec![Event::Left(NodeId(3))]),
            (7, 3, vec![Event::Left(NodeId(2))]),
        ];
        let (n, d, events) = &scenarios[seed as usize % 3];
        let (before, p) = planned(*n, *d, events);
        let nodes = n + 3;
        let mut ex = executor(nodes);
        let mut inflight: Vec<(NodeId, DirectiveId, Directive)> = sends(&ex.start(&p, &before));
        let mut frozen: BTreeSet<Slot> = BTreeSet::new();
        let mut installed: BTreeSet<Slot> = BTreeSet::new();
        // What each batch's destination staged (a part may be applied though its answer is
        // lost), and how many pages moved.
        let mut staged: BTreeMap<Vec<Slot>, BTreeMap<Bytes, Bytes>> = BTreeMap::new();
        let mut parts = 0;
        let mut finished = None;
        for _ in 0..20_000 {
            if finished.is_some() {
                break;
            }
            let mut out = Vec::new();
            match rng.gen_range(0..10) {
                0 => out.extend(ex.tick()),
                1 => {
                    let node = NodeId(rng.gen_range(1..=nodes));
                    out.extend(ex.session_down(node));
                    out.extend(ex.session_up(node));
                }
                _ if !inflight.is_empty() => {
                    let i = rng.gen_range(0..inflight.len());
                    let (to, id, dir) = inflight[i].clone();
                    if rng.gen_bool(0.7) {
                        inflight.swap_remove(i); // else: answered twice
                    }
                    let outcome = match rng.gen_range(0..10) {
                        0 => None, // lost
                        1 => Some(DirectiveOutcome::NotLeader {
                            hint: Some(NodeId(rng.gen_range(1..=nodes))),
                        }),
                        2 => Some(DirectiveOutcome::Failed("busy".into())),
                        _ => Some(success(&dir)),
                    };
                    if let Directive::InstallPart { slots, pairs, .. } = &dir {
                        let at = staged.entry(slots.clone()).or_default();
                        at.extend(pairs.iter().cloned());
                        parts += 1;
                    }
                    if let Some(outcome) = outcome {
                        match (&dir, &outcome) {
                            (Directive::Freeze { slots, .. }, DirectiveOutcome::Frozen(_)) => {
                                frozen.extend(slots.iter().copied())
                            }
                            (Directive::Install { slots, data, .. }, DirectiveOutcome::Done) => {
                                assert!(slots.iter().all(|s| frozen.contains(s)), "seed {seed}");
                                let mut got = staged.get(slots).cloned().unwrap_or_default();
                                got.extend(data.pairs.iter().cloned());
                                let got: Vec<(Bytes, Bytes)> = got.into_iter().collect();
                                assert_eq!(got, source_pairs(slots), "seed {seed}: every page");
                                assert_eq!(data.count, got.len() as u64, "seed {seed}");
                                installed.extend(slots.iter().copied());
                            }
                            _ => {}
                        }
                        out.extend(ex.answered(to, id, outcome));
                    }
                }
                _ => out.extend(ex.tick()),
            }
            finished = finished.or(done(&out));
            inflight.extend(sends(&out));
        }
        assert_eq!(finished, Some(p.target.epoch), "seed {seed}: no end");
        let moved: BTreeSet<Slot> = (0..SLOTS)
            .filter(|&s| before.slots[s] != p.target.slots[s])
            .map(|s| Slot(s as u16))
            .collect();
        assert_eq!(installed, moved, "seed {seed}");
        assert!(
            parts > 0 || moved.is_empty(),
            "seed {seed}: batches larger than a page are paged"
        );
    }
}
