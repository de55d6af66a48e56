//! Real clusters of `kv` processes on loopback: formation, key spread, a recorded bench
//! history checked linearizable, `kill -9` of group members under load, and bad input on the
//! native port.

mod cluster_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv::bench::{self, BenchConfig, Stop};
use kv::checker::{check_history, History, Options, Outcome, Verdict};
use kv::client::{ClientConfig, ClusterStatus, GroupView};
use kv::coordinator::fetch_map;
use kv::service::KvService;
use kv_ports::kv::{KvOp, KvResult};
use kv_ports::membership::{slot_of, Epoch};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use cluster_support::Cluster;

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The native address of a group's leader.
fn leader_addr(group: &GroupView) -> SocketAddr {
    let leader = group.leader.expect("group has a leader");
    group
        .members
        .iter()
        .find(|m| m.id == leader)
        .expect("leader is a member")
        .addr
}

/// Runs a bench of `clients` closed-loop clients for `secs` with a history in `dir`.
async fn bench_with_history(
    cluster: &Cluster,
    clients: usize,
    secs: u64,
    dir: &Path,
) -> (bench::BenchReport, std::path::PathBuf) {
    let history = dir.join("history.jsonl");
    let mut config = BenchConfig::new(Stop::Duration(Duration::from_secs(secs)));
    config.keys = 50;
    config.history = Some(history.clone());
    config.progress = false;
    let sessions: Vec<Arc<dyn KvService>> = (0..clients)
        .map(|_| Arc::new(cluster.client()) as Arc<dyn KvService>)
        .collect();
    let report = bench::run(config, sessions).await.expect("bench runs");
    (report, history)
}

fn check_linearizable(history: &Path) -> History {
    let text = std::fs::read_to_string(history).expect("history written");
    let parsed = History::parse_str(&text).expect("history parses");
    let verdict = check_history(&parsed, Options::default());
    assert_eq!(verdict, Verdict::Linearizable, "{}", history.display());
    parsed
}

/// Operations that completed (`ok: true`) and were called after `after` into the run.
fn completed_after(history: &History, after: Duration) -> usize {
    let after = after.as_nanos() as u64;
    history
        .ops()
        .iter()
        .filter(|op| op.outcome == Outcome::Ok && op.call > after)
        .count()
}

fn assert_two_led_groups_of_three(status: &ClusterStatus) {
    assert_eq!(status.groups.len(), 2, "{}", status.render());
    for g in &status.groups {
        assert_eq!(g.members.len(), 3, "{}", status.render());
        assert!(g.leader.is_some(), "{}", status.render());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_nodes_form_two_groups_serve_every_protocol_and_record_a_linearizable_history() {
    let cluster = Cluster::start("six", 6, 3);
    let status = cluster.wait_until_led().await;
    assert_two_led_groups_of_three(&status);
    let slots: Vec<usize> = status.groups.iter().map(|g| g.slots).collect();
    assert_eq!(slots, vec![512, 512]);

    // 1,000 random keys land on both groups within 10% of even.
    let client = cluster.client();
    let map = client.map().await.expect("the client learned the map");
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut per_group = BTreeMap::new();
    for _ in 0..1000 {
        let key: String = (0..12).map(|_| rng.gen_range('a'..='z')).collect();
        let group = map.group_of_slot(slot_of(key.as_bytes())).unwrap();
        *per_group.entry(group).or_insert(0usize) += 1;
    }
    for (group, n) in &per_group {
        assert!(
            (450..=550).contains(n),
            "group {group} got {n} of 1000 keys"
        );
    }

    // Every operation kind through the client library.
    let put = KvOp::Put {
        key: bytes("a"),
        value: bytes("1"),
    };
    assert_eq!(client.execute(put).await, Ok(KvResult::Written));
    let cas = KvOp::Cas {
        key: bytes("a"),
        expected: Some(bytes("1")),
        new: bytes("2"),
    };
    assert_eq!(client.execute(cas).await, Ok(KvResult::Swapped(true)));
    let get = KvOp::Get { key: bytes("a") };
    assert_eq!(
        client.execute(get).await,
        Ok(KvResult::Value(Some(bytes("2"))))
    );

    // RESP on a node that leads neither group of the key forwards through the router.
    for node in &cluster.nodes {
        let reply = resp(node.resp, b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n").await;
        assert_eq!(reply, b"$1\r\n2\r\n", "RESP GET via {}", node.resp);
    }
    let reply = resp(
        cluster.nodes[0].resp,
        b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$2\r\nhi\r\n",
    )
    .await;
    assert_eq!(reply, b"+OK\r\n");
    let get_b = KvOp::Get { key: bytes("b") };
    assert_eq!(
        client.execute(get_b).await,
        Ok(KvResult::Value(Some(bytes("hi"))))
    );

    // A malformed frame gets an error frame; the node keeps serving.
    let mut raw = TcpStream::connect(cluster.nodes[1].native).await.unwrap();
    raw.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok() && !answer.is_empty(),
        "an error frame, then close"
    );
    let direct =
        kv::client::Client::connect([cluster.nodes[1].native], ClientConfig::default()).unwrap();
    let get = KvOp::Get { key: bytes("a") };
    assert_eq!(
        direct.execute(get).await,
        Ok(KvResult::Value(Some(bytes("2"))))
    );

    // 16 clients for 3 s: a linearizable history.
    let (report, history) = bench_with_history(&cluster, 16, 3, cluster.log_dir()).await;
    assert!(report.total_ops() > 100, "{}", report.render());
    check_linearizable(&history);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_node_per_group_under_load_keeps_the_history_linearizable() {
    let mut cluster = Cluster::start("kill", 6, 3);
    let status = cluster.wait_until_led().await;
    assert_two_led_groups_of_three(&status);
    let leaders: Vec<SocketAddr> = status.groups.iter().map(leader_addr).collect();

    let dir = cluster.log_dir().to_path_buf();
    let started = Instant::now();
    let load = {
        let sessions: Vec<Arc<dyn KvService>> = (0..16)
            .map(|_| Arc::new(cluster.client()) as Arc<dyn KvService>)
            .collect();
        let mut config = BenchConfig::new(Stop::Duration(Duration::from_secs(8)));
        config.keys = 50;
        config.history = Some(dir.join("history.jsonl"));
        config.progress = false;
        tokio::spawn(bench::run(config, sessions))
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = started.elapsed();
    for leader in &leaders {
        cluster.kill(*leader);
    }
    let report = load.await.unwrap().expect("bench runs");
    assert!(report.total_ops() > 100, "{}", report.render());

    let history = check_linearizable(&dir.join("history.jsonl"));
    let after = Duration::from_secs(2) + killed_at;
    let completed_after = completed_after(&history, after);
    assert!(
        completed_after > 50,
        "only {completed_after} operations completed after the re-elections"
    );
    let status = cluster.wait_until_led().await;
    assert!(status
        .groups
        .iter()
        .all(|g| !leaders.contains(&leader_addr(g))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_form_one_group_that_survives_its_leaders_kill() {
    let mut cluster = Cluster::start("three", 3, 3);
    let status = cluster.wait_until_led().await;
    assert_eq!(status.groups.len(), 1, "{}", status.render());
    let client = cluster.client();
    let put = KvOp::Put {
        key: bytes("k"),
        value: bytes("v"),
    };
    assert_eq!(client.execute(put).await, Ok(KvResult::Written));

    let old = leader_addr(&status.groups[0]);
    cluster.kill(old);
    let status = cluster.wait_until_led().await;
    assert_ne!(leader_addr(&status.groups[0]), old);
    let get = KvOp::Get { key: bytes("k") };
    assert_eq!(
        client.execute(get).await,
        Ok(KvResult::Value(Some(bytes("v"))))
    );
    let put = KvOp::Put {
        key: bytes("k"),
        value: bytes("w"),
    };
    assert_eq!(client.execute(put).await, Ok(KvResult::Written));

    // The coordinator is killed and restarted: it forms nothing new but adopts the map the
    // nodes re-report, and no data is lost.
    let map = client.map().await.expect("a map");
    cluster.restart_coordinator(3, 3);
    let deadline = Instant::now() + Duration::from_secs(20);
    let adopted = loop {
        let asked = fetch_map(cluster.coordinator, Epoch(0), Duration::from_secs(1)).await;
        if let Ok(Some(adopted)) = asked {
            break adopted;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted coordinator has no map"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(adopted, map);
    let fresh =
        kv::client::Client::connect([cluster.coordinator], ClientConfig::default()).unwrap();
    let get = KvOp::Get { key: bytes("k") };
    assert_eq!(
        fresh.execute(get).await,
        Ok(KvResult::Value(Some(bytes("w"))))
    );
}

/// Sends one RESP request and reads one reply (replies here are short and arrive whole).
async fn resp(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("RESP reply in time")
        .unwrap();
    buf.truncate(n);
    buf
}
