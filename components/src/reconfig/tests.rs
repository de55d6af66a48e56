//! Table-driven tests of the configuration state machine, over an instant in-memory network.

use std::collections::BTreeMap;

use bytes::Bytes;
use kv_ports::ids::{ClientId, NodeId};
use kv_ports::kv::{KvCommand, KvOp, KvResult, RequestId};
use uuid::Uuid;

use super::*;
use crate::ble::BleMsg;
use crate::replica::{KvError, MemberMsg, Reply, Snapshot};
use crate::sequence_paxos::StopSign;

pub(super) fn n(i: u64) -> NodeId {
    NodeId(i)
}

pub(super) fn ids(v: &[u64]) -> Vec<NodeId> {
    v.iter().copied().map(NodeId).collect()
}

pub(super) fn put(client: u128, seq: u64, key: &'static str, value: &'static str) -> KvCommand {
    KvCommand {
        id: RequestId {
            client: ClientId(Uuid::from_u128(client)),
            seq,
        },
        op: KvOp::Put {
            key: Bytes::from_static(key.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
        },
    }
}

pub(super) fn stopsign(next: u32, members: &[u64]) -> StopSign {
    StopSign {
        next_config: next,
        members: ids(members),
        metadata: vec![],
    }
}

pub(super) type DropFn = Box<dyn Fn(NodeId, NodeId, &GroupMsg) -> bool>;

/// Nodes over an instant, lossless network (unless `drop` says otherwise).
pub(super) struct Cluster {
    pub(super) nodes: BTreeMap<NodeId, GroupNode>,
    pub(super) replies: Vec<(NodeId, Reply)>,
    pub(super) events: Vec<(NodeId, ConfigEvent)>,
    pub(super) drop: DropFn,
    pub(super) out: GroupOutput,
}

impl Cluster {
    pub(super) fn new(config: u32, members: &[u64]) -> Self {
        let members = ids(members);
        let nodes = members
            .iter()
            .map(|&p| {
                (
                    p,
                    GroupNode::new(GroupNodeConfig::new(p), config, members.clone()),
                )
            })
            .collect();
        Cluster {
            nodes,
            replies: Vec::new(),
            events: Vec::new(),
            drop: Box::new(|_, _, _| false),
            out: GroupOutput::default(),
        }
    }

    pub(super) fn join(&mut self, p: u64, after: u32, next: u32, sources: &[u64]) {
        let node = GroupNode::joining(GroupNodeConfig::new(n(p)), after, next, ids(sources));
        self.nodes.insert(n(p), node);
    }

    pub(super) fn node(&self, p: u64) -> &GroupNode {
        &self.nodes[&n(p)]
    }

    pub(super) fn step(&mut self) {
        for node in self.nodes.values_mut() {
            node.tick();
        }
        let mut queue = Vec::new();
        for (&p, node) in self.nodes.iter_mut() {
            node.drain_into(&mut self.out);
            queue.extend(self.out.messages.drain(..).map(|(to, m)| (p, to, m)));
            self.replies
                .extend(self.out.replies.drain(..).map(|r| (p, r)));
            self.events
                .extend(self.out.events.drain(..).map(|e| (p, e)));
            self.out.applied.clear();
        }
        for (from, to, m) in queue {
            if (self.drop)(from, to, &m) {
                continue;
            }
            if let Some(node) = self.nodes.get_mut(&to) {
                node.handle(from, m);
            }
        }
    }

    pub(super) fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.step();
        }
    }

    pub(super) fn leader(&self) -> Option<NodeId> {
        let is_leader = |g: &GroupNode| g.member().is_some_and(|m| m.sp().is_accepting_leader());
        self.nodes
            .iter()
            .find(|(_, g)| is_leader(g))
            .map(|(p, _)| *p)
    }

    /// Submit at the leader and run until answered.
    pub(super) fn write(&mut self, cmd: KvCommand) -> Result<KvResult, KvError> {
        let leader = self.leader().expect("a leader");
        let id = cmd.id;
        if let Some(a) = self.nodes.get_mut(&leader).unwrap().client_request(cmd) {
            return a;
        }
        for _ in 0..200 {
            self.step();
            if let Some(i) = self.replies.iter().position(|(_, (r, _))| *r == id) {
                return self.replies.remove(i).1 .1;
            }
        }
        panic!("no answer for {id:?}");
    }

    pub(super) fn store(&self, p: u64) -> Vec<(Bytes, Bytes)> {
        let m = self.node(p).member().expect("active");
        let pairs = m.replica().store().pairs();
        pairs.map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(super) fn sealed_hashes(&self, config: u32) -> Vec<(NodeId, u64, bool)> {
        self.events
            .iter()
            .filter_map(|(p, e)| match e {
                ConfigEvent::Sealed {
                    config: c,
                    hash,
                    own,
                    ..
                } if *c == config => Some((*p, *hash, *own)),
                _ => None,
            })
            .collect()
    }
}

/// A three-node group with a leader and two keys written.
pub(super) fn loaded_group() -> Cluster {
    let mut c = Cluster::new(0, &[1, 2, 3]);
    c.run(60);
    assert!(c.leader().is_some(), "a leader emerges");
    assert_eq!(c.write(put(1, 1, "a", "1")), Ok(KvResult::Written));
    assert_eq!(c.write(put(2, 1, "b", "2")), Ok(KvResult::Written));
    c
}

struct ChangeCase {
    name: &'static str,
    next: &'static [u64],
    /// Expected stage of each node at the end (new nodes included).
    expect: &'static [(u64, StageKind)],
}

/// StopSign decided → every member of the next configuration starts it from the state at the
/// StopSign (own log or snapshot), leavers serve and retire, and the group keeps serving with
/// the client sessions carried over.
#[test]
fn stopsign_decided_starts_the_next_configuration_from_the_snapshot() {
    use StageKind::*;
    let cases = [
        ChangeCase {
            name: "replace one",
            next: &[1, 2, 4],
            expect: &[(1, Active), (2, Active), (3, Retired), (4, Active)],
        },
        ChangeCase {
            name: "add one",
            next: &[1, 2, 3, 4],
            expect: &[(1, Active), (2, Active), (3, Active), (4, Active)],
        },
        ChangeCase {
            name: "remove one",
            next: &[1, 2],
            expect: &[(1, Active), (2, Active), (3, Retired)],
        },
        ChangeCase {
            name: "same members",
            next: &[1, 2, 3],
            expect: &[(1, Active), (2, Active), (3, Active)],
        },
        ChangeCase {
            name: "replace all",
            next: &[4, 5, 6],
            expect: &[
                (1, Retired),
                (2, Retired),
                (3, Retired),
                (4, Active),
                (5, Active),
                (6, Active),
            ],
        },
    ];
    for case in cases {
        let mut c = loaded_group();
        c.run(5);
        let before = c.store(1);
        let leader = c.leader().expect("leader");
        assert_eq!(c.store(leader.0), before);
        for &p in case.next.iter().filter(|&&p| p > 3) {
            let mut sources = vec![1, 2, 3];
            sources.extend_from_slice(case.next);
            c.join(p, 0, 1, &sources);
        }
        let ss = stopsign(1, case.next);
        c.nodes
            .get_mut(&leader)
            .unwrap()
            .change_members(0, ss.clone())
            .expect("the leader takes the StopSign");
        c.run(400);
        for &(p, stage) in case.expect {
            assert_eq!(c.node(p).stage(), stage, "{}: stage of n{p}", case.name);
            if stage == Active {
                assert_eq!(c.node(p).config(), Some(1), "{}: n{p} runs c1", case.name);
                assert_eq!(
                    c.store(p),
                    before,
                    "{}: n{p} starts from c0's state",
                    case.name
                );
                let rec = c.node(p).sealed().expect("knows c0's StopSign");
                assert_eq!((rec.config, &rec.stopsign), (0, &ss), "{}", case.name);
                assert!(
                    !rec.has_snapshot(),
                    "{}: n{p} heard every member in c1, so it dropped c0's state",
                    case.name
                );
            }
        }
        // Every node that holds c0's final state holds the same one.
        let hashes = c.sealed_hashes(0);
        assert!(hashes.windows(2).all(|w| w[0].1 == w[1].1), "{}", case.name);
        let old_members = hashes.iter().filter(|(p, _, _)| p.0 <= 3).count();
        assert_eq!(old_members, 3, "{}: every old member sealed c0", case.name);
        for (p, _, own) in &hashes {
            if p.0 > 3 {
                assert!(!own, "{}: new member {p} got a snapshot", case.name);
            }
        }
        // The next configuration serves; an old command's retry gets its original answer.
        c.run(60);
        assert_eq!(
            c.write(put(3, 1, "c", "3")),
            Ok(KvResult::Written),
            "{}",
            case.name
        );
        let retry = put(1, 1, "a", "1");
        let leader = c.leader().expect("a leader in c1");
        let answer = c.nodes.get_mut(&leader).unwrap().client_request(retry);
        assert_eq!(answer, Some(Ok(KvResult::Written)), "{}", case.name);
        assert_eq!(
            c.node(leader.0).member().unwrap().replica().store().len(),
            3
        );
    }
}

/// The joining node: no vote and no protocol traffic before the snapshot; what each message
/// does to it.
#[test]
fn a_joining_node_installs_the_snapshot_before_it_votes() {
    let mut src = loaded_group();
    let leader = src.leader().unwrap();
    src.nodes
        .get_mut(&leader)
        .unwrap()
        .change_members(0, stopsign(1, &[1, 2, 4]))
        .unwrap();
    src.run(20);
    // A snapshot of c0's final state, as node 1 would send it.
    let snap_msg = {
        let holder = src.nodes.get_mut(&n(1)).unwrap();
        holder.handle(
            n(4),
            GroupMsg::SnapshotRequest {
                config: 0,
                resume: None,
            },
        );
        let mut out = GroupOutput::default();
        holder.drain_into(&mut out);
        out.messages
            .into_iter()
            .find(|(to, m)| *to == n(4) && matches!(m, GroupMsg::Snapshot { .. }))
            .expect("node 1 serves c0's snapshot")
            .1
    };
    let heartbeat = |config| GroupMsg::Member {
        config,
        msg: MemberMsg::Ble(BleMsg::HeartbeatRequest { round: 3 }),
    };
    struct Case {
        name: &'static str,
        msg: GroupMsg,
        stage: StageKind,
        /// Kinds of the messages it sends in answer.
        sends: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "c1 traffic: ask its sender",
            msg: heartbeat(1),
            stage: StageKind::Joining,
            sends: &["snapshot-request"],
        },
        Case {
            name: "c0 traffic: nothing to say yet",
            msg: heartbeat(0),
            stage: StageKind::Joining,
            sends: &[],
        },
        Case {
            name: "StopSign without us: leave",
            msg: GroupMsg::Sealed {
                config: 0,
                stopsign: stopsign(1, &[1, 2, 3]),
            },
            stage: StageKind::Leaving,
            sends: &[],
        },
        Case {
            name: "the snapshot: start c1",
            msg: snap_msg.clone(),
            stage: StageKind::Active,
            sends: &[],
        },
        Case {
            name: "a corrupt snapshot is ignored",
            msg: GroupMsg::Snapshot {
                id: SnapshotId {
                    config: 0,
                    len: 3,
                    hash: fnv1a(&[0xff, 0xff, 0xff]),
                },
                stopsign: stopsign(1, &[1, 2, 4]),
                offset: 0,
                bytes: Bytes::from_static(&[0xff, 0xff, 0xff]),
            },
            stage: StageKind::Joining,
            sends: &[],
        },
    ];
    for case in cases {
        let mut j = GroupNode::joining(GroupNodeConfig::new(n(4)), 0, 1, ids(&[1, 2, 3]));
        assert_eq!(
            j.client_request(put(7, 1, "x", "y")),
            Some(Err(KvError::NotLeader { hint: None }))
        );
        let mut out = GroupOutput::default();
        j.drain_into(&mut out);
        assert!(
            out.messages.is_empty(),
            "{}: silent before its first tick",
            case.name
        );
        j.handle(n(1), case.msg);
        j.drain_into(&mut out);
        let kinds: Vec<&str> = out.messages.iter().map(|(_, m)| m.kind()).collect();
        assert_eq!(kinds, case.sends, "{}", case.name);
        assert_eq!(j.stage(), case.stage, "{}", case.name);
        assert_eq!(
            j.member().is_some(),
            case.stage == StageKind::Active,
            "{}",
            case.name
        );
        // Ticking: a joining node only ever asks for snapshots; an active one votes.
        out.clear();
        for _ in 0..30 {
            j.tick();
        }
        j.drain_into(&mut out);
        let protocol = out
            .messages
            .iter()
            .filter(|(_, m)| matches!(m, GroupMsg::Member { .. }))
            .count();
        match case.stage {
            StageKind::Joining => {
                assert_eq!(protocol, 0, "{}: no vote before the snapshot", case.name);
                assert!(out.messages.iter().all(
                    |(to, m)| m.kind() == "snapshot-request" && [n(1), n(2), n(3)].contains(to)
                ));
            }
            StageKind::Active => {
                assert!(protocol > 0, "{}: runs c1", case.name);
                assert_eq!(j.config(), Some(1));
                assert_eq!(
                    j.member().unwrap().replica().store().get(b"a"),
                    Some(&Bytes::from_static(b"1"))
                );
            }
            _ => assert!(out.messages.is_empty(), "{}", case.name),
        }
    }
}

/// What a node running c1 does with messages of other configurations.
#[test]
fn messages_of_other_configurations_at_a_node_of_the_next_one() {
    let mut c = loaded_group();
    let leader = c.leader().unwrap();
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .change_members(0, stopsign(1, &[1, 2, 4]))
        .unwrap();
    c.run(40);
    // Node 4 never shows up, so node 1 keeps c0's final state to serve it.
    assert_eq!(c.node(1).config(), Some(1));
    assert!(c.node(1).sealed().unwrap().has_snapshot());
    let heartbeat = |config| GroupMsg::Member {
        config,
        msg: MemberMsg::Ble(BleMsg::HeartbeatRequest { round: 1 }),
    };
    struct Case {
        name: &'static str,
        msgs: Vec<GroupMsg>,
        sends: &'static [&'static str],
        stage: StageKind,
        config: Option<u32>,
    }
    let cases = [
        Case {
            name: "c0 traffic: told it is sealed",
            msgs: vec![heartbeat(0)],
            sends: &["sealed"],
            stage: StageKind::Active,
            config: Some(1),
        },
        Case {
            name: "notices are rate-limited",
            msgs: vec![heartbeat(0), heartbeat(0), heartbeat(0)],
            sends: &["sealed"],
            stage: StageKind::Active,
            config: Some(1),
        },
        Case {
            name: "a request for c0's state is served",
            msgs: vec![GroupMsg::SnapshotRequest {
                config: 0,
                resume: None,
            }],
            sends: &["snapshot"],
            stage: StageKind::Active,
            config: Some(1),
        },
        Case {
            name: "a request for c1's state (not sealed) is ignored",
            msgs: vec![GroupMsg::SnapshotRequest {
                config: 1,
                resume: None,
            }],
            sends: &[],
            stage: StageKind::Active,
            config: Some(1),
        },
        Case {
            name: "a stale notice (a leaving node's probe): we run c1",
            msgs: vec![GroupMsg::Sealed {
                config: 0,
                stopsign: stopsign(1, &[1, 2, 3]),
            }],
            sends: &["running"],
            stage: StageKind::Active,
            config: Some(1),
        },
        Case {
            name: "c2 traffic: c1 is over; keep running c1, ask the sender for its state",
            msgs: vec![heartbeat(2)],
            sends: &["snapshot-request"],
            stage: StageKind::Active,
            config: Some(1),
        },
        Case {
            name: "c1 sealed without us: the same (the state is fetched before leaving)",
            msgs: vec![GroupMsg::Sealed {
                config: 1,
                stopsign: stopsign(2, &[2, 3, 4]),
            }],
            sends: &["snapshot-request"],
            stage: StageKind::Active,
            config: Some(1),
        },
    ];
    for case in cases {
        let mut node = c.node(1).clone();
        let mut out = GroupOutput::default();
        node.drain_into(&mut out);
        out.clear();
        for m in case.msgs {
            node.handle(n(9), m);
        }
        node.drain_into(&mut out);
        let kinds: Vec<&str> = out
            .messages
            .iter()
            .filter(|(to, _)| *to == n(9))
            .map(|(_, m)| m.kind())
            .collect();
        assert_eq!(kinds, case.sends, "{}", case.name);
        assert_eq!(node.stage(), case.stage, "{}", case.name);
        assert_eq!(node.config(), case.config, "{}", case.name);
        assert!(node.epoch() >= 1, "{}: epochs only grow", case.name);
        let catching_up = case.sends.contains(&"snapshot-request");
        assert_eq!(node.is_catching_up(), catching_up, "{}", case.name);
        if catching_up {
            let answer = node.client_request(put(6, 1, "x", "y"));
            assert_eq!(
                answer,
                Some(Err(KvError::Sealed { next_config: 2 })),
                "{}",
                case.name
            );
        }
    }
}

/// A node that is not in the next configuration serves snapshots, redirects clients and probes
/// the next configuration's members until a majority of them runs it; then, after a grace
/// period without requests, it retires and goes silent.
#[test]
fn a_leaving_node_serves_snapshots_then_retires() {
    let mut c = loaded_group();
    let leader = c.leader().unwrap();
    // Node 4 never shows up: nodes 1 and 2 alone run c1. Their confirmations are lost here
    // (the cases below play them).
    c.drop = Box::new(|_, _, m| matches!(m, GroupMsg::Running { .. }));
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .change_members(0, stopsign(1, &[1, 2, 4]))
        .unwrap();
    c.run(30);
    assert!(c.node(1).config() == Some(1) && c.node(2).config() == Some(1));
    let node3 = c.node(3).clone();
    assert_eq!(node3.stage(), StageKind::Leaving);
    let grace = GroupNodeConfig::new(n(3)).retire_grace_ticks;
    struct Case {
        name: &'static str,
        /// Members of c1 that answer its probes with `Running`.
        running: &'static [u64],
        /// Ticks at which a snapshot request arrives.
        requests_at: Vec<u64>,
        /// Ticks run in all.
        ticks: u64,
        retired: bool,
    }
    let cases = [
        Case {
            name: "nobody confirmed: it may hold the last copy, so it stays",
            running: &[],
            requests_at: vec![],
            ticks: 3 * grace,
            retired: false,
        },
        Case {
            name: "a minority confirmed: stays",
            running: &[1],
            requests_at: vec![],
            ticks: 3 * grace,
            retired: false,
        },
        Case {
            name: "a later configuration runs: superseded, retires",
            running: &[],
            requests_at: vec![],
            ticks: grace + 5,
            retired: true,
        },
        Case {
            name: "a majority confirmed, idle: retires after the grace period",
            running: &[1, 2],
            requests_at: vec![],
            ticks: grace + 5,
            retired: true,
        },
        Case {
            name: "requests prolong the grace period",
            running: &[1, 2],
            requests_at: vec![grace / 2],
            ticks: grace + 5,
            retired: false,
        },
        Case {
            name: "but not for ever",
            running: &[1, 2],
            requests_at: vec![grace / 2],
            ticks: 2 * grace,
            retired: true,
        },
    ];
    for case in cases {
        let mut node = node3.clone();
        let mut out = GroupOutput::default();
        node.drain_into(&mut out);
        out.clear();
        assert_eq!(
            node.client_request(put(5, 1, "k", "v")),
            Some(Err(KvError::Sealed { next_config: 1 })),
            "{}",
            case.name
        );
        let mut served = 0;
        let mut probed = BTreeMap::<NodeId, usize>::new();
        for t in 0..case.ticks {
            if case.requests_at.contains(&t) {
                node.handle(
                    n(4),
                    GroupMsg::SnapshotRequest {
                        config: 0,
                        resume: None,
                    },
                );
            }
            node.tick();
            node.drain_into(&mut out);
            for (to, m) in out.messages.drain(..) {
                match m {
                    GroupMsg::Snapshot { .. } => served += 1,
                    GroupMsg::Sealed { config: 0, .. } => {
                        *probed.entry(to).or_default() += 1;
                        if case.running.contains(&to.0) {
                            node.handle(to, GroupMsg::Running { config: 1 });
                        }
                        if case.name.contains("superseded") && to == n(2) {
                            node.handle(to, GroupMsg::Running { config: 2 });
                        }
                    }
                    other => panic!("{}: unexpected {other:?}", case.name),
                }
            }
        }
        assert_eq!(served, case.requests_at.len(), "{}", case.name);
        assert_eq!(node.is_retired(), case.retired, "{}", case.name);
        assert_eq!(
            node.sealed().unwrap().has_snapshot(),
            !case.retired,
            "{}: the encoded state goes when the node retires",
            case.name
        );
        // Every member of c1 is probed until a majority confirmed, then none.
        for m in [1, 2, 4] {
            let times = probed.get(&n(m)).copied().unwrap_or(0);
            let safe = case.running.len() >= 2 || case.name.contains("superseded");
            if !safe {
                assert!(times > 1, "{}: n{m} probed again", case.name);
            } else {
                assert!(times <= 2, "{}: n{m} probed {times} times", case.name);
            }
        }
        let retired_events = out
            .events
            .iter()
            .filter(|e| matches!(e, ConfigEvent::Retired))
            .count();
        assert_eq!(retired_events, usize::from(case.retired), "{}", case.name);
        if case.retired {
            node.handle(
                n(4),
                GroupMsg::SnapshotRequest {
                    config: 0,
                    resume: None,
                },
            );
            node.drain_into(&mut out);
            assert!(
                out.messages.is_empty(),
                "{}: a retired node is silent",
                case.name
            );
        }
    }
}

/// A member that never hears the StopSign decided (every Decide and AcceptDecide to it is
/// lost) still starts the next configuration: the leader, now in c1, answers its c0 traffic
/// with a `Sealed` notice and a snapshot.
#[test]
fn a_lagging_member_catches_up_by_notice_and_snapshot() {
    let mut c = loaded_group();
    let leader = c.leader().unwrap();
    let lagger = [1, 2, 3].into_iter().map(n).find(|p| *p != leader).unwrap();
    c.drop = Box::new(move |_, to, m| {
        to == lagger
            && matches!(
                m,
                GroupMsg::Member {
                    config: 0,
                    msg: MemberMsg::Sp(_)
                }
            )
    });
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .change_members(0, stopsign(1, &[1, 2, 3]))
        .unwrap();
    c.run(200);
    assert_eq!(c.node(lagger.0).config(), Some(1));
    let hashes = c.sealed_hashes(0);
    assert_eq!(hashes.len(), 3);
    assert!(hashes.windows(2).all(|w| w[0].1 == w[1].1));
    let by_snapshot: Vec<NodeId> = hashes.iter().filter(|h| !h.2).map(|h| h.0).collect();
    assert_eq!(by_snapshot, vec![lagger]);
    assert!(c
        .events
        .iter()
        .any(|(p, e)| *p == lagger && matches!(e, ConfigEvent::CatchingUp { config: 0, next: 1 })));
    assert_eq!(c.store(lagger.0), c.store(leader.0));
}

/// The leader decides the StopSign, moves on and crashes before anyone else learns the
/// decision: the only copy of the final state is gone. The followers learnt that c0 is sealed
/// (from the leader's notices), but they keep running c0, so between them (a majority of c0)
/// they elect a new leader who decides the StopSign again, and both start c1 from their own
/// logs, in the same state the leader had.
#[test]
fn members_still_in_a_sealed_configuration_decide_its_stopsign_again() {
    use crate::sequence_paxos::PaxosMsg;
    let mut c = loaded_group();
    let leader = c.leader().unwrap();
    // Every Decide of c0 and every snapshot from the leader is lost: followers accept the
    // StopSign, never learn that it is decided, and cannot fetch the state.
    c.drop = Box::new(move |from, _, m| {
        from == leader
            && matches!(
                m,
                GroupMsg::Snapshot { .. }
                    | GroupMsg::Member {
                        config: 0,
                        msg: MemberMsg::Sp(PaxosMsg::Decide { .. })
                    }
            )
    });
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .change_members(0, stopsign(1, &[1, 2, 3]))
        .unwrap();
    c.run(30);
    assert_eq!(c.node(leader.0).config(), Some(1));
    let followers: Vec<NodeId> = [1, 2, 3]
        .into_iter()
        .map(n)
        .filter(|p| *p != leader)
        .collect();
    for f in &followers {
        assert!(
            c.node(f.0).is_catching_up(),
            "{f} knows c0 is sealed: {}",
            c.node(f.0).describe()
        );
        assert_eq!(c.node(f.0).config(), Some(0));
    }
    let leader_hash = c.sealed_hashes(0)[0].1;
    // The leader crashes.
    c.nodes.remove(&leader);
    c.run(300);
    for f in &followers {
        assert_eq!(c.node(f.0).config(), Some(1), "{f} runs c1");
    }
    let hashes = c.sealed_hashes(0);
    assert_eq!(hashes.len(), 3);
    assert!(hashes.iter().all(|&(_, h, own)| h == leader_hash && own));
    c.run(60);
    assert_eq!(c.write(put(4, 1, "z", "9")), Ok(KvResult::Written));
}

/// A member of c0 that is not in c1 and never learns the StopSign's decision through c0 (nor
/// gets a snapshot): it keeps running c0 while the state might have to be decided again there,
/// and steps aside once a majority of c1 answers its probes with `Running`.
#[test]
fn a_lagging_member_that_is_not_in_the_next_configuration_steps_aside() {
    let mut c = loaded_group();
    let leader = c.leader().unwrap();
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|p| *p != leader.0).collect();
    let (lagger, stayer) = (n(others[0]), others[1]);
    c.drop = Box::new(move |_, to, m| {
        to == lagger
            && matches!(
                m,
                GroupMsg::Snapshot { .. }
                    | GroupMsg::Member {
                        config: 0,
                        msg: MemberMsg::Sp(_)
                    }
            )
    });
    c.join(4, 0, 1, &[1, 2, 3]);
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .change_members(0, stopsign(1, &[leader.0, stayer, 4]))
        .unwrap();
    let mut stages = Vec::new();
    for _ in 0..400 {
        c.step();
        let st = c.node(lagger.0).stage();
        if stages.last() != Some(&st) {
            stages.push(st);
        }
    }
    assert_eq!(
        stages,
        vec![StageKind::Active, StageKind::Leaving, StageKind::Retired]
    );
    let seen: Vec<&ConfigEvent> = c
        .events
        .iter()
        .filter(|(p, _)| *p == lagger)
        .map(|(_, e)| e)
        .collect();
    assert!(
        matches!(
            seen[..],
            [
                ConfigEvent::CatchingUp { config: 0, next: 1 },
                ConfigEvent::Leaving { config: 0 },
                ConfigEvent::Retired
            ]
        ),
        "{seen:?}"
    );
    for p in [leader.0, stayer, 4] {
        assert_eq!(c.node(p).config(), Some(1));
    }
}

/// Requests parked at a node whose configuration ends are answered from the final state:
/// the original result if the command took effect before the StopSign, `Sealed` if it did not.
#[test]
fn parked_requests_are_answered_from_the_final_state() {
    let mut c = loaded_group();
    let leader = c.leader().unwrap();
    let follower = [1, 2, 3].into_iter().map(n).find(|p| *p != leader).unwrap();
    // The follower parks two requests; only the first reaches the leader.
    let decided = put(8, 1, "d", "1");
    let lost = put(9, 1, "e", "1");
    let g = c.nodes.get_mut(&follower).unwrap();
    assert_eq!(g.client_request(decided.clone()), None);
    let mut out = GroupOutput::default();
    g.drain_into(&mut out);
    assert_eq!(g.client_request(lost.clone()), None);
    let forward: Vec<_> = out.messages.drain(..).collect();
    g.drain_into(&mut out); // the second forward: dropped
    out.clear();
    // The follower is cut off from here on; the others seal c0 with the first request in it.
    let f = follower;
    c.drop = Box::new(move |from, to, _| from == f || to == f);
    let l = c.nodes.get_mut(&leader).unwrap();
    for (to, m) in forward {
        if to == leader {
            l.handle(follower, m);
        }
    }
    l.change_members(0, stopsign(1, &[1, 2, 3])).unwrap();
    c.run(40);
    let holder = [1, 2, 3]
        .into_iter()
        .map(n)
        .find(|p| *p != follower)
        .unwrap();
    let snap = c.nodes.get_mut(&holder).unwrap();
    snap.handle(
        follower,
        GroupMsg::SnapshotRequest {
            config: 0,
            resume: None,
        },
    );
    let mut out2 = GroupOutput::default();
    snap.drain_into(&mut out2);
    let msg = out2
        .messages
        .into_iter()
        .find(|(to, m)| *to == follower && m.kind() == "snapshot")
        .unwrap()
        .1;
    let g = c.nodes.get_mut(&follower).unwrap();
    assert!(g.member().unwrap().replica().store().get(b"d").is_none());
    g.handle(holder, msg);
    g.drain_into(&mut out);
    let mut replies = out.replies.clone();
    replies.sort_by_key(|(id, _)| *id);
    assert_eq!(
        replies,
        vec![
            (decided.id, Ok(KvResult::Written)),
            (lost.id, Err(KvError::Sealed { next_config: 1 })),
        ]
    );
    assert_eq!(g.config(), Some(1));
}

/// `change_members` checks what it is asked.
#[test]
fn change_members_refuses_what_it_cannot_do() {
    let c = loaded_group();
    let leader = c.leader().unwrap();
    let joining = GroupNode::joining(GroupNodeConfig::new(n(4)), 0, 1, ids(&[1]));
    type Case = (
        &'static str,
        GroupNode,
        u32,
        StopSign,
        Result<(), ChangeError>,
    );
    let cases: Vec<Case> = vec![
        (
            "not active",
            joining,
            0,
            stopsign(1, &[1, 2, 4]),
            Err(ChangeError::NotActive),
        ),
        (
            "stale from_config",
            c.node(leader.0).clone(),
            3,
            stopsign(4, &[1, 2]),
            Err(ChangeError::WrongConfig {
                asked: 3,
                current: 0,
            }),
        ),
        (
            "next not later",
            c.node(leader.0).clone(),
            0,
            stopsign(0, &[1, 2]),
            Err(ChangeError::BadNext { current: 0 }),
        ),
        (
            "no members",
            c.node(leader.0).clone(),
            0,
            stopsign(1, &[]),
            Err(ChangeError::BadNext { current: 0 }),
        ),
        (
            "the leader takes it",
            c.node(leader.0).clone(),
            0,
            stopsign(1, &[1, 2, 4]),
            Ok(()),
        ),
    ];
    for (name, mut node, from, ss, want) in cases {
        assert_eq!(node.change_members(from, ss.clone()), want, "{name}");
        if want.is_ok() {
            let again = node.change_members(from, ss);
            assert!(
                matches!(again, Err(ChangeError::Refused(_))),
                "{name}: sealed now"
            );
        }
    }
}

#[test]
fn snapshot_bytes_decode_and_hash_stably() {
    let c = loaded_group();
    let snap = c.node(1).member().unwrap().replica().snapshot();
    let bytes = postcard::to_allocvec(&snap).unwrap();
    let back: Snapshot = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, snap);
    let again = postcard::to_allocvec(&c.node(2).member().unwrap().replica().snapshot()).unwrap();
    assert_eq!(fnv1a(&bytes), fnv1a(&again), "equal states encode equally");
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
}

/// The first of "k0", "k1", … whose slot is `s`.
fn key_in(s: kv_ports::membership::Slot) -> Bytes {
    let mut keys = (0..).map(|i| Bytes::from(format!("k{i}")));
    keys.find(|k| kv_ports::membership::slot_of(k) == s)
        .expect("some key")
}

fn op(seq: u64, op: KvOp) -> KvCommand {
    let client = ClientId(Uuid::from_u128(7));
    KvCommand {
        id: RequestId { client, seq },
        op,
    }
}

/// A group started with some slots serves only them; a freeze decided through its log stops
/// a slot; the slot set travels in the snapshot to a new member, which then takes part in an
/// install.
#[test]
fn slot_ownership_goes_through_the_log_and_travels_in_snapshots() {
    use kv_ports::membership::{Epoch, Slot};
    let (a, b) = (Slot(10), Slot(11));
    let (ka, kb) = (key_in(a), key_in(b));
    let members = ids(&[1, 2, 3]);
    let mut c = Cluster::new(0, &[1, 2, 3]);
    for &p in &members {
        let node = GroupNode::with_slots(GroupNodeConfig::new(p), 0, members.clone(), vec![a]);
        c.nodes.insert(p, node);
    }
    c.run(60);
    let put_a = |seq| {
        op(
            seq,
            KvOp::Put {
                key: ka.clone(),
                value: Bytes::from_static(b"v"),
            },
        )
    };
    let put_b = op(
        2,
        KvOp::Put {
            key: kb.clone(),
            value: Bytes::from_static(b"v"),
        },
    );
    let freeze = |seq| {
        op(
            seq,
            KvOp::Freeze {
                slots: vec![a],
                epoch: Epoch(2),
            },
        )
    };
    assert_eq!(c.write(put_a(1)), Ok(KvResult::Written));
    assert_eq!(c.write(put_b), Err(KvError::Moved { epoch: Epoch(0) }));
    let Ok(KvResult::Frozen(data)) = c.write(freeze(3)) else {
        panic!("the freeze answers the slot's data");
    };
    assert_eq!(data.pairs, vec![(ka.clone(), Bytes::from_static(b"v"))]);
    assert_eq!(c.write(put_a(4)), Err(KvError::Moved { epoch: Epoch(2) }));
    assert_eq!(c.write(freeze(5)), Ok(KvResult::Frozen(data.clone())));
    // Node 4 replaces node 3 and gets the slot set by snapshot.
    c.join(4, 0, 1, &[1, 2, 3, 4]);
    let leader = c.leader().unwrap();
    let ss = stopsign(1, &[1, 2, 4]);
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .change_members(0, ss)
        .unwrap();
    c.run(150);
    let own = |c: &Cluster, p| c.node(p).member().map(|m| m.replica().ownership().clone());
    assert_eq!(c.node(4).config(), Some(1));
    assert_eq!(own(&c, 4), own(&c, 1));
    assert!(own(&c, 4).is_some_and(|o| o.owned().is_empty()));
    let install = op(
        6,
        KvOp::Install {
            slots: vec![a],
            epoch: Epoch(3),
            data,
        },
    );
    assert_eq!(c.write(install), Ok(KvResult::Installed));
    assert_eq!(c.write(put_a(7)), Ok(KvResult::Written));
    c.run(20);
    assert_eq!(c.store(4), c.store(1));
    assert!(own(&c, 4).is_some_and(|o| o.owns(a) && !o.owns(b)));
}
