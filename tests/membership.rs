//! Real clusters changing shape: nodes joining with `kv join` (a standby first, then a new
//! group that takes its share of the slots), a node taken out with `kv leave` (its group
//! dissolves, its slots move), and a killed member replaced by the standby. The data written
//! before each change is read back after it.

mod cluster_support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kv::client::Client;
use kv::repl::{execute_line, Outcome};
use kv::service::KvService;
use kv_ports::kv::{KvOp, KvResult};

use cluster_support::{Cluster, FORM_TIMEOUT};

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key-{i}"))
}

fn value(tag: &str, i: usize) -> Bytes {
    Bytes::from(format!("{tag}-{i}"))
}

async fn write_keys(client: &Client, n: usize, tag: &str) {
    for i in 0..n {
        let op = KvOp::Put {
            key: key(i),
            value: value(tag, i),
        };
        assert_eq!(client.execute(op).await, Ok(KvResult::Written), "put {i}");
    }
}

async fn check_keys(client: &Client, n: usize, tag: &str) {
    for i in 0..n {
        let got = client.execute(KvOp::Get { key: key(i) }).await;
        assert_eq!(got, Ok(KvResult::Value(Some(value(tag, i)))), "key {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_and_leave_with_their_data_intact() {
    let mut cluster = Cluster::start("membership", 4, 2);
    cluster.wait_until_led().await;
    let client = cluster.client();
    write_keys(&client, 300, "a").await;

    // A fifth node waits as a standby; a sixth forms a third group with it, which takes a
    // third of the slots from the other two.
    let fifth = cluster.join();
    cluster.wait_for_output(fifth, "is a standby").await;
    let sixth = cluster.join();
    let line = cluster.wait_for_output(sixth, "placed in group 2").await;
    assert!(line.contains("341 slots"), "{line}");
    let status = cluster
        .status_until(FORM_TIMEOUT, |s| s.groups.len() == 3)
        .await;
    let mut slots: Vec<usize> = status.groups.iter().map(|g| g.slots).collect();
    slots.sort_unstable();
    assert_eq!(slots, [341, 341, 342], "{}", status.render());
    assert!(status.standbys.is_empty());
    check_keys(&client, 300, "a").await;
    write_keys(&client, 300, "b").await;

    // `kv leave` takes a member of group 1 out: five nodes make two groups of two, so group
    // 1 dissolves, its slots move to the others and its other member becomes the standby.
    let leaving = status.groups[1].members[0];
    let out = Cluster::run_kv(vec![
        "leave".into(),
        "--bootstrap".into(),
        cluster.coordinator.to_string(),
        "--addr".into(),
        leaving.addr.to_string(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("removed; epoch"), "{stdout}");
    let status = cluster
        .status_until(FORM_TIMEOUT, |s| s.groups.len() == 2)
        .await;
    assert!(
        status.nodes.iter().all(|n| n.id != leaving.id),
        "{}",
        status.render()
    );
    assert_eq!(status.standbys.len(), 1, "{}", status.render());
    assert_eq!(status.groups.iter().map(|g| g.slots).sum::<usize>(), 1024);
    check_keys(&client, 300, "b").await;
    // The node that left is told so by the coordinator and exits cleanly, on its own.
    let left = cluster.index_of(leaving.addr);
    assert_exits_cleanly(&mut cluster, left).await;

    // Asking to remove a node that is not there changes nothing and says why, from the
    // command line and from the REPL.
    let out = Cluster::run_kv(vec![
        "leave".into(),
        "--bootstrap".into(),
        cluster.coordinator.to_string(),
        "--addr".into(),
        "127.0.0.1:1".into(),
    ])
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no node at 127.0.0.1:1"), "{stderr}");
    let shown = execute_line("leave 127.0.0.1:1", &client).await;
    assert_eq!(
        shown,
        Outcome::Print(
            "(error) rejected: leave refused: no node at 127.0.0.1:1 in the cluster".into()
        )
    );

    // A REPL connected to a data node only: the node relays the request to its coordinator.
    let node_only = Client::connect([status.nodes[0].addr], Default::default()).unwrap();
    assert_eq!(execute_line("leave 127.0.0.1:1", &node_only).await, shown);

    // The REPL's `leave` takes out the standby by its short id; status shows the result.
    let standby = status.standbys[0];
    let line = format!("leave {}", kv::client::short_id(standby.id));
    match execute_line(&line, &client).await {
        Outcome::Print(text) => assert!(text.starts_with("removed n"), "{text}"),
        other => panic!("{other:?}"),
    }
    let status = cluster
        .status_until(FORM_TIMEOUT, |s| s.standbys.is_empty())
        .await;
    assert_eq!(status.nodes.len(), 4, "{}", status.render());
    check_keys(&client, 300, "b").await;
    let left = cluster.index_of(standby.addr);
    assert_exits_cleanly(&mut cluster, left).await;
}

/// Node `i` was removed from the cluster: its process exits with status 0 within seconds,
/// saying why in its log.
async fn assert_exits_cleanly(cluster: &mut Cluster, i: usize) {
    let started = Instant::now();
    let status = cluster.wait_exit(i, Duration::from_secs(20)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "node {} did not exit cleanly after its removal: {status:?}",
        i + 1
    );
    let log = std::fs::read_to_string(cluster.nodes[i].log().expect("a log")).unwrap();
    assert!(
        log.contains("removed from the cluster by the coordinator at"),
        "{log}"
    );
    eprintln!(
        "node {} exited {:?} after its removal",
        i + 1,
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_is_replaced_by_the_standby() {
    let mut cluster = Cluster::start_with("replace", 7, 3, &["--grace-ms", "1000"]);
    let status = cluster.wait_until_led().await;
    assert_eq!((status.groups.len(), status.standbys.len()), (2, 1));
    let client = cluster.client();
    write_keys(&client, 100, "a").await;
    let victim = status.groups[0].members[1];
    let standby = status.standbys[0];
    let killed = Instant::now();
    cluster.kill(victim.addr);
    let status = cluster
        .status_until(FORM_TIMEOUT, |s| s.standbys.is_empty())
        .await;
    eprintln!("member replaced {:?} after the kill", killed.elapsed());
    let group = &status.groups[0];
    assert_eq!(group.members.len(), 3, "{}", status.render());
    assert!(group.members.contains(&standby), "{}", status.render());
    assert!(!group.members.contains(&victim), "{}", status.render());
    assert!(status.under_replicated.is_empty(), "{}", status.render());
    let client = cluster.client();
    check_keys(&client, 100, "a").await;
}
