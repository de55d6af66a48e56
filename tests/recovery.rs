//! A coordinator killed in the middle of a plan's slot moves: the restarted coordinator
//! reconciles the map the nodes re-report with what the groups hold (slots frozen at their
//! source, installed at their destination) before planning anything, so every slot is
//! served again and no key is lost.

mod cluster_support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kv::client::Client;
use kv::service::KvService;
use kv_ports::kv::{KvOp, KvResult};

use cluster_support::{Cluster, FORM_TIMEOUT};

/// Enough keys that every group holds many slots' worth.
const KEYS: usize = 1200;

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key-{i}"))
}

fn value(i: usize) -> Bytes {
    Bytes::from(format!("value-{i}"))
}

async fn write_keys(client: &Client) {
    for i in 0..KEYS {
        let op = KvOp::Put {
            key: key(i),
            value: value(i),
        };
        assert_eq!(client.execute(op).await, Ok(KvResult::Written), "put {i}");
    }
}

async fn check_keys(client: &Client) {
    for i in 0..KEYS {
        let got = client.execute(KvOp::Get { key: key(i) }).await;
        assert_eq!(got, Ok(KvResult::Value(Some(value(i)))), "key {i}");
    }
}

/// Waits until some node's log shows it answered a `Freeze` (a slot move started).
async fn first_freeze(cluster: &Cluster) {
    let deadline = Instant::now() + FORM_TIMEOUT;
    loop {
        let frozen = cluster.nodes.iter().filter_map(|n| n.log()).any(|log| {
            std::fs::read_to_string(log).is_ok_and(|text| {
                text.lines()
                    .any(|l| l.contains("directive answered") && l.contains("Frozen"))
            })
        });
        if frozen {
            return;
        }
        assert!(Instant::now() < deadline, "no slot was frozen");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_during_slot_moves_is_reconciled_on_restart() {
    let mut cluster = Cluster::start("recovery", 4, 2);
    cluster.wait_until_led().await;
    let client = cluster.client();
    write_keys(&client).await;

    // Two more nodes form a third group, which takes a third of the slots; the coordinator
    // dies as soon as the first batch is frozen at its source.
    cluster.join();
    cluster.join();
    first_freeze(&cluster).await;
    cluster.restart_coordinator(2, 4);

    let coordinator_log = cluster.log_dir().join("coordinator-2.log");
    let status = cluster
        .status_until(FORM_TIMEOUT, |s| {
            s.groups.len() == 3 && s.groups.iter().map(|g| g.slots).sum::<usize>() == 1024
        })
        .await;
    let log = std::fs::read_to_string(&coordinator_log).unwrap_or_default();
    for line in log.lines().filter(|l| {
        l.contains("reconcil") || l.contains("moving them again") || l.contains("cut-short")
    }) {
        eprintln!("coordinator-2: {line}");
    }
    assert!(
        log.contains("asking the nodes where their groups stand"),
        "{log}"
    );
    eprintln!("{}", status.render());
    // Every key is readable: every slot is served by the group the map names.
    check_keys(&client).await;
}
