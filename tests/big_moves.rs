//! A slot move far larger than one frame: ~40 MiB written into the slots that move when a
//! second group forms (so one batch of 64 slots holds all of it, five times the native frame
//! limit), then nodes join and the data is read back. Before moves were paged, the batch's
//! data travelled in one frame and the move could never finish: its slots stayed frozen.

mod cluster_support;

use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use kv::client::Client;
use kv::native::frame::MAX_FRAME_BYTES;
use kv::service::KvService;
use kv_ports::kv::{KvOp, KvResult};
use kv_ports::membership::slot_of;

use cluster_support::{Cluster, FORM_TIMEOUT};

/// Values of 64 KiB each.
const VALUE_BYTES: usize = 64 * 1024;
/// 640 of them: 40 MiB.
const KEYS: usize = 640;

/// The first `KEYS` keys hashing into slots 512..576: the first batch that moves when a second
/// group takes half of a lone group's slots (each group keeps its lowest slots).
fn keys() -> Vec<Bytes> {
    (0..)
        .map(|i| Bytes::from(format!("big-{i}")))
        .filter(|k| (512..576).contains(&slot_of(k).0))
        .take(KEYS)
        .collect()
}

/// The value of key number `i`: recognisable bytes, different per key.
fn value(i: usize) -> Bytes {
    let head = format!("value {i}:");
    let mut v = head.into_bytes();
    v.resize(VALUE_BYTES, (i % 251) as u8);
    Bytes::from(v)
}

/// Runs `op` for every key, eight at a time, and checks each answer with `check`.
async fn for_all(
    client: &Client,
    op: impl Fn(usize, &Bytes) -> KvOp,
    check: impl Fn(usize, KvResult),
) {
    let keys = keys();
    let ops: Vec<(usize, KvOp)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (i, op(i, k)))
        .collect();
    let mut answers = futures::stream::iter(ops)
        .map(|(i, op)| async move { (i, client.execute(op).await) })
        .buffer_unordered(8);
    while let Some((i, answer)) = answers.next().await {
        match answer {
            Ok(r) => check(i, r),
            Err(e) => panic!("key {i}: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_larger_than_a_frame_completes_and_keeps_every_pair() {
    let mut cluster = Cluster::start("big-moves", 2, 2);
    cluster.wait_until_led().await;
    let client = cluster.client();
    let total = KEYS * VALUE_BYTES;
    assert!(total > 4 * MAX_FRAME_BYTES, "the batch must dwarf a frame");
    let started = Instant::now();
    for_all(
        &client,
        |i, k| KvOp::Put {
            key: k.clone(),
            value: value(i),
        },
        |i, r| assert_eq!(r, KvResult::Written, "put {i}"),
    )
    .await;
    eprintln!("wrote {} MiB in {:?}", total >> 20, started.elapsed());

    // A third node waits as a standby; a fourth forms a second group with it, which takes
    // slots 512..1024, the first batch of them holding all the data.
    let third = cluster.join();
    cluster.wait_for_output(third, "is a standby").await;
    let moving = Instant::now();
    let fourth = cluster.join();
    let line = cluster.wait_for_output(fourth, "placed in group 1").await;
    assert!(line.contains("512 slots"), "{line}");
    let status = cluster
        .status_until(FORM_TIMEOUT * 2, |s| s.groups.len() == 2)
        .await;
    let took = moving.elapsed();
    let slots: Vec<usize> = status.groups.iter().map(|g| g.slots).collect();
    assert_eq!(slots, [512, 512], "{}", status.render());
    eprintln!(
        "moved 512 slots holding {} MiB (one batch of 64 slots holding all of it) in {took:?}",
        total >> 20
    );
    // The coordinator logs each batch it moved: the big one went in many pages.
    let log = std::fs::read_to_string(cluster.log_dir().join("coordinator.log")).unwrap();
    let batch = format!("pairs={KEYS} ");
    let line = log
        .lines()
        .find(|l| l.contains("slot batch moved") && l.contains(&batch))
        .unwrap_or_else(|| panic!("no batch of {KEYS} pairs in the coordinator's log"));
    let parts: usize = line
        .rsplit("parts=")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    eprintln!("the batch went in {} pages: {line}", parts + 1);
    assert!(parts >= 30, "{line}");

    let reading = Instant::now();
    for_all(
        &client,
        |_, k| KvOp::Get { key: k.clone() },
        |i, r| {
            let want = KvResult::Value(Some(value(i)));
            assert!(r == want, "key {i}: wrong or missing value after the move");
        },
    )
    .await;
    eprintln!("read {} MiB back in {:?}", total >> 20, reading.elapsed());
    // The moved slots are served by the new group: a write there works.
    let k = keys()[0].clone();
    let put = KvOp::Put {
        key: k,
        value: Bytes::from_static(b"after"),
    };
    assert_eq!(client.execute(put).await, Ok(KvResult::Written));
}
