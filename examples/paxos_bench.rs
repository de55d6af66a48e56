//! Throughput of the pure Sequence Paxos + Replica cores: a 3-node group in a lossless
//! in-memory simulation (no faults), decided-and-applied commands per second of wall time.
//!
//! Run: `cargo run --release --example paxos_bench [-- TOTAL]` (default 1,000,000 commands per
//! configuration). Every round the leader receives `batch` new client commands; each message
//! hop takes one round (so consensus is pipelined), and every node applies what it decided.
//! The second table encodes and decodes every message with postcard, as the real link does.

use std::time::Instant;

use bytes::Bytes;
use kv_components::ble::Ballot;
use kv_components::replica::Replica;
use kv_components::sequence_paxos::{PaxosMsg, SequencePaxos, SpConfig};
use kv_ports::ids::{ClientId, NodeId};
use kv_ports::kv::{KvCommand, KvOp, RequestId};
use uuid::Uuid;

struct Node {
    sp: SequencePaxos<KvCommand>,
    replica: Replica,
}

fn group() -> Vec<Node> {
    let members: Vec<NodeId> = (1..=3).map(NodeId).collect();
    members
        .iter()
        .map(|&p| Node {
            sp: SequencePaxos::new(SpConfig::new(p, members.clone())),
            replica: Replica::new(),
        })
        .collect()
}

/// One round: drain every node's messages and deliver them, apply what was decided.
/// Returns how many entries the slowest node has applied.
fn round(nodes: &mut [Node], encode: bool) -> u64 {
    let mut msgs = Vec::new();
    for n in nodes.iter_mut() {
        let from = n.sp.pid();
        msgs.extend(
            n.sp.take_outgoing()
                .into_iter()
                .map(|(to, m)| (from, to, m)),
        );
    }
    for (from, to, m) in msgs {
        let m = if encode {
            let bytes = postcard::to_allocvec(&m).expect("encode");
            postcard::from_bytes::<PaxosMsg<KvCommand>>(&bytes).expect("decode")
        } else {
            m
        };
        nodes[(to.0 - 1) as usize].sp.handle(from, m);
    }
    for n in nodes.iter_mut() {
        n.sp.tick();
        for (idx, e) in n.sp.take_decided() {
            n.replica.apply(idx, &e);
        }
        n.replica.take_replies();
    }
    nodes
        .iter()
        .map(|n| n.replica.applied_idx())
        .min()
        .unwrap_or(0)
}

fn command(seq: u64) -> KvCommand {
    let client = ClientId(Uuid::from_u128(u128::from(seq % 64) + 1));
    let key = Bytes::from(format!("key{}", seq % 1000));
    let op = if seq.is_multiple_of(2) {
        KvOp::Put {
            key,
            value: Bytes::from_static(b"0123456789abcdef"),
        }
    } else {
        KvOp::Get { key }
    };
    KvCommand {
        id: RequestId {
            client,
            seq: seq / 64 + 1,
        },
        op,
    }
}

fn bench(batch: u64, total: u64, encode: bool) -> (f64, f64) {
    let mut nodes = group();
    for n in nodes.iter_mut() {
        n.sp.handle_leader(Ballot::new(1, 0, NodeId(1)));
    }
    while !nodes[0].sp.is_accepting_leader() {
        round(&mut nodes, encode);
    }
    let start = Instant::now();
    let (mut seq, mut rounds) = (0u64, 0u64);
    while round(&mut nodes, encode) < total {
        rounds += 1;
        for _ in 0..batch.min(total - seq.min(total)) {
            let cmd = command(seq);
            seq += 1;
            let leader = &mut nodes[0];
            if leader.replica.admit(&cmd).is_none() {
                leader.sp.propose(cmd).expect("leader accepts");
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    (total as f64 / secs, total as f64 / rounds.max(1) as f64)
}

fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    for encode in [false, true] {
        let what = if encode {
            "postcard encode+decode of every message"
        } else {
            "in-memory messages"
        };
        println!("3-node group, {total} commands, {what}");
        println!(
            "{:>8} {:>16} {:>16}",
            "batch", "decided cmds/s", "cmds/round"
        );
        for batch in [1u64, 16, 256, 4096] {
            let total = if batch == 1 { total / 10 } else { total };
            let (rate, per_round) = bench(batch, total, encode);
            println!("{batch:>8} {rate:>16.0} {per_round:>16.1}");
        }
    }
}
