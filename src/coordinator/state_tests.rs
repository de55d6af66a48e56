//! Tests of the coordinator's state: frames in, frames queued.

use super::*;
use crate::native::{ClientFrame, Directive, DirectiveOutcome};
use bytes::Bytes;
use kv_ports::ids::ClientId;
use kv_ports::kv::{KvCommand, KvOp, RequestId};
use tokio::sync::mpsc::{self, Receiver};

fn info(id: u64) -> NodeInfo {
    let addr = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    NodeInfo {
        id: NodeId(id),
        link: addr(id as u16),
        client: addr(1000 + id as u16),
        resp: None,
        http: None,
    }
}

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        min_nodes: 4,
        ..CoordinatorConfig::new(2)
    }
}

/// Opens connection `n`, returning its writer's queue (with room for `room` frames).
fn open(state: &mut State, n: u64, room: usize) -> Receiver<ServerFrame> {
    let (out, queue) = mpsc::channel(room);
    state.connected(ConnId(n), out, ConnTasks::default());
    queue
}

fn send(state: &mut State, n: u64, frame: ClientFrame) {
    state.handle(Event::Inbound {
        conn: ConnId(n),
        frame: Box::new(frame),
    });
}

/// Node `n` checks in on connection `n`.
fn check_in(state: &mut State, n: u64, map: Option<SlotMap>) {
    check_in_on(state, n, n, map);
}

fn check_in_on(state: &mut State, conn: u64, n: u64, map: Option<SlotMap>) {
    let frame = ClientFrame::CheckIn { node: info(n), map };
    send(state, conn, frame);
}

fn drain(queue: &mut Receiver<ServerFrame>) -> Vec<ServerFrame> {
    std::iter::from_fn(|| queue.try_recv().ok()).collect()
}

fn maps(queue: &mut Receiver<ServerFrame>) -> Vec<Epoch> {
    drain(queue)
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Map(Some(m)) => Some(m.epoch),
            _ => None,
        })
        .collect()
}

fn status(state: &mut State, queue: &mut Receiver<ServerFrame>, n: u64) -> CoordinatorStatus {
    send(state, n, ClientFrame::GetStatus);
    match drain(queue).pop() {
        Some(ServerFrame::Status(StatusReport::Coordinator(s))) => s,
        other => panic!("expected a coordinator status, got {other:?}"),
    }
}

/// Four check-ins on four connections; returns their queues (already drained).
fn formed(state: &mut State) -> Vec<Receiver<ServerFrame>> {
    let mut queues: Vec<_> = (1..=4).map(|n| open(state, n, 16)).collect();
    for n in 1..=4 {
        check_in(state, n, None);
    }
    for q in &mut queues {
        assert_eq!(maps(q), [Epoch(1)]);
    }
    queues
}

#[test]
fn formation_is_published_to_every_session() {
    let mut state = State::new(config(), ExecutorConfig::default());
    let mut client = open(&mut state, 99, 16);
    let mut queues: Vec<_> = (1..=4).map(|n| open(&mut state, n, 16)).collect();
    for n in 1..=3 {
        check_in(&mut state, n, None);
    }
    assert!(queues.iter_mut().all(|q| drain(q).is_empty()));
    let s = status(&mut state, &mut client, 99);
    assert_eq!((s.epoch, s.waiting_for), (Epoch(0), 1));
    assert_eq!(s.connected, [NodeId(1), NodeId(2), NodeId(3)]);
    send(&mut state, 99, ClientFrame::GetMap { have: Epoch(0) });
    assert_eq!(drain(&mut client), [ServerFrame::Map(None)]);
    check_in(&mut state, 4, None);
    for q in &mut queues {
        assert_eq!(maps(q), [Epoch(1)]);
    }
    assert!(drain(&mut client).is_empty(), "clients get no pushes");
    let s = status(&mut state, &mut client, 99);
    assert_eq!((s.epoch, s.waiting_for), (Epoch(1), 0));
}

#[test]
fn a_late_node_becomes_a_standby_and_everyone_hears() {
    let mut state = State::new(config(), ExecutorConfig::default());
    let mut queues = formed(&mut state);
    queues.push(open(&mut state, 5, 16));
    check_in(&mut state, 5, None);
    for q in &mut queues[..4] {
        assert_eq!(maps(q), [Epoch(2)]);
    }
    // The newcomer gets the publish and the answer to its check-in.
    assert_eq!(maps(&mut queues[4]), [Epoch(2), Epoch(2)]);
}

#[test]
fn a_restarted_coordinator_adopts_the_reported_map() {
    let mut old = State::new(config(), ExecutorConfig::default());
    let _queues = formed(&mut old);
    let map = old.core.current().clone();
    let mut state = State::new(config(), ExecutorConfig::default());
    let mut queues: Vec<_> = (1..=4).map(|n| open(&mut state, n, 16)).collect();
    for n in 1..=4 {
        check_in(&mut state, n, Some(map.clone()));
    }
    for q in &mut queues {
        assert_eq!(maps(q), [Epoch(1)], "the current map, not a new formation");
    }
    assert_eq!(state.core.current(), &map);
}

#[test]
fn a_closed_session_stays_in_the_map_and_a_reconnect_gets_the_current_map() {
    let mut state = State::new(config(), ExecutorConfig::default());
    let _queues = formed(&mut state);
    state.handle(Event::Closed { conn: ConnId(2) });
    let mut client = open(&mut state, 99, 16);
    let s = status(&mut state, &mut client, 99);
    assert_eq!(s.connected, [NodeId(1), NodeId(3), NodeId(4)]);
    assert!(state.core.current().node(NodeId(2)).is_some());
    let mut again = open(&mut state, 20, 16);
    check_in_on(&mut state, 20, 2, None);
    assert_eq!(maps(&mut again), [Epoch(1)]);
    assert_eq!(state.core.current().epoch, Epoch(1));
}

#[test]
fn requests_are_rejected_and_garbage_gets_an_error() {
    let mut state = State::new(config(), ExecutorConfig::default());
    let mut queue = open(&mut state, 1, 16);
    let id = RequestId {
        client: ClientId::random(),
        seq: 3,
    };
    let op = KvOp::Get {
        key: Bytes::from_static(b"k"),
    };
    send(&mut state, 1, ClientFrame::Request(KvCommand { id, op }));
    let message = NO_DATA.to_owned();
    assert_eq!(drain(&mut queue), [ServerFrame::Rejected { id, message }]);
    let message = "bad".to_owned();
    state.handle(Event::Undecodable {
        conn: ConnId(1),
        message: message.clone(),
    });
    assert_eq!(drain(&mut queue), [ServerFrame::Error { message }]);
}

#[test]
fn a_connection_that_does_not_read_is_dropped() {
    let mut state = State::new(config(), ExecutorConfig::default());
    let _full = open(&mut state, 1, 1);
    send(&mut state, 1, ClientFrame::GetMap { have: Epoch(0) });
    assert_eq!(state.connections(), 1);
    send(&mut state, 1, ClientFrame::GetMap { have: Epoch(0) });
    assert_eq!(state.connections(), 0);
}

/// Plays healthy data nodes: every directive queued for nodes `ids` (node `n` on connection
/// `n`) is answered with success, round after round, until none is left. Returns the other
/// frames each node got, in order.
fn serve_directives(
    state: &mut State,
    queues: &mut [(u64, Receiver<ServerFrame>)],
) -> BTreeMap<u64, Vec<ServerFrame>> {
    let mut rest: BTreeMap<u64, Vec<ServerFrame>> = BTreeMap::new();
    loop {
        let mut answered = false;
        for (n, q) in queues.iter_mut() {
            for frame in drain(q) {
                match frame {
                    ServerFrame::Directive { id, directive, .. } => {
                        let outcome = match directive {
                            Directive::Freeze { .. } => {
                                DirectiveOutcome::Frozen(kv_ports::kv::SlotData::default())
                            }
                            _ => DirectiveOutcome::Done,
                        };
                        send(state, *n, ClientFrame::DirectiveDone { id, outcome });
                        answered = true;
                    }
                    other => rest.entry(*n).or_default().push(other),
                }
            }
        }
        if !answered {
            return rest;
        }
    }
}

fn admin_answers(queue: &mut Receiver<ServerFrame>) -> Vec<AdminAnswer> {
    drain(queue)
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Admin(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn start_group_directives_precede_the_first_map_and_come_again_on_reconnect() {
    let mut state = State::new(config(), ExecutorConfig::default());
    let mut queues: Vec<_> = (1..=4).map(|n| open(&mut state, n, 16)).collect();
    for n in 1..=4 {
        check_in(&mut state, n, None);
    }
    for (i, q) in queues.iter_mut().enumerate() {
        let me = NodeId(i as u64 + 1);
        let frames = drain(q);
        match frames.as_slice() {
            [ServerFrame::Directive {
                directive: Directive::StartGroup { members, slots, .. },
                peers,
                ..
            }, ServerFrame::Map(Some(map))] => {
                assert!(members.contains(&me));
                assert_eq!(slots.len(), 512);
                assert_eq!(peers.len(), 1);
                assert_eq!(map.epoch, Epoch(1));
            }
            other => panic!("{other:?}"),
        }
    }
    // Node 2 reconnects without having answered: its StartGroup again, then the map.
    state.handle(Event::Closed { conn: ConnId(2) });
    let mut again = open(&mut state, 20, 16);
    check_in_on(&mut state, 20, 2, None);
    let frames = drain(&mut again);
    assert!(
        matches!(
            frames.as_slice(),
            [ServerFrame::Directive { .. }, ServerFrame::Map(Some(_))]
        ),
        "{frames:?}"
    );
}

#[test]
fn a_join_is_carried_out_and_awaited() {
    let mut state = State::new(config(), ExecutorConfig::default());
    let mut queues: Vec<(u64, Receiver<ServerFrame>)> =
        (1..=4).map(|n| (n, open(&mut state, n, 64))).collect();
    for n in 1..=4 {
        check_in(&mut state, n, None);
    }
    serve_directives(&mut state, &mut queues);
    let mut client = open(&mut state, 99, 16);
    let mut other = open(&mut state, 98, 16);
    queues.push((5, open(&mut state, 5, 64)));
    check_in(&mut state, 5, None);
    send(
        &mut state,
        99,
        ClientFrame::Admin(AdminRequest::AwaitNode(NodeRef::Id(NodeId(5)))),
    );
    let answers = admin_answers(&mut client);
    assert!(
        matches!(answers.as_slice(), [AdminAnswer::Done(m)] if m.standbys == [NodeId(5)]),
        "a standby at once: {answers:?}"
    );
    let six = NodeRef::Addr(info(6).client);
    send(
        &mut state,
        98,
        ClientFrame::Admin(AdminRequest::AwaitNode(six)),
    );
    queues.push((6, open(&mut state, 6, 64)));
    check_in(&mut state, 6, None);
    let s = status(&mut state, &mut client, 99);
    assert_eq!((s.epoch, s.in_flight), (Epoch(2), Some(Epoch(3))));
    assert!(
        admin_answers(&mut other).is_empty(),
        "placed only once published"
    );
    serve_directives(&mut state, &mut queues);
    let answers = admin_answers(&mut other);
    match answers.as_slice() {
        [AdminAnswer::Done(m)] => {
            assert_eq!((m.epoch, m.groups.len()), (Epoch(3), 3));
            assert_eq!(m.group_of_node(NodeId(6)), Some(kv_ports::ids::GroupId(2)));
        }
        other => panic!("{other:?}"),
    }
    let s = status(&mut state, &mut client, 99);
    assert_eq!((s.epoch, s.in_flight, s.queued), (Epoch(3), None, 0));
}

#[test]
fn removals_wait_for_the_map_without_the_node() {
    let mut state = State::new(config(), ExecutorConfig::default());
    let mut queues: Vec<(u64, Receiver<ServerFrame>)> =
        (1..=4).map(|n| (n, open(&mut state, n, 64))).collect();
    for n in 1..=4 {
        check_in(&mut state, n, None);
    }
    let first = state.core.current().clone();
    serve_directives(&mut state, &mut queues);
    let mut a = open(&mut state, 99, 16);
    let mut b = open(&mut state, 98, 16);
    send(
        &mut state,
        99,
        ClientFrame::Admin(AdminRequest::Remove(NodeRef::Id(NodeId(42)))),
    );
    assert!(matches!(
        admin_answers(&mut a).as_slice(),
        [AdminAnswer::Refused(r)] if r.contains("no node n42")
    ));
    let by_addr = NodeRef::Addr(info(3).client);
    send(
        &mut state,
        99,
        ClientFrame::Admin(AdminRequest::Remove(by_addr)),
    );
    send(
        &mut state,
        98,
        ClientFrame::Admin(AdminRequest::Remove(NodeRef::Id(NodeId(3)))),
    );
    assert!(admin_answers(&mut a).is_empty() && admin_answers(&mut b).is_empty());
    let rest = serve_directives(&mut state, &mut queues);
    // The removed node hears it on its session, after the map that removed it.
    assert!(
        matches!(
            rest[&3].last(),
            Some(ServerFrame::Removed {
                node: NodeId(3),
                ..
            })
        ),
        "{:?}",
        rest[&3]
    );
    assert!(rest[&1]
        .iter()
        .all(|f| !matches!(f, ServerFrame::Removed { .. })));
    for q in [&mut a, &mut b] {
        match admin_answers(q).as_slice() {
            [AdminAnswer::Done(m)] => {
                assert!(m.node(NodeId(3)).is_none());
                assert_eq!((m.groups.len(), m.standbys.clone()), (1, vec![NodeId(4)]));
            }
            other => panic!("{other:?}"),
        }
    }
    // The removed node's process comes back: told again that it is out.
    let mut back = open(&mut state, 30, 16);
    check_in_on(&mut state, 30, 3, None);
    assert!(matches!(
        drain(&mut back).as_slice(),
        [ServerFrame::Removed {
            node: NodeId(3),
            ..
        }]
    ));
    // A restarted coordinator never saw the removal: the node's own, older map names it; the
    // newer one the others re-report does not.
    let now = state.core.current().clone();
    let mut fresh = State::new(config(), ExecutorConfig::default());
    let _one = open(&mut fresh, 1, 64);
    check_in(&mut fresh, 1, Some(now));
    let mut three = open(&mut fresh, 3, 16);
    check_in(&mut fresh, 3, Some(first));
    assert!(matches!(
        drain(&mut three).as_slice(),
        [ServerFrame::Removed {
            node: NodeId(3),
            ..
        }]
    ));
    assert!(fresh.core.current().node(NodeId(3)).is_none());
}

#[test]
fn a_removal_the_planner_refuses_is_answered_with_its_reason() {
    let config = CoordinatorConfig {
        min_nodes: 1,
        ..CoordinatorConfig::new(1)
    };
    let mut state = State::new(config, ExecutorConfig::default());
    let _node = open(&mut state, 1, 16);
    check_in(&mut state, 1, None);
    let mut client = open(&mut state, 99, 16);
    send(
        &mut state,
        99,
        ClientFrame::Admin(AdminRequest::Remove(NodeRef::Id(NodeId(1)))),
    );
    assert!(matches!(
        admin_answers(&mut client).as_slice(),
        [AdminAnswer::Refused(r)] if r.contains("would have no members left")
    ));
}

#[test]
fn suspicions_of_a_majority_replace_a_member_with_the_standby() {
    let config = CoordinatorConfig {
        min_nodes: 6,
        ..CoordinatorConfig::new(3)
    };
    let mut state = State::new(config.clone(), ExecutorConfig::default());
    let mut queues: Vec<(u64, Receiver<ServerFrame>)> =
        (1..=7).map(|n| (n, open(&mut state, n, 64))).collect();
    for n in 1..=7 {
        check_in(&mut state, n, None);
    }
    serve_directives(&mut state, &mut queues);
    state.handle(Event::Closed { conn: ConnId(2) });
    queues.retain(|(n, _)| *n != 2);
    for reporter in [1, 3, 4, 5] {
        let frame = ClientFrame::Suspicion {
            node: NodeId(2),
            suspected: true,
        };
        send(&mut state, reporter, frame);
    }
    for _ in 0..config.grace_ticks {
        state.tick();
    }
    assert_eq!(state.core.status().in_flight, Some(Epoch(3)));
    let frames = serve_directives(&mut state, &mut queues);
    let map = state.core.current().clone();
    assert_eq!(map.epoch, Epoch(3));
    assert_eq!(
        map.members_of(kv_ports::ids::GroupId(0)),
        &[NodeId(1), NodeId(3), NodeId(7)]
    );
    assert!(frames[&7].contains(&ServerFrame::Map(Some(map))));
}

#[test]
fn the_node_hosting_an_embedded_coordinator_cannot_be_removed() {
    let host = info(1).link;
    let mut state = State::new(config(), ExecutorConfig::default()).hosted_by(host);
    let mut queues: Vec<(u64, Receiver<ServerFrame>)> =
        (1..=4).map(|n| (n, open(&mut state, n, 64))).collect();
    for n in 1..=4 {
        check_in(&mut state, n, None);
    }
    serve_directives(&mut state, &mut queues);
    let mut client = open(&mut state, 99, 16);
    for node in [NodeRef::Addr(host), NodeRef::Id(NodeId(1))] {
        send(
            &mut state,
            99,
            ClientFrame::Admin(AdminRequest::Remove(node)),
        );
        assert!(matches!(
            admin_answers(&mut client).as_slice(),
            [AdminAnswer::Refused(r)] if r.contains("runs the coordinator")
        ));
    }
    assert_eq!(state.core.current().epoch, Epoch(1), "nothing changed");
}

/// What node `n` of `map` reports: its group as the map has it, without `frozen` (which it
/// froze at `epoch`).
fn group_report(
    map: &SlotMap,
    n: u64,
    frozen: &[kv_ports::membership::Slot],
    epoch: Epoch,
) -> ClientFrame {
    use crate::native::{GroupReport, SlotRecord};
    let group = map.group_of_node(NodeId(n)).unwrap();
    let g = map.group(group).unwrap();
    let owned = map.slots_of(group);
    let mine: Vec<_> = frozen
        .iter()
        .filter(|s| owned.contains(s))
        .copied()
        .collect();
    ClientFrame::Groups(vec![GroupReport {
        group,
        config: g.config,
        active: true,
        members: g.members.clone(),
        leading: g.members[0] == NodeId(n),
        applied: 5,
        owned: owned.into_iter().filter(|s| !mine.contains(s)).collect(),
        moves: mine
            .iter()
            .map(|&slot| SlotRecord {
                slot,
                installed: false,
                epoch,
            })
            .collect(),
    }])
}

#[test]
fn a_restarted_coordinator_finishes_a_cut_short_move_before_planning() {
    let mut old = State::new(config(), ExecutorConfig::default());
    let _queues = formed(&mut old);
    let map = old.core.current().clone();
    // The old coordinator froze two slots of group 0 at epoch 2 and died before installing.
    let frozen = map.slots_of(kv_ports::ids::GroupId(0))[..2].to_vec();

    let mut state = State::new(config(), ExecutorConfig::default());
    let mut queues: Vec<(u64, Receiver<ServerFrame>)> =
        (1..=5).map(|n| (n, open(&mut state, n, 64))).collect();
    for n in 1..=4 {
        check_in(&mut state, n, Some(map.clone()));
    }
    // A newcomer meanwhile: nothing is planned for it yet.
    check_in(&mut state, 5, None);
    let mut asked = 0;
    for (n, q) in queues.iter_mut() {
        for f in drain(q) {
            assert!(
                !matches!(f, ServerFrame::Directive { .. }),
                "nothing planned while reconciling: {f:?}"
            );
            if f == ServerFrame::QueryGroups && *n <= 4 {
                asked += 1;
            }
        }
    }
    assert_eq!(asked, 4, "every node of the map is asked");
    for n in 1..=4 {
        send(&mut state, n, group_report(&map, n, &frozen, Epoch(2)));
    }
    state.tick();
    // The executor freezes them again at epoch 2 and installs them at group 1, at epoch 2.
    let mut seen = Vec::new();
    for (n, q) in queues.iter_mut() {
        for f in drain(q) {
            if let ServerFrame::Directive { id, directive, .. } = f {
                seen.push(directive.clone());
                let outcome = match directive {
                    Directive::Freeze { .. } => {
                        DirectiveOutcome::Frozen(kv_ports::kv::SlotData::default())
                    }
                    _ => DirectiveOutcome::Done,
                };
                send(&mut state, *n, ClientFrame::DirectiveDone { id, outcome });
            }
        }
    }
    assert!(
        matches!(
            &seen[..2],
            [
                Directive::Freeze { slots: f, epoch: Epoch(2), .. },
                Directive::Install { group: kv_ports::ids::GroupId(1), slots: i, epoch: Epoch(2), .. },
            ] if *f == frozen && *i == frozen
        ),
        "{seen:?}"
    );
    let rest = serve_directives(&mut state, &mut queues);
    let published: Vec<&SlotMap> = rest[&1]
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Map(Some(m)) => Some(m),
            _ => None,
        })
        .collect();
    // The reconciled map, above the freeze's epoch; then the newcomer is planned as usual
    // (a standby) from it.
    let epochs: Vec<Epoch> = published.iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, [Epoch(3), Epoch(4)]);
    for s in &frozen {
        assert_eq!(published[0].slots[s.index()], kv_ports::ids::GroupId(1));
    }
    assert!(published[0].standbys.is_empty());
    assert_eq!(published[1].standbys, [NodeId(5)]);
    assert_eq!(state.core.current(), published[1]);
}

#[test]
fn a_restarted_coordinator_whose_groups_agree_keeps_the_adopted_map() {
    let mut old = State::new(config(), ExecutorConfig::default());
    let _queues = formed(&mut old);
    let map = old.core.current().clone();
    let mut state = State::new(config(), ExecutorConfig::default());
    let mut queues: Vec<_> = (1..=4).map(|n| open(&mut state, n, 16)).collect();
    for n in 1..=4 {
        check_in(&mut state, n, Some(map.clone()));
    }
    for n in 1..=4 {
        send(&mut state, n, group_report(&map, n, &[], Epoch(0)));
    }
    state.tick();
    assert_eq!(state.core.current(), &map);
    assert!(!state.core.is_held(), "planning resumed");
    for q in &mut queues {
        assert_eq!(maps(q), [Epoch(1)]);
    }
}
