//! Chunked snapshot transfer: a state of many chunks reaches a new member over a lossless
//! network, under loss, duplication and reordering, and when the holder it fetches from
//! crashes mid-transfer; chunks of different states never mix; a holder serves the chunk the
//! asker stands at only for exactly the state it holds.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use kv_ports::ids::{ClientId, NodeId};
use kv_ports::kv::{KvCommand, KvOp, KvResult, RequestId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use super::tests::{ids, loaded_group, n, stopsign, Cluster};
use super::*;
use crate::replica::Snapshot;
use crate::sequence_paxos::StopSign;

/// The chunk size of these tests: a few kilobytes of state make dozens of chunks.
const CHUNK: usize = 64;

fn small(p: NodeId) -> GroupNodeConfig {
    GroupNodeConfig {
        snapshot_chunk_bytes: CHUNK,
        ..GroupNodeConfig::new(p)
    }
}

fn put_big(i: usize) -> KvCommand {
    KvCommand {
        id: RequestId {
            client: ClientId(Uuid::from_u128(1000 + i as u128)),
            seq: 1,
        },
        op: KvOp::Put {
            key: Bytes::from(format!("key-{i:03}")),
            value: Bytes::from(vec![b'a' + (i % 26) as u8; 100]),
        },
    }
}

/// A group of nodes 1, 2, 3 (64-byte chunks) holding `keys` pairs of 100-byte values, about
/// 150 bytes of state per key with its client session.
fn big_group(keys: usize) -> Cluster {
    let mut c = Cluster::new(0, &[1, 2, 3]);
    for p in [1, 2, 3] {
        let node = GroupNode::new(small(n(p)), 0, ids(&[1, 2, 3]));
        c.nodes.insert(n(p), node);
    }
    c.run(60);
    for i in 0..keys {
        assert_eq!(c.write(put_big(i)), Ok(KvResult::Written), "put {i}");
    }
    c
}

/// Node 4 joins (asking nodes 1, 2, 3) and c0 is sealed naming 1, 2, 4: node 3 leaves.
fn replace_three_by_four(c: &mut Cluster) {
    let node = GroupNode::joining(small(n(4)), 0, 1, ids(&[1, 2, 3]));
    c.nodes.insert(n(4), node);
    let leader = c.leader().unwrap();
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .change_members(0, stopsign(1, &[1, 2, 4]))
        .unwrap();
}

/// One chunk as it travelled: `(step, from, to, id, offset, len)`.
type ChunkLog = Rc<RefCell<Vec<(u64, NodeId, NodeId, SnapshotId, u64, usize)>>>;

/// Records every chunk sent (nothing is dropped).
fn record_chunks(c: &mut Cluster, step: Rc<RefCell<u64>>) -> ChunkLog {
    let log: ChunkLog = Rc::default();
    let l = log.clone();
    c.drop = Box::new(move |from, to, m| {
        if let GroupMsg::Snapshot {
            id, offset, bytes, ..
        } = m
        {
            let at = *step.borrow();
            l.borrow_mut()
                .push((at, from, to, *id, *offset, bytes.len()));
        }
        false
    });
    log
}

/// Node 4 runs c1 from the same state as the others, with the same pairs.
fn assert_joined(c: &mut Cluster) {
    c.step(); // collects the events of the last step
    assert_eq!(c.node(4).config(), Some(1), "{}", c.node(4).describe());
    let hashes = c.sealed_hashes(0);
    assert!(hashes.iter().any(|&(p, _, own)| p == n(4) && !own));
    assert!(hashes.windows(2).all(|w| w[0].1 == w[1].1), "{hashes:?}");
    assert_eq!(c.store(4), c.store(1));
}

/// A state of dozens of chunks reaches the new member, chunk after chunk, each at most the
/// configured size, none sent twice on a lossless network; the holders keep the encoded state
/// only until every member of c1 runs it.
#[test]
fn a_snapshot_of_many_chunks_reaches_a_new_member() {
    let mut c = big_group(40);
    let step = Rc::new(RefCell::new(0));
    let log = record_chunks(&mut c, step.clone());
    replace_three_by_four(&mut c);
    for t in 0..2000 {
        *step.borrow_mut() = t;
        c.step();
        if c.node(4).config() == Some(1) {
            break;
        }
    }
    assert_joined(&mut c);
    let log = log.borrow();
    let to4: Vec<_> = log.iter().filter(|e| e.2 == n(4)).collect();
    let id = to4[0].3;
    assert!(id.len > 40 * 100, "the state holds the values: {id:?}");
    let chunks = id.len.div_ceil(CHUNK as u64);
    assert!(chunks > 60, "{chunks} chunks");
    assert_eq!(to4.len() as u64, chunks, "each chunk sent once");
    for (i, e) in to4.iter().enumerate() {
        assert_eq!(e.3, id, "one state");
        assert_eq!(e.4, i as u64 * CHUNK as u64, "in order");
        assert!(e.5 <= CHUNK && e.5 > 0);
    }
    assert_eq!(to4.last().unwrap().4 + to4.last().unwrap().5 as u64, id.len);
    c.run(30);
    for p in [1, 2] {
        let rec = c.node(p).sealed().unwrap();
        assert!(!rec.has_snapshot(), "n{p} dropped the encoded state");
    }
}

/// How the lossy network treats snapshot traffic (requests and chunks); everything else is
/// delivered at once.
struct Lossy {
    name: &'static str,
    drop_p: f64,
    dup_p: f64,
    /// Delays are uniform in `0..=max_delay` steps, so chunks overtake each other.
    max_delay: u64,
}

/// Steps the cluster with snapshot traffic lost, duplicated and delayed as `net` says, until
/// node 4 runs c1 (or `limit` steps). Returns the steps taken.
fn run_lossy(c: &mut Cluster, net: &Lossy, seed: u64, limit: u64) -> u64 {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut later: Vec<(u64, NodeId, NodeId, GroupMsg)> = Vec::new();
    for t in 0..limit {
        for node in c.nodes.values_mut() {
            node.tick();
        }
        let mut now = Vec::new();
        for (&p, node) in c.nodes.iter_mut() {
            node.drain_into(&mut c.out);
            for (to, m) in c.out.messages.drain(..) {
                let snapshot = matches!(
                    m,
                    GroupMsg::Snapshot { .. } | GroupMsg::SnapshotRequest { .. }
                );
                if !snapshot {
                    now.push((p, to, m));
                    continue;
                }
                if rng.gen_bool(net.drop_p) {
                    continue;
                }
                let copies = if rng.gen_bool(net.dup_p) { 2 } else { 1 };
                for _ in 0..copies {
                    let at = t + rng.gen_range(0..=net.max_delay);
                    later.push((at, p, to, m.clone()));
                }
            }
            c.replies.extend(c.out.replies.drain(..).map(|r| (p, r)));
            c.events.extend(c.out.events.drain(..).map(|e| (p, e)));
            c.out.applied.clear();
        }
        let (due, rest): (Vec<_>, Vec<_>) = later.into_iter().partition(|m| m.0 <= t);
        later = rest;
        now.extend(due.into_iter().map(|(_, from, to, m)| (from, to, m)));
        for (from, to, m) in now {
            if let Some(node) = c.nodes.get_mut(&to) {
                node.handle(from, m);
            }
        }
        if c.node(4).config() == Some(1) {
            return t;
        }
    }
    limit
}

/// Loss, duplicates and reordering of requests and chunks: the transfer still completes, with
/// the same state (a lost chunk or request costs a retry period).
#[test]
fn chunks_survive_loss_duplication_and_reordering() {
    let nets = [
        Lossy {
            name: "reordered",
            drop_p: 0.0,
            dup_p: 0.0,
            max_delay: 4,
        },
        Lossy {
            name: "30% lost",
            drop_p: 0.3,
            dup_p: 0.0,
            max_delay: 0,
        },
        Lossy {
            name: "half duplicated, reordered",
            drop_p: 0.0,
            dup_p: 0.5,
            max_delay: 3,
        },
        Lossy {
            name: "lost, duplicated, reordered",
            drop_p: 0.2,
            dup_p: 0.2,
            max_delay: 3,
        },
    ];
    for net in &nets {
        for seed in 1..=4 {
            let mut c = big_group(20);
            replace_three_by_four(&mut c);
            let steps = run_lossy(&mut c, net, seed, 20_000);
            assert!(steps < 20_000, "{} seed {seed}: stuck", net.name);
            assert_joined(&mut c);
        }
    }
}

/// The holder node 4 fetches from crashes (or is cut off) mid-transfer: after a retry period
/// node 4 asks another source, which holds the same state and resumes where the transfer
/// stood.
#[test]
fn a_transfer_resumes_at_another_holder_when_its_holder_crashes() {
    for cut_after in [1, 10, 40] {
        let mut c = big_group(40);
        let step = Rc::new(RefCell::new(0));
        let log = record_chunks(&mut c, step.clone());
        replace_three_by_four(&mut c);
        let mut crashed = None;
        for t in 0..3000 {
            *step.borrow_mut() = t;
            c.step();
            let taken: Vec<_> = log
                .borrow()
                .iter()
                .filter(|e| e.2 == n(4))
                .cloned()
                .collect();
            if crashed.is_none() && taken.len() == cut_after {
                let last = taken.last().unwrap();
                let at = last.4 + last.5 as u64;
                crashed = Some((t, last.1, at));
                c.nodes.remove(&last.1);
            }
            if c.node(4).config() == Some(1) {
                break;
            }
        }
        let (t, holder, at) = crashed.expect("the transfer had started");
        assert_eq!(c.node(4).config(), Some(1), "{}", c.node(4).describe());
        let log = log.borrow();
        let after: Vec<_> = log.iter().filter(|e| e.2 == n(4) && e.0 > t).collect();
        assert!(
            after.iter().all(|e| e.1 != holder),
            "a crashed node is silent"
        );
        assert_eq!(after[0].4, at, "resumed at byte {at}, not from the start");
        let id = after[0].3;
        let remaining = (id.len - at).div_ceil(CHUNK as u64);
        assert_eq!(after.len() as u64, remaining, "nothing fetched twice");
        let hashes = c.sealed_hashes(0);
        assert!(hashes.windows(2).all(|w| w[0].1 == w[1].1), "{hashes:?}");
        if holder != n(1) {
            assert_eq!(c.store(4), c.store(1));
        }
    }
}

/// An encoded state and the chunk messages that carry it.
struct State {
    id: SnapshotId,
    ss: StopSign,
    bytes: Bytes,
}

impl State {
    fn new(config: u32, ss: StopSign, snap: &Snapshot) -> Self {
        let bytes = Bytes::from(postcard::to_allocvec(snap).unwrap());
        let id = SnapshotId {
            config,
            len: bytes.len() as u64,
            hash: fnv1a(&bytes),
        };
        State { id, ss, bytes }
    }

    /// The chunk at `offset` (of `CHUNK` bytes or what is left).
    fn chunk(&self, offset: u64) -> GroupMsg {
        let start = offset as usize;
        let end = self.bytes.len().min(start + CHUNK);
        GroupMsg::Snapshot {
            id: self.id,
            stopsign: self.ss.clone(),
            offset,
            bytes: self.bytes.slice(start..end),
        }
    }

    fn offsets(&self) -> impl Iterator<Item = u64> {
        (0..self.id.len).step_by(CHUNK)
    }
}

/// What a joining node does with chunks of different states, out of place, repeated or
/// corrupt: it only ever assembles one state, in order, and installs it only when whole and
/// intact.
#[test]
fn chunks_of_different_states_never_mix() {
    let c = loaded_group();
    let snap = c.node(1).member().unwrap().replica().snapshot();
    let other = Snapshot {
        pairs: vec![(Bytes::from_static(b"other"), Bytes::from(vec![7u8; 300]))],
        ..snap.clone()
    };
    let mut bigger = snap.clone();
    bigger
        .pairs
        .push((Bytes::from_static(b"zz"), Bytes::from(vec![9u8; 300])));
    // The state at c0's StopSign (A), a differently encoded "state" of c0 (B: impossible for
    // correct holders, it stands for any mix-up), and the state at c1's StopSign (C).
    let a = State::new(0, stopsign(1, &[1, 2, 4]), &bigger);
    let b = State::new(0, stopsign(1, &[1, 2, 4]), &other);
    let cc = State::new(1, stopsign(2, &[1, 2, 4]), &bigger);
    assert!(a.id.len > 3 * CHUNK as u64 && b.id.len > 3 * CHUNK as u64);
    let (k, k2) = (CHUNK as u64, 2 * CHUNK as u64);
    let mut corrupt = match a.chunk(k) {
        GroupMsg::Snapshot { bytes, .. } => bytes.to_vec(),
        _ => unreachable!(),
    };
    corrupt[0] ^= 0xff;
    let corrupt = GroupMsg::Snapshot {
        id: a.id,
        stopsign: a.ss.clone(),
        offset: k,
        bytes: Bytes::from(corrupt),
    };
    let past_end = GroupMsg::Snapshot {
        id: a.id,
        stopsign: a.ss.clone(),
        offset: a.id.len - 1,
        bytes: Bytes::from_static(b"xy"),
    };
    let all = |s: &State| s.offsets().map(|o| s.chunk(o)).collect::<Vec<_>>();
    let except = |s: &State, skip: u64| {
        let mut v = vec![s.chunk(0)];
        v.extend(s.offsets().skip(1).map(|o| {
            if o == skip {
                corrupt.clone()
            } else {
                s.chunk(o)
            }
        }));
        v
    };
    struct Case {
        name: &'static str,
        chunks: Vec<GroupMsg>,
        /// The configuration it runs at the end (`None`: still joining).
        runs: Option<u32>,
        /// Where its next request resumes (when still joining).
        resume: Option<(SnapshotId, u64)>,
    }
    let cases = [
        Case {
            name: "every chunk in order: installed",
            chunks: all(&a),
            runs: Some(1),
            resume: None,
        },
        Case {
            name: "a chunk of another state of the same configuration: ignored",
            chunks: vec![a.chunk(0), b.chunk(k)],
            runs: None,
            resume: Some((a.id, k)),
        },
        Case {
            name: "a duplicate: ignored",
            chunks: vec![a.chunk(0), a.chunk(0)],
            runs: None,
            resume: Some((a.id, k)),
        },
        Case {
            name: "a gap (a chunk overtook a lost one): ignored",
            chunks: vec![a.chunk(0), a.chunk(k2)],
            runs: None,
            resume: Some((a.id, k)),
        },
        Case {
            name: "a chunk running past the state's end: ignored",
            chunks: vec![a.chunk(0), past_end],
            runs: None,
            resume: Some((a.id, k)),
        },
        Case {
            name: "the start of a later configuration's state replaces the transfer",
            chunks: vec![a.chunk(0), a.chunk(k), cc.chunk(0)],
            runs: None,
            resume: Some((cc.id, k)),
        },
        Case {
            name: "the start of an earlier configuration's state does not",
            chunks: vec![cc.chunk(0), a.chunk(0)],
            runs: None,
            resume: Some((cc.id, k)),
        },
        Case {
            name: "the later state in full: runs c2",
            chunks: [vec![a.chunk(0)], all(&cc)].concat(),
            runs: Some(2),
            resume: None,
        },
        Case {
            name: "a corrupt chunk: the hash does not match, the transfer starts over",
            chunks: except(&a, k),
            runs: None,
            resume: None,
        },
    ];
    for case in cases {
        let mut j = GroupNode::joining(small(n(4)), 0, 1, ids(&[1, 2, 3]));
        let mut out = GroupOutput::default();
        for m in case.chunks {
            j.handle(n(1), m);
            j.drain_into(&mut out);
        }
        assert_eq!(j.config(), case.runs, "{}: {}", case.name, j.describe());
        if case.runs.is_some() {
            let installed = out.events.iter().find_map(|e| match e {
                ConfigEvent::Sealed { hash, own, .. } => Some((*hash, *own)),
                _ => None,
            });
            let want = if case.runs == Some(1) { a.id } else { cc.id };
            assert_eq!(installed, Some((want.hash, false)), "{}", case.name);
            continue;
        }
        // The retry (a period without progress) says where the transfer stands.
        out.clear();
        let retry = small(n(4)).snapshot_retry_ticks;
        for _ in 0..=retry {
            j.tick();
        }
        j.drain_into(&mut out);
        let resumes: Vec<_> = out
            .messages
            .iter()
            .filter_map(|(_, m)| match m {
                GroupMsg::SnapshotRequest { resume, .. } => Some(*resume),
                _ => None,
            })
            .collect();
        assert_eq!(resumes, vec![case.resume], "{}", case.name);
    }
}

/// A holder serves one chunk per request, at most `snapshot_chunk_bytes` long: where the asker
/// stands if it assembles exactly the state held here, else from the start.
#[test]
fn a_holder_serves_the_chunk_asked_for_only_of_its_own_state() {
    let mut c = big_group(5);
    let leader = c.leader().unwrap();
    c.nodes
        .get_mut(&leader)
        .unwrap()
        .change_members(0, stopsign(1, &[1, 2, 4]))
        .unwrap();
    c.run(20);
    let holder = c.node(1).clone();
    assert!(holder.sealed().unwrap().has_snapshot());
    let hash = holder.sealed().unwrap().hash.unwrap();
    let first = {
        let mut h = holder.clone();
        h.handle(
            n(4),
            GroupMsg::SnapshotRequest {
                config: 0,
                resume: None,
            },
        );
        let mut out = GroupOutput::default();
        h.drain_into(&mut out);
        match out.messages.pop() {
            Some((_, GroupMsg::Snapshot { id, .. })) => id,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((first.config, first.hash), (0, hash));
    let len = first.len;
    let other = SnapshotId {
        hash: hash ^ 1,
        ..first
    };
    let later = SnapshotId { config: 1, ..first };
    struct Case {
        name: &'static str,
        config: u32,
        resume: Option<(SnapshotId, u64)>,
        /// `(offset, len)` of the chunk served, if any.
        served: Option<(u64, usize)>,
    }
    let cases = [
        Case {
            name: "from the start",
            config: 0,
            resume: None,
            served: Some((0, CHUNK)),
        },
        Case {
            name: "resumed",
            config: 0,
            resume: Some((first, 2 * CHUNK as u64)),
            served: Some((2 * CHUNK as u64, CHUNK)),
        },
        Case {
            name: "the last, short chunk",
            config: 0,
            resume: Some((first, len - 10)),
            served: Some((len - 10, 10)),
        },
        Case {
            name: "another state of c0: from the start",
            config: 0,
            resume: Some((other, 2 * CHUNK as u64)),
            served: Some((0, CHUNK)),
        },
        Case {
            name: "a state of another configuration: from the start",
            config: 0,
            resume: Some((later, 2 * CHUNK as u64)),
            served: Some((0, CHUNK)),
        },
        Case {
            name: "an offset past the end: from the start",
            config: 0,
            resume: Some((first, len)),
            served: Some((0, CHUNK)),
        },
        Case {
            name: "c1 is not sealed: nothing",
            config: 1,
            resume: None,
            served: None,
        },
    ];
    for case in cases {
        let mut h = holder.clone();
        let mut out = GroupOutput::default();
        h.drain_into(&mut out);
        out.clear();
        h.handle(
            n(4),
            GroupMsg::SnapshotRequest {
                config: case.config,
                resume: case.resume,
            },
        );
        h.drain_into(&mut out);
        let served: Vec<_> = out
            .messages
            .iter()
            .filter_map(|(to, m)| match m {
                GroupMsg::Snapshot {
                    id, offset, bytes, ..
                } if *to == n(4) => Some((*id, *offset, bytes.len())),
                _ => None,
            })
            .collect();
        match case.served {
            Some((offset, size)) => {
                assert_eq!(served, vec![(first, offset, size)], "{}", case.name)
            }
            None => assert!(served.is_empty(), "{}", case.name),
        }
    }
}
