//! Handler-level tests of the Sequence Paxos core, case by case as in the paper.

use kv_ports::ids::NodeId;

use super::*;
use crate::ble::Ballot;

type Sp = SequencePaxos<u32>;

fn id(i: u64) -> NodeId {
    NodeId(i)
}

fn b(n: u64, pid: u64) -> Ballot {
    Ballot::new(n, 0, id(pid))
}

fn group(size: u64) -> Vec<Sp> {
    let members: Vec<NodeId> = (1..=size).map(id).collect();
    members
        .iter()
        .map(|&p| Sp::new(SpConfig::new(p, members.clone())))
        .collect()
}

/// Deliver messages until quiet, dropping those `drop` selects. Returns how many were delivered.
fn run(sps: &mut [Sp], drop: impl Fn(NodeId, NodeId, &PaxosMsg<u32>) -> bool) -> usize {
    let mut delivered = 0;
    loop {
        let mut msgs = Vec::new();
        for sp in sps.iter_mut() {
            let from = sp.pid();
            msgs.extend(sp.take_outgoing().into_iter().map(|(to, m)| (from, to, m)));
        }
        if msgs.is_empty() {
            return delivered;
        }
        for (from, to, m) in msgs {
            if !drop(from, to, &m) {
                delivered += 1;
                sps[(to.0 - 1) as usize].handle(from, m);
            }
        }
    }
}

fn all(_: NodeId, _: NodeId, _: &PaxosMsg<u32>) -> bool {
    false
}

fn elect(sps: &mut [Sp], ballot: Ballot) {
    for sp in sps.iter_mut() {
        sp.handle_leader(ballot);
    }
}

fn cmds(sp: &mut Sp) -> Vec<u32> {
    sp.take_decided()
        .into_iter()
        .filter_map(|(_, e)| match e {
            Entry::Cmd(c) => Some(c),
            Entry::StopSign(_) => None,
        })
        .collect()
}

fn entries(v: &[u32]) -> Vec<Entry<u32>> {
    v.iter().copied().map(Entry::Cmd).collect()
}

#[test]
fn prepare_is_promised_only_for_higher_ballots() {
    // (promised before, prepare ballot, promised after, reply kind)
    let cases = [
        (b(1, 2), b(2, 3), b(2, 3), "promise"),
        (b(3, 2), b(2, 3), b(3, 2), "nack"),
        (b(2, 3), b(2, 2), b(2, 3), "nack"),
    ];
    for (before, n, after, kind) in cases {
        let mut sp = group(3).remove(0);
        sp.handle(
            before.pid,
            PaxosMsg::Prepare {
                n: before,
                ld: 0,
                acc_rnd: Ballot::ZERO,
                log_len: 0,
            },
        );
        sp.take_outgoing();
        sp.handle(
            n.pid,
            PaxosMsg::Prepare {
                n,
                ld: 0,
                acc_rnd: Ballot::ZERO,
                log_len: 0,
            },
        );
        assert_eq!(sp.promised(), after);
        let out = sp.take_outgoing();
        let got = match &out[..] {
            [(_, PaxosMsg::Promise { .. })] => "promise",
            [(_, PaxosMsg::Nack { .. })] => "nack",
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(got, kind, "{before:?} then {n:?}");
    }
}

/// A follower that accepted entries `log` in round `acc` and decided `ld` of them.
fn follower_with(log: &[u32], acc: Ballot, ld: u64) -> Sp {
    let mut sp = group(3).remove(2);
    sp.handle(
        acc.pid,
        PaxosMsg::Prepare {
            n: acc,
            ld: 0,
            acc_rnd: Ballot::ZERO,
            log_len: 0,
        },
    );
    sp.handle(
        acc.pid,
        PaxosMsg::AcceptSync {
            n: acc,
            sync_idx: 0,
            suffix: entries(log),
            ld,
        },
    );
    sp.take_outgoing();
    sp
}

#[test]
fn promise_carries_the_suffix_the_leader_may_lack() {
    // (follower acc round, leader acc round, leader ld, leader len, expected sfx_start, sfx len)
    let cases = [
        (b(2, 1), b(1, 1), 1, 2, 1, 3), // follower accepted later: everything after leader's ld
        (b(2, 1), b(2, 1), 1, 2, 2, 2), // same round: whatever lies beyond the leader's log
        (b(2, 1), b(2, 1), 1, 9, 4, 0), // same round, leader longer: nothing
        (b(1, 1), b(2, 1), 0, 0, 4, 0), // follower older: nothing
    ];
    for (f_acc, l_acc, l_ld, l_len, want_start, want_len) in cases {
        let mut sp = follower_with(&[1, 2, 3, 4], f_acc, 1);
        sp.handle(
            id(2),
            PaxosMsg::Prepare {
                n: b(5, 2),
                ld: l_ld,
                acc_rnd: l_acc,
                log_len: l_len,
            },
        );
        match &sp.take_outgoing()[..] {
            [(
                to,
                PaxosMsg::Promise {
                    sfx_start,
                    suffix,
                    log_len,
                    ld,
                    acc_rnd,
                    ..
                },
            )] => {
                assert_eq!(*to, id(2));
                assert_eq!((*sfx_start, suffix.len()), (want_start, want_len));
                assert_eq!((*log_len, *ld, *acc_rnd), (4, 1, f_acc));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A promise in a table case: the round it accepted in, and its log.
type PromiseCase = (u64, &'static [u32]);

#[test]
fn leader_adopts_highest_round_then_longest_log() {
    // Two promises reach a 5-member leader with an empty log; (acc, log) of each, expected log.
    let cases: [(PromiseCase, PromiseCase, &[u32]); 3] = [
        ((1, &[1, 2]), (2, &[7]), &[7]),
        ((2, &[7]), (2, &[7, 8]), &[7, 8]),
        ((2, &[7, 8]), (1, &[1, 2, 3]), &[7, 8]),
    ];
    for ((acc_a, log_a), (acc_b, log_b), want) in cases {
        let members: Vec<NodeId> = (1..=5).map(id).collect();
        let mut leader = Sp::new(SpConfig::new(id(1), members));
        leader.handle_leader(b(5, 1));
        leader.take_outgoing();
        for (from, acc, log) in [(2, acc_a, log_a), (3, acc_b, log_b)] {
            let msg = PaxosMsg::Promise {
                n: b(5, 1),
                acc_rnd: b(acc, 9),
                log_len: log.len() as u64,
                ld: 0,
                sfx_start: 0,
                suffix: entries(log),
            };
            leader.handle(id(from), msg);
        }
        assert!(leader.is_accepting_leader());
        let got: Vec<Entry<u32>> = (0..leader.log_len())
            .filter_map(|i| leader.entry(i).cloned())
            .collect();
        assert_eq!(got, entries(want));
        // Each follower is synchronised from where its log surely agrees with the adopted one.
        for (to, m) in leader.take_outgoing() {
            if let PaxosMsg::AcceptSync { sync_idx, .. } = m {
                let (acc, log) = if to == id(2) {
                    (acc_a, log_a)
                } else {
                    (acc_b, log_b)
                };
                let best = acc_a.max(acc_b);
                let want_idx = if acc == best {
                    (log.len() as u64).min(want.len() as u64)
                } else {
                    0
                };
                assert_eq!(sync_idx, want_idx, "sync of {to}");
            }
        }
    }
}

#[test]
fn groups_agree_after_a_leader_change() {
    let mut sps = group(3);
    elect(&mut sps, b(1, 1));
    run(&mut sps, all);
    sps[0].propose(1).unwrap();
    run(&mut sps, all);
    elect(&mut sps, b(2, 3));
    run(&mut sps, all);
    sps[1].propose(2).unwrap();
    run(&mut sps, all);
    for sp in sps.iter_mut() {
        assert_eq!(cmds(sp), vec![1, 2]);
        assert_eq!(sp.accepted_round(), b(2, 3));
    }
}

#[test]
fn accept_from_stale_leader_is_ignored() {
    let mut sp = follower_with(&[1], b(2, 2), 0);
    sp.handle(
        id(1),
        PaxosMsg::AcceptDecide {
            n: b(1, 1),
            start: 1,
            entries: entries(&[9]),
            ld: 2,
        },
    );
    sp.handle(
        id(1),
        PaxosMsg::AcceptSync {
            n: b(1, 1),
            sync_idx: 0,
            suffix: entries(&[9]),
            ld: 1,
        },
    );
    sp.handle(id(1), PaxosMsg::Decide { n: b(1, 1), ld: 1 });
    assert_eq!(sp.log_len(), 1);
    assert_eq!(sp.decided_idx(), 0);
    assert!(sp.take_outgoing().is_empty());
}

#[test]
fn decide_beyond_the_log_is_capped_and_gaps_are_not_accepted() {
    let mut sp = follower_with(&[1, 2], b(1, 2), 0);
    sp.handle(id(2), PaxosMsg::Decide { n: b(1, 2), ld: 10 });
    assert_eq!(sp.decided_idx(), 2);
    // A batch starting past our end (its predecessor was lost) is not accepted.
    sp.handle(
        id(2),
        PaxosMsg::AcceptDecide {
            n: b(1, 2),
            start: 5,
            entries: entries(&[6]),
            ld: 6,
        },
    );
    assert_eq!((sp.log_len(), sp.decided_idx()), (2, 2));
    // A duplicate overlapping batch only adds what is new.
    sp.handle(
        id(2),
        PaxosMsg::AcceptDecide {
            n: b(1, 2),
            start: 1,
            entries: entries(&[2, 3]),
            ld: 3,
        },
    );
    assert_eq!((sp.log_len(), sp.decided_idx()), (3, 3));
    assert_eq!(cmds(&mut sp), vec![1, 2, 3]);
}

#[test]
fn lost_batch_is_resent_on_tick() {
    let mut sps = group(3);
    elect(&mut sps, b(1, 1));
    run(&mut sps, all);
    sps[0].propose(1).unwrap();
    // The batch to node 3 is lost.
    run(&mut sps, |_, to, m| {
        to == id(3) && matches!(m, PaxosMsg::AcceptDecide { .. })
    });
    sps[0].propose(2).unwrap();
    run(&mut sps, all);
    assert_eq!(sps[2].log_len(), 0, "the gap keeps node 3 from accepting");
    for _ in 0..3 * sps[0].cfg.resend_ticks {
        for sp in sps.iter_mut() {
            sp.tick();
        }
        run(&mut sps, all);
    }
    for sp in sps.iter_mut() {
        assert_eq!(cmds(sp), vec![1, 2]);
    }
}

#[test]
fn prepare_req_resyncs_a_follower_after_reconnect() {
    let mut sps = group(3);
    elect(&mut sps, b(1, 1));
    run(&mut sps, all);
    for v in 0..5 {
        sps[0].propose(v).unwrap();
        run(&mut sps, |_, to, _| to == id(3));
    }
    assert_eq!(sps[2].log_len(), 0);
    sps[2].reconnected(id(1));
    assert!(matches!(
        sps[2].take_outgoing()[..],
        [(_, PaxosMsg::PrepareReq { .. })]
    ));
    sps[2].reconnected(id(1));
    run(&mut sps, all);
    assert_eq!(cmds(&mut sps[2]), vec![0, 1, 2, 3, 4]);
    assert_eq!(sps[2].phase(), Phase::Accept);
}

#[test]
fn a_reconnected_link_to_a_non_member_is_ignored() {
    let mut sps = group(3);
    elect(&mut sps, b(1, 1));
    run(&mut sps, all);
    sps[0].reconnected(id(9));
    assert!(
        sps[0].take_outgoing().is_empty(),
        "no Prepare to another group's node"
    );
    sps[0].reconnected(id(2));
    assert!(matches!(
        sps[0].take_outgoing()[..],
        [(_, PaxosMsg::Prepare { .. })]
    ));
}

#[test]
fn proposals_between_drains_go_out_in_one_batch() {
    let mut sps = group(3);
    elect(&mut sps, b(1, 1));
    run(&mut sps, all);
    for v in 0..10 {
        sps[0].propose(v).unwrap();
    }
    let out = sps[0].take_outgoing();
    assert_eq!(out.len(), 2, "one AcceptDecide per follower");
    for (_, m) in &out {
        assert!(matches!(m, PaxosMsg::AcceptDecide { entries, .. } if entries.len() == 10));
    }
}

#[test]
fn follower_forwards_proposals_to_the_leader() {
    let mut sps = group(3);
    assert_eq!(sps[1].propose(1), Err(ProposeError::NoLeader));
    elect(&mut sps, b(1, 1));
    run(&mut sps, all);
    sps[1].propose(5).unwrap();
    sps[2].propose(6).unwrap();
    run(&mut sps, all);
    for sp in sps.iter_mut() {
        assert_eq!(cmds(sp), vec![5, 6]);
    }
}

#[test]
fn stopsign_seals_the_log() {
    let mut sps = group(3);
    elect(&mut sps, b(1, 1));
    run(&mut sps, all);
    sps[0].propose(1).unwrap();
    let ss = StopSign {
        next_config: 7,
        members: vec![id(1), id(2), id(4)],
        metadata: vec![1],
    };
    sps[0].reconfigure(ss.clone()).unwrap();
    assert_eq!(
        sps[0].propose(2),
        Err(ProposeError::Sealed { next_config: 7 })
    );
    run(&mut sps, all);
    for sp in sps.iter_mut() {
        assert_eq!(sp.decided_stopsign(), Some(&ss));
        assert!(matches!(
            sp.propose(3),
            Err(ProposeError::Sealed { next_config: 7 })
        ));
        let d = sp.take_decided();
        assert_eq!(d.len(), 2);
        assert!(d[1].1.is_stopsign());
    }
    // A new leader cannot append either.
    elect(&mut sps, b(2, 2));
    run(&mut sps, all);
    assert_eq!(
        sps[1].propose(4),
        Err(ProposeError::Sealed { next_config: 7 })
    );
    assert_eq!(sps[1].log_len(), 2);
}

#[test]
fn log_is_trimmed_to_what_every_member_decided() {
    let mut sps = group(3);
    elect(&mut sps, b(1, 1));
    run(&mut sps, all);
    for v in 0..6 {
        sps[0].propose(v).unwrap();
        run(&mut sps, all);
        for sp in sps.iter_mut() {
            sp.take_decided();
        }
    }
    // One more round so the leader learns every follower's decided index and announces it.
    sps[0].propose(6).unwrap();
    run(&mut sps, all);
    for sp in sps.iter_mut() {
        sp.take_decided();
    }
    run(&mut sps, all);
    for sp in &sps {
        assert!(
            sp.trimmed_idx() >= 6,
            "trimmed only to {}",
            sp.trimmed_idx()
        );
        assert_eq!(sp.log_len(), 7, "indices stay absolute");
        assert_eq!(sp.entry(5), None, "compacted");
    }
    // A crashed-silent member stops compaction at what it decided.
    sps[0].propose(7).unwrap();
    run(&mut sps, |_, to, _| to == id(3));
    sps[0].take_decided();
    assert!(sps[0].trimmed_idx() <= sps[2].decided_idx());
}

#[test]
fn new_leader_keeps_everything_decided() {
    let mut sps = group(3);
    elect(&mut sps, b(1, 1));
    run(&mut sps, all);
    sps[0].propose(1).unwrap();
    run(&mut sps, all);
    // Node 1 appends 2 but only node 2 accepts it, then node 1 is gone.
    sps[0].propose(2).unwrap();
    run(&mut sps, |from, to, _| to == id(3) || from == id(3));
    let decided = sps[0].decided_idx();
    assert_eq!(decided, 2);
    sps.truncate(3);
    let mut rest: Vec<Sp> = sps.drain(1..).collect();
    for sp in rest.iter_mut() {
        sp.handle_leader(b(2, 3));
    }
    let mut nodes = vec![group(3).remove(0)];
    nodes.append(&mut rest);
    // Node 1 is replaced by a blank that receives nothing: drop all its traffic.
    run(&mut nodes, |from, to, _| from == id(1) || to == id(1));
    nodes[2].propose(3).unwrap();
    run(&mut nodes, |from, to, _| from == id(1) || to == id(1));
    assert_eq!(cmds(&mut nodes[1]), vec![1, 2, 3]);
    assert_eq!(cmds(&mut nodes[2]), vec![1, 2, 3]);
}

#[test]
fn elected_with_too_low_a_ballot_asks_for_a_higher_one() {
    let mut sps = group(3);
    sps[0].handle(
        id(2),
        PaxosMsg::Prepare {
            n: b(4, 2),
            ld: 0,
            acc_rnd: Ballot::ZERO,
            log_len: 0,
        },
    );
    sps[0].handle_leader(b(3, 1));
    assert_eq!(sps[0].role(), Role::Follower);
    assert_eq!(sps[0].take_ballot_hint(), Some(b(4, 2)));
    // A Nack from an acceptor promised higher also yields a hint.
    let mut sps = group(3);
    elect(&mut sps[..1], b(2, 1));
    sps[0].handle(
        id(2),
        PaxosMsg::Nack {
            n: b(2, 1),
            promised: b(5, 3),
        },
    );
    assert_eq!(sps[0].take_ballot_hint(), Some(b(5, 3)));
}

#[test]
fn single_member_group_decides_alone() {
    let mut sp = Sp::new(SpConfig::new(id(1), vec![id(1)]));
    sp.handle_leader(b(1, 1));
    sp.propose(4).unwrap();
    assert_eq!(cmds(&mut sp), vec![4]);
}

#[test]
fn unsafe_flag_promises_lower_ballots() {
    let mut cfg = SpConfig::new(id(1), vec![id(1), id(2), id(3)]);
    cfg.unsafe_skip_promise_check = true;
    let mut sp = Sp::new(cfg);
    sp.handle(
        id(3),
        PaxosMsg::Prepare {
            n: b(5, 3),
            ld: 0,
            acc_rnd: Ballot::ZERO,
            log_len: 0,
        },
    );
    sp.handle(
        id(2),
        PaxosMsg::Prepare {
            n: b(2, 2),
            ld: 0,
            acc_rnd: Ballot::ZERO,
            log_len: 0,
        },
    );
    assert_eq!(sp.promised(), b(2, 2));
}

#[test]
fn messages_round_trip_through_postcard() {
    let m: PaxosMsg<u32> = PaxosMsg::AcceptDecide {
        n: b(3, 2),
        start: 4,
        entries: entries(&[1, 2]),
        ld: 4,
    };
    let bytes = postcard::to_allocvec(&m).unwrap();
    assert_eq!(postcard::from_bytes::<PaxosMsg<u32>>(&bytes).unwrap(), m);
}

#[test]
fn stale_accept_sync_never_shrinks_what_was_accepted_in_the_ballot() {
    let n = b(3, 2);
    let mut sp = follower_with(&[1, 2, 3], n, 0);
    assert_eq!(sp.log_len(), 3);
    // Resync in the same ballot (re-promise), then a stale, shorter AcceptSync arrives.
    sp.handle(
        id(2),
        PaxosMsg::Prepare {
            n,
            ld: 0,
            acc_rnd: n,
            log_len: 3,
        },
    );
    assert_eq!(sp.phase(), Phase::Prepare);
    sp.handle(
        id(2),
        PaxosMsg::AcceptSync {
            n,
            sync_idx: 0,
            suffix: entries(&[1]),
            ld: 0,
        },
    );
    assert_eq!(sp.log_len(), 3, "a same-ballot sync only extends");
    assert_eq!(sp.phase(), Phase::Accept);
}

#[test]
fn first_sync_of_a_ballot_keeps_the_decided_prefix() {
    // Decided [1, 2] of [1, 2, 9] in round 1; round 2's leader (node 1) syncs from index 1.
    let mut sp = follower_with(&[1, 2, 9], b(1, 2), 2);
    let n = b(2, 1);
    sp.handle(
        id(1),
        PaxosMsg::Prepare {
            n,
            ld: 1,
            acc_rnd: Ballot::ZERO,
            log_len: 1,
        },
    );
    sp.handle(
        id(1),
        PaxosMsg::AcceptSync {
            n,
            sync_idx: 1,
            suffix: entries(&[2, 5]),
            ld: 3,
        },
    );
    let got: Vec<_> = (0..sp.log_len())
        .filter_map(|i| sp.entry(i).cloned())
        .collect();
    assert_eq!(got, entries(&[1, 2, 5]));
    assert_eq!(sp.decided_idx(), 3);
    assert_eq!(sp.accepted_round(), n);
}

#[test]
fn duplicate_promise_in_accept_phase_resends_the_sync() {
    let mut sps = group(3);
    elect(&mut sps, b(1, 1));
    run(&mut sps, all);
    let promise = PaxosMsg::Promise {
        n: b(1, 1),
        acc_rnd: b(1, 1),
        log_len: 0,
        ld: 0,
        sfx_start: 0,
        suffix: vec![],
    };
    sps[0].handle(id(2), promise);
    let out = sps[0].take_outgoing();
    assert!(matches!(out[..], [(to, PaxosMsg::AcceptSync { sync_idx: 0, .. })] if to == id(2)));
}
