//! Table-driven tests of slot moves on one replica: every case is a log (client commands,
//! freezes, installs) applied in order, with the answer each entry must get.

use bytes::Bytes;
use kv_ports::ids::ClientId;
use kv_ports::kv::{
    pair_bytes, KvCommand, KvError, KvOp, KvResult, RequestId, SessionEntry, SlotData, SlotPage,
};
use kv_ports::membership::{slot_of, Epoch, Slot};
use uuid::Uuid;

use super::core::{Applied, Replica};
use crate::sequence_paxos::Entry;

type Answer = Result<KvResult, KvError>;

/// Slot A holds keys a0 < a1; slot B holds b0; slot C (never owned) holds c0.
const A: Slot = Slot(1);
const B: Slot = Slot(2);
const C: Slot = Slot(3);

/// Key `n` (0 or 1, in byte order) of the first two of "k0", "k1", … hashing into `s`.
fn key(s: Slot, n: usize) -> Bytes {
    let mut found: Vec<Bytes> = (0..)
        .map(|i| Bytes::from(format!("k{i}")))
        .filter(|k| slot_of(k) == s)
        .take(2)
        .collect();
    found.sort();
    found[n].clone()
}

fn client(c: u128) -> ClientId {
    ClientId(Uuid::from_u128(c))
}

fn id(c: u128, seq: u64) -> RequestId {
    RequestId {
        client: client(c),
        seq,
    }
}

fn cmd(c: u128, seq: u64, op: KvOp) -> KvCommand {
    KvCommand { id: id(c, seq), op }
}

fn put(c: u128, seq: u64, k: &Bytes, v: &str) -> KvCommand {
    let value = Bytes::copy_from_slice(v.as_bytes());
    cmd(
        c,
        seq,
        KvOp::Put {
            key: k.clone(),
            value,
        },
    )
}

fn get(c: u128, seq: u64, k: &Bytes) -> KvCommand {
    cmd(c, seq, KvOp::Get { key: k.clone() })
}

/// Coordinator commands use client 99 and a fresh sequence number each (like the node shell).
fn freeze(seq: u64, slots: &[Slot], epoch: u64) -> KvCommand {
    let op = KvOp::Freeze {
        slots: slots.to_vec(),
        epoch: Epoch(epoch),
    };
    cmd(99, seq, op)
}

fn install(seq: u64, slots: &[Slot], epoch: u64, data: SlotData) -> KvCommand {
    let op = KvOp::Install {
        slots: slots.to_vec(),
        epoch: Epoch(epoch),
        data,
    };
    cmd(99, seq, op)
}

fn part(seq: u64, slots: &[Slot], epoch: u64, pairs: &[(&Bytes, &str)]) -> KvCommand {
    let op = KvOp::InstallPart {
        slots: slots.to_vec(),
        epoch: Epoch(epoch),
        pairs: owned_pairs(pairs),
    };
    cmd(99, seq, op)
}

fn owned_pairs(pairs: &[(&Bytes, &str)]) -> Vec<(Bytes, Bytes)> {
    let pairs = pairs.iter().map(|(k, x)| ((*k).clone(), v(x).unwrap()));
    pairs.collect()
}

/// The end of a paged move: `last` pairs, no sessions, and the sizes of all of the move's
/// pairs, `all`.
fn end(last: &[(&Bytes, &str)], all: &[(&Bytes, &str)]) -> SlotData {
    let mut d = sized(owned_pairs(all), vec![]);
    d.pairs = owned_pairs(last);
    d
}

fn v(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

fn moved(e: u64) -> Answer {
    Err(KvError::Moved { epoch: Epoch(e) })
}

fn session(c: u128, seq: u64, reply: KvResult) -> SessionEntry {
    SessionEntry {
        client: client(c),
        seq,
        reply,
    }
}

/// All of a small move's data (one page): the pairs, the sessions, their sizes.
fn data(pairs: &[(&Bytes, &str)], sessions: Vec<SessionEntry>) -> SlotData {
    sized(owned_pairs(pairs), sessions)
}

fn sized(pairs: Vec<(Bytes, Bytes)>, sessions: Vec<SessionEntry>) -> SlotData {
    let bytes = pairs.iter().map(|(k, v)| pair_bytes(k, v)).sum();
    SlotData {
        count: pairs.len() as u64,
        bytes,
        pairs,
        sessions,
        more: false,
    }
}

/// Apply `log` to `r` (each command admitted first, so its answer comes back as a reply) and
/// return the answers, in order.
fn run(r: &mut Replica, log: &[KvCommand]) -> Vec<Answer> {
    log.iter()
        .map(|c| {
            let early = r.admit(c);
            let idx = r.applied_idx();
            r.apply(idx, &Entry::Cmd(c.clone()));
            let mut replies = r.take_replies();
            match early {
                Some(a) => a,
                None => replies.pop().expect("a parked command is answered").1,
            }
        })
        .collect()
}

/// One case: the slots served at the start, the log, the answers wanted, then the values of
/// some keys in the store afterwards (frozen pairs included) and the slots served.
struct Case {
    name: &'static str,
    slots: Vec<Slot>,
    log: Vec<KvCommand>,
    want: Vec<Answer>,
    store: Vec<(Bytes, Option<Bytes>)>,
    owned: Vec<Slot>,
}

#[test]
fn slot_moves_on_one_replica() {
    let (a0, a1, b0, c0) = (key(A, 0), key(A, 1), key(B, 0), key(C, 0));
    let frozen_a = |pairs: &[(&Bytes, &str)], sessions| Ok(KvResult::Frozen(data(pairs, sessions)));
    let cases = vec![
        Case {
            name: "a freeze answers its slots' pairs in key order and every session; ops after it are Moved",
            slots: vec![A, B],
            log: vec![
                put(1, 1, &a1, "x"),
                put(2, 1, &a0, "y"),
                put(3, 1, &b0, "z"),
                freeze(1, &[A], 5),
                put(1, 2, &a0, "lost"),
                get(2, 2, &a1),
                put(3, 2, &b0, "w"),
            ],
            want: vec![
                Ok(KvResult::Written),
                Ok(KvResult::Written),
                Ok(KvResult::Written),
                frozen_a(
                    &[(&a0, "y"), (&a1, "x")],
                    vec![
                        session(1, 1, KvResult::Written),
                        session(2, 1, KvResult::Written),
                        session(3, 1, KvResult::Written),
                    ],
                ),
                moved(5),
                moved(5),
                Ok(KvResult::Written),
            ],
            store: vec![(a0.clone(), v("y")), (a1.clone(), v("x")), (b0.clone(), v("w"))],
            owned: vec![B],
        },
        Case {
            name: "re-freezing answers the same pairs; a later freeze of frozen slots is refused",
            slots: vec![A],
            log: vec![
                put(1, 1, &a0, "x"),
                freeze(1, &[A], 5),
                put(1, 2, &a0, "y"),
                freeze(2, &[A], 5),
                freeze(3, &[A], 6),
                freeze(4, &[A], 4),
            ],
            want: vec![
                Ok(KvResult::Written),
                frozen_a(&[(&a0, "x")], vec![session(1, 1, KvResult::Written)]),
                moved(5),
                frozen_a(&[(&a0, "x")], vec![session(1, 1, KvResult::Written)]),
                moved(6),
                moved(5),
            ],
            store: vec![(a0.clone(), v("x"))],
            owned: vec![],
        },
        Case {
            name: "a slot never served: ops Moved(0), its freeze refused, an install takes it",
            slots: vec![B],
            log: vec![
                put(1, 1, &c0, "x"),
                freeze(1, &[C], 3),
                install(2, &[C], 3, data(&[(&c0, "from-src")], vec![])),
                get(1, 1, &c0),
            ],
            want: vec![moved(0), moved(3), Ok(KvResult::Installed), Ok(KvResult::Value(v("from-src")))],
            store: vec![(c0.clone(), v("from-src"))],
            owned: vec![B, C],
        },
        Case {
            name: "an install merges sessions: higher seq wins, a tie keeps ours; retries answer from them",
            slots: vec![B],
            log: vec![
                put(1, 4, &b0, "mine"),
                put(2, 7, &b0, "mine2"),
                install(
                    1,
                    &[A],
                    2,
                    data(
                        &[(&a0, "x")],
                        vec![
                            session(1, 5, KvResult::Deleted(true)),
                            session(2, 7, KvResult::Swapped(false)),
                            session(3, 1, KvResult::Written),
                        ],
                    ),
                ),
                put(1, 5, &a0, "retry of a command applied at the source"),
                put(1, 4, &b0, "older"),
                put(2, 7, &b0, "retry of ours"),
                put(3, 1, &a0, "retry"),
                put(3, 2, &a0, "new"),
            ],
            want: vec![
                Ok(KvResult::Written),
                Ok(KvResult::Written),
                Ok(KvResult::Installed),
                Ok(KvResult::Deleted(true)),
                Err(KvError::Superseded),
                Ok(KvResult::Written),
                Ok(KvResult::Written),
                Ok(KvResult::Written),
            ],
            store: vec![(a0.clone(), v("new")), (b0.clone(), v("mine2"))],
            owned: vec![A, B],
        },
        Case {
            name: "an install retried after writes changes nothing; an install into a served slot is refused",
            slots: vec![],
            log: vec![
                install(1, &[A], 2, data(&[(&a0, "x")], vec![])),
                put(1, 1, &a0, "y"),
                install(2, &[A], 2, data(&[(&a0, "x")], vec![])),
                install(3, &[A], 1, data(&[(&a0, "older")], vec![])),
                install(4, &[A], 3, data(&[(&a0, "z")], vec![])),
                get(1, 2, &a0),
            ],
            want: vec![
                Ok(KvResult::Installed),
                Ok(KvResult::Written),
                Ok(KvResult::Installed),
                Ok(KvResult::Installed),
                moved(3),
                Ok(KvResult::Value(v("y"))),
            ],
            store: vec![(a0.clone(), v("y"))],
            owned: vec![A],
        },
        Case {
            name: "a slot moves away and back: the frozen pairs are replaced, the stale freeze refused",
            slots: vec![A],
            log: vec![
                put(1, 1, &a0, "x"),
                put(1, 2, &a1, "gone later"),
                freeze(1, &[A], 2),
                install(2, &[A], 3, data(&[(&a0, "changed elsewhere")], vec![session(1, 9, KvResult::Written)])),
                freeze(3, &[A], 2),
                get(1, 9, &a0),
                get(1, 10, &a1),
                install(4, &[A], 2, data(&[], vec![])),
            ],
            want: vec![
                Ok(KvResult::Written),
                Ok(KvResult::Written),
                frozen_a(&[(&a0, "x"), (&a1, "gone later")], vec![session(1, 2, KvResult::Written)]),
                Ok(KvResult::Installed),
                moved(3),
                Ok(KvResult::Written),
                Ok(KvResult::Value(None)),
                Ok(KvResult::Installed),
            ],
            store: vec![(a0.clone(), v("changed elsewhere")), (a1.clone(), None)],
            owned: vec![A],
        },
        Case {
            name: "a command decided twice around a freeze takes effect once and answers its result",
            slots: vec![A],
            log: vec![
                put(1, 1, &a0, "x"),
                freeze(1, &[A], 2),
                put(1, 1, &a0, "x"),
                put(1, 0, &a0, "older"),
            ],
            want: vec![
                Ok(KvResult::Written),
                frozen_a(&[(&a0, "x")], vec![session(1, 1, KvResult::Written)]),
                Ok(KvResult::Written),
                Err(KvError::Superseded),
            ],
            store: vec![(a0.clone(), v("x"))],
            owned: vec![],
        },
        Case {
            name: "slot moves bypass the session table",
            slots: vec![A],
            log: vec![
                cmd(5, 1, KvOp::Freeze { slots: vec![A], epoch: Epoch(2) }),
                cmd(5, 1, KvOp::Freeze { slots: vec![A], epoch: Epoch(2) }),
                cmd(5, 1, KvOp::Install { slots: vec![A], epoch: Epoch(3), data: data(&[], vec![]) }),
                put(5, 1, &a0, "x"),
            ],
            want: vec![
                frozen_a(&[], vec![]),
                frozen_a(&[], vec![]),
                Ok(KvResult::Installed),
                Ok(KvResult::Written),
            ],
            store: vec![(a0.clone(), v("x"))],
            owned: vec![A],
        },
        Case {
            name: "a paged move: parts are stored unserved, repeated parts change nothing, the install serves them",
            slots: vec![B],
            log: vec![
                part(1, &[A], 4, &[(&a0, "x")]),
                get(1, 1, &a0),
                part(2, &[A], 4, &[(&a1, "y")]),
                part(1, &[A], 4, &[(&a0, "x")]),
                install(3, &[A], 4, end(&[], &[(&a0, "x"), (&a1, "y")])),
                get(1, 2, &a1),
                part(4, &[A], 4, &[(&a0, "stale")]),
                install(5, &[A], 4, end(&[], &[(&a0, "x"), (&a1, "y")])),
                get(1, 3, &a0),
            ],
            want: vec![
                Ok(KvResult::Installed),
                moved(4),
                Ok(KvResult::Installed),
                Ok(KvResult::Installed),
                Ok(KvResult::Installed),
                Ok(KvResult::Value(v("y"))),
                Ok(KvResult::Installed),
                Ok(KvResult::Installed),
                Ok(KvResult::Value(v("x"))),
            ],
            store: vec![(a0.clone(), v("x")), (a1.clone(), v("y"))],
            owned: vec![A, B],
        },
        Case {
            name: "the first part clears the slots' old pairs once; the install may carry the last page",
            slots: vec![A],
            log: vec![
                put(1, 1, &a0, "old"),
                put(1, 2, &a1, "old"),
                freeze(1, &[A], 2),
                part(2, &[A], 4, &[(&a0, "new")]),
                part(3, &[A], 4, &[(&a0, "new")]),
                install(5, &[A, B], 4, end(&[(&b0, "x")], &[(&a0, "new"), (&b0, "x")])),
                get(1, 3, &b0),
            ],
            want: vec![
                Ok(KvResult::Written),
                Ok(KvResult::Written),
                frozen_a(&[(&a0, "old"), (&a1, "old")], vec![session(1, 2, KvResult::Written)]),
                Ok(KvResult::Installed),
                Ok(KvResult::Installed),
                Ok(KvResult::Installed),
                Ok(KvResult::Value(v("x"))),
            ],
            store: vec![(a0.clone(), v("new")), (a1.clone(), None), (b0.clone(), v("x"))],
            owned: vec![A, B],
        },
        Case {
            name: "an install whose pairs do not add up is refused and changes nothing",
            slots: vec![],
            log: vec![
                part(1, &[A], 4, &[(&a0, "x")]),
                install(2, &[A], 4, end(&[], &[(&a0, "x"), (&a1, "y")])),
                install(3, &[A], 4, end(&[], &[(&a0, "other")])),
                get(1, 1, &a0),
                install(4, &[A], 4, end(&[(&a1, "y")], &[(&a0, "x"), (&a1, "y")])),
                get(1, 2, &a0),
            ],
            want: vec![
                Ok(KvResult::Installed),
                moved(4),
                moved(4),
                moved(4),
                Ok(KvResult::Installed),
                Ok(KvResult::Value(v("x"))),
            ],
            store: vec![(a0.clone(), v("x")), (a1.clone(), v("y"))],
            owned: vec![A],
        },
        Case {
            name: "parts into a served slot are refused; a staged slot is not frozen; an older staging starts over",
            slots: vec![B],
            log: vec![
                part(1, &[B], 4, &[(&b0, "x")]),
                part(2, &[A], 3, &[(&a0, "abandoned")]),
                freeze(3, &[A], 5),
                part(4, &[A], 5, &[(&a1, "y")]),
                part(5, &[A], 3, &[(&a0, "stale")]),
                install(6, &[A], 3, end(&[], &[])),
                install(7, &[A], 5, end(&[], &[(&a1, "y")])),
            ],
            want: vec![
                moved(4),
                Ok(KvResult::Installed),
                moved(5),
                Ok(KvResult::Installed),
                Ok(KvResult::Installed),
                Ok(KvResult::Installed),
                Ok(KvResult::Installed),
            ],
            store: vec![(a0.clone(), None), (a1.clone(), v("y")), (b0.clone(), None)],
            owned: vec![A, B],
        },
    ];
    for case in cases {
        let mut r = Replica::with_slots(case.slots.clone());
        let got = run(&mut r, &case.log);
        assert_eq!(got, case.want, "{}", case.name);
        for (k, want) in &case.store {
            assert_eq!(r.store().get(k), want.as_ref(), "{}: {k:?}", case.name);
        }
        assert_eq!(r.ownership().owned(), case.owned, "{}", case.name);
        // The snapshot carries the ownership and the store: a new member behaves the same.
        let back = Replica::from_snapshot(r.snapshot());
        assert_eq!(back.ownership(), r.ownership(), "{}", case.name);
        assert_eq!(back.store(), r.store(), "{}", case.name);
    }
}

#[test]
fn moved_commands_leave_no_trace_and_are_reported() {
    let a0 = key(A, 0);
    let mut r = Replica::with_slots([B]);
    let c = put(1, 1, &a0, "x");
    assert_eq!(
        r.admit(&c),
        None,
        "ownership is checked at apply, not at arrival"
    );
    assert_eq!(r.apply(0, &Entry::Cmd(c.clone())), Applied::Moved(c.id));
    assert_eq!(r.take_replies(), vec![(c.id, moved(0))]);
    assert_eq!(r.admit(&c), None, "not in the session table: still new");
    assert!(r.store().is_empty());
    let f = freeze(1, &[B], 4);
    let applied = r.apply(1, &Entry::Cmd(f.clone()));
    assert!(matches!(applied, Applied::SlotMove(id, Ok(KvResult::Frozen(_))) if id == f.id));
}

#[test]
fn malformed_slot_moves_are_refused_before_the_log() {
    let (a0, b0) = (key(A, 0), key(B, 0));
    let mut r = Replica::with_slots([]);
    let mut announced = data(&[(&a0, "x")], vec![]);
    announced.more = true;
    let cases = [
        (
            "pair outside the slots",
            install(1, &[A], 2, data(&[(&b0, "x")], vec![])),
            moved(2),
        ),
        (
            "a part's pair outside the slots",
            part(1, &[A], 2, &[(&a0, "x"), (&b0, "x")]),
            moved(2),
        ),
        (
            "an install announcing more pages",
            install(1, &[A], 2, announced),
            moved(2),
        ),
        ("slot out of range", freeze(2, &[Slot(1024)], 3), moved(3)),
    ];
    for (name, c, want) in cases {
        assert_eq!(r.admit(&c), Some(want), "{name}");
    }
    let ok = install(3, &[A], 2, data(&[(&a0, "x")], vec![]));
    assert_eq!(r.admit(&ok), None);
}

#[test]
#[should_panic(expected = "only pairs of its slots")]
fn a_malformed_install_in_the_log_panics() {
    let b0 = key(B, 0);
    let mut r = Replica::with_slots([]);
    r.apply(
        0,
        &Entry::Cmd(install(1, &[A], 2, data(&[(&b0, "x")], vec![]))),
    );
}

#[test]
fn frozen_pairs_are_read_in_pages_only_where_that_freeze_was_applied() {
    let (a0, a1, b0) = (key(A, 0), key(A, 1), key(B, 0));
    let mut r = Replica::with_slots([A, B]);
    let big = "v".repeat(600 * 1024);
    run(
        &mut r,
        &[
            put(1, 1, &a0, &big),
            put(1, 2, &a1, &big),
            put(1, 3, &b0, "z"),
        ],
    );
    let page = |r: &Replica, epoch, after: Option<&Bytes>, max| {
        r.frozen_page(&[A], Epoch(epoch), after.map(|k| &k[..]), max)
    };
    assert_eq!(page(&r, 5, None, 10), moved(5).map(|_| SlotPage::default()));
    let got = run(&mut r, &[freeze(1, &[A], 5)]);
    let Ok(KvResult::Frozen(summary)) = &got[0] else {
        panic!("frozen: {got:?}");
    };
    let size = pair_bytes(&a0, big.as_bytes()) + pair_bytes(&a1, big.as_bytes());
    assert_eq!((summary.count, summary.bytes), (2, size));
    assert_eq!(summary.pairs.len(), 1, "the first page is bounded");
    assert!(summary.more);
    let one = |k: &Bytes| vec![(k.clone(), Bytes::from(big.clone()))];
    let first = SlotPage {
        pairs: one(&a0),
        more: true,
    };
    assert_eq!(
        page(&r, 5, None, 10),
        Ok(first.clone()),
        "at least one pair"
    );
    let last = SlotPage {
        pairs: one(&a1),
        more: false,
    };
    assert_eq!(page(&r, 5, Some(&a0), 10), Ok(last.clone()));
    assert_eq!(page(&r, 5, Some(&a1), 10), Ok(SlotPage::default()));
    let both = page(&r, 5, None, 2 << 20).unwrap();
    assert_eq!((both.pairs.len(), both.more), (2, false));
    assert_eq!(page(&r, 4, None, 10), moved(5).map(|_| SlotPage::default()));
    assert_eq!(page(&r, 6, None, 10), moved(6).map(|_| SlotPage::default()));
    // A new member reads the same pages; a replica that has not applied the freeze refuses.
    let back = Replica::from_snapshot(r.snapshot());
    assert_eq!(page(&back, 5, None, 10), Ok(first));
    let lagging = Replica::with_slots([A, B]);
    assert!(page(&lagging, 5, None, 10).is_err());
    // Once the slot moves on (back here at a later epoch), the pages are gone.
    run(&mut r, &[part(2, &[A], 7, &[])]);
    assert_eq!(
        page(&r, 5, Some(&a0), 10),
        moved(7).map(|_| SlotPage::default())
    );
}

#[test]
fn staged_pages_travel_in_snapshots() {
    let (a0, a1) = (key(A, 0), key(A, 1));
    let mut r = Replica::with_slots([]);
    run(&mut r, &[part(1, &[A], 4, &[(&a0, "x")])]);
    let mut back = Replica::from_snapshot(r.snapshot());
    let log = [
        part(2, &[A], 4, &[(&a1, "y")]),
        install(3, &[A], 4, end(&[], &[(&a0, "x"), (&a1, "y")])),
        get(1, 1, &a0),
    ];
    let want = vec![
        Ok(KvResult::Installed),
        Ok(KvResult::Installed),
        Ok(KvResult::Value(v("x"))),
    ];
    assert_eq!(run(&mut back, &log), want);
}
