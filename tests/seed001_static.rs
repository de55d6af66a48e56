//! Seed 001's start-up mode with real processes: four `kv node`s given `K=2`, the same `VIEW`
//! and each its `IPPORT`, no coordinator. They form two partitions of two, agree on partition
//! ids and members, spread 1,000 random keys evenly, serve every key through every node on the
//! one port (HTTP, native and the link share it), and refuse bad requests and bad
//! environments with clear errors.

mod cluster_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kv::seed001::STATIC_VIEW;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use cluster_support::StaticViewCluster;

/// Keys written and read back.
const KEYS: usize = 1_000;
/// Requests in flight at once.
const CONCURRENCY: usize = 8;
/// How long one HTTP exchange may take.
const WAIT: Duration = Duration::from_secs(20);

/// An HTTP answer: status and JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

/// Sends `request` raw on a fresh connection and reads the answer until the node closes.
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        answer
    };
    let answer = tokio::time::timeout(WAIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer from {addr} within {WAIT:?}"));
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let start = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |i| i + 4);
    (status, answer[start..].to_vec())
}

/// `method target` with an optional form body, as curl sends it.
async fn call(addr: SocketAddr, method: &str, target: &str, form: Option<&str>) -> Answer {
    let body = form.unwrap_or("");
    let content = match form {
        Some(_) => "Content-Type: application/x-www-form-urlencoded\r\n",
        None => "",
    };
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{content}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = raw(addr, request.as_bytes()).await;
    let body = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{method} {target}: not JSON ({e}): {:?}",
            String::from_utf8_lossy(&body)
        )
    });
    Answer { status, body }
}

fn error(message: &str) -> Value {
    json!({"result": "error", "error": message})
}

fn members(addrs: &[SocketAddr]) -> Value {
    json!({
        "result": "success",
        "partition_members": addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_with_k_2_form_two_partitions_and_serve_seed_001() {
    let cluster = StaticViewCluster::start("seed001-static", 4, 2);
    let view = cluster.view.clone();
    let status = cluster.wait_until_led().await;
    assert_eq!(status.groups.len(), 2, "{}", status.render());

    partitions_agree_on_every_node(&view).await;
    let written = spread_keys(&view).await;
    read_back_through_other_nodes(&view, &written).await;
    bad_requests_are_refused(&view, &written).await;
}

/// Every node answers the same partition list and members, from VIEW order.
async fn partitions_agree_on_every_node(view: &[SocketAddr]) {
    for (i, &node) in view.iter().enumerate() {
        let all = call(node, "GET", "/kv-store/get_all_partition_ids", None).await;
        assert_eq!(all.status, 200);
        assert_eq!(
            all.body,
            json!({"result": "success", "partition_id_list": [0, 1]})
        );
        let mine = call(node, "GET", "/kv-store/get_partition_id", None).await;
        assert_eq!(
            mine.body,
            json!({"result": "success", "partition_id": i / 2}),
            "node {node}"
        );
        for (id, expected) in [(0, &view[..2]), (1, &view[2..])] {
            let form = format!("partition_id={id}");
            let got = call(node, "GET", "/kv-store/get_partition_members", Some(&form)).await;
            assert_eq!(got.status, 200);
            assert_eq!(got.body, members(expected), "node {node}, partition {id}");
        }
    }
}

/// A key written: its value, the node it went through and the partition the answer named.
struct Written {
    key: String,
    value: String,
    node: usize,
    partition: i64,
}

/// PUTs [`KEYS`] random keys, each through a random node; checks the partitions' shares.
async fn spread_keys(view: &[SocketAddr]) -> Vec<Written> {
    let mut rng = SmallRng::seed_from_u64(0x5eed_0001);
    let plan: Vec<(String, String, usize)> = (0..KEYS)
        .map(|i| {
            let key = format!("key-{:016x}", rng.gen::<u64>());
            let value = format!("value {i} {:08x}", rng.gen::<u32>());
            (key, value, rng.gen_range(0..view.len()))
        })
        .collect();
    let written: Vec<Written> = futures::stream::iter(plan)
        .map(|(key, value, node)| async move {
            let form = format!("val={}&causal_payload=", value.replace(' ', "+"));
            let target = format!("/kv-store/{key}");
            let put = call(view[node], "PUT", &target, Some(&form)).await;
            assert_eq!(
                put.status, 200,
                "PUT {key} via {}: {}",
                view[node], put.body
            );
            assert_eq!(put.body["result"], "success");
            assert!(put.body["causal_payload"].is_string());
            assert!(put.body["timestamp"].is_string());
            let partition = put.body["partition_id"].as_i64().expect("a partition id");
            Written {
                key,
                value,
                node,
                partition,
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut counts = BTreeMap::new();
    for w in &written {
        *counts.entry(w.partition).or_insert(0usize) += 1;
    }
    let ids: Vec<i64> = counts.keys().copied().collect();
    assert_eq!(ids, [0, 1], "keys went to {counts:?}");
    let mean = KEYS / 2;
    for (&partition, &n) in &counts {
        assert!(
            n.abs_diff(mean) * 10 <= mean,
            "partition {partition} got {n} of {KEYS} keys (more than 10% off {mean}): {counts:?}"
        );
    }
    println!("{KEYS} keys over the partitions: {counts:?}");
    written
}

/// GETs every key through a node other than the one it was written through.
async fn read_back_through_other_nodes(view: &[SocketAddr], written: &[Written]) {
    let mut rng = SmallRng::seed_from_u64(0x5eed_0002);
    let reads: Vec<(&Written, usize)> = written
        .iter()
        .map(|w| (w, (w.node + rng.gen_range(1..view.len())) % view.len()))
        .collect();
    futures::stream::iter(reads)
        .map(|(w, node)| async move {
            let target = format!("/kv-store/{}", w.key);
            let get = call(view[node], "GET", &target, Some("causal_payload=")).await;
            assert_eq!(
                get.status, 200,
                "GET {} via {}: {}",
                w.key, view[node], get.body
            );
            assert_eq!(get.body["result"], "success");
            assert_eq!(get.body["value"], w.value.as_str(), "{}", w.key);
            assert_eq!(get.body["partition_id"], w.partition, "{}", w.key);
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
}

/// Malformed and impossible requests get seed 001's error answer and change nothing.
async fn bad_requests_are_refused(view: &[SocketAddr], written: &[Written]) {
    let node = view[3];
    let missing = call(node, "GET", "/kv-store/never-written", None).await;
    assert_eq!(
        (missing.status, missing.body),
        (404, error("key does not exist"))
    );

    let no_val = call(node, "PUT", "/kv-store/no-val", Some("causal_payload=")).await;
    assert_eq!(no_val.status, 400);
    assert_eq!(no_val.body["result"], "error");
    let still = call(view[0], "GET", "/kv-store/no-val", None).await;
    assert_eq!(still.status, 404, "a refused PUT wrote nothing");

    let members = "/kv-store/get_partition_members";
    let unknown = call(node, "GET", members, Some("partition_id=7")).await;
    assert_eq!(
        (unknown.status, unknown.body),
        (404, error("partition 7 does not exist"))
    );
    for bad in [Some("partition_id=x"), Some("partition_id=-1"), None] {
        let got = call(node, "GET", members, bad).await;
        assert_eq!(got.status, 400, "{bad:?}: {}", got.body);
        assert_eq!(got.body["result"], "error");
    }

    for change in ["add", "remove"] {
        let target = format!("/kv-store/update_view?type={change}");
        let got = call(node, "PUT", &target, Some("ip_port=127.0.0.1:1")).await;
        assert_eq!(got.status, 503);
        assert_eq!(got.body, error(STATIC_VIEW));
        assert!(STATIC_VIEW.contains("--bootstrap"));
    }
    let bad_type = call(
        node,
        "PUT",
        "/kv-store/update_view?type=grow",
        Some("ip_port=127.0.0.1:1"),
    )
    .await;
    assert_eq!(bad_type.status, 400);
    let wrong_method = call(node, "POST", "/kv-store/some-key", Some("val=v")).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.body["result"], "error");

    // Not HTTP at all, but starting with a letter like a method: the HTTP server refuses it
    // and closes; the node keeps serving.
    let (status, _) = raw(node, b"GARBAGE GARBAGE GARBAGE\r\n\r\n").await;
    assert_eq!(status, 400);

    // Seed 000's JSON messages, /status and /metrics on the same port.
    let first = &written[0];
    let msg = json!({"type": "get", "payload": {"key": first.key}}).to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{msg}",
        msg.len()
    );
    let (status, body) = raw(node, request.as_bytes()).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(
        body,
        json!({"code": "success", "payload": {"key": first.key, "value": first.value}})
    );
    let status_json = call(node, "GET", "/status", None).await;
    assert_eq!(
        status_json.body["partitions"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(status_json.body["me"], "4");
    let (status, metrics) = raw(node, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&metrics).contains("kv_"));

    // Everything written is still there after the refusals.
    let again = call(view[1], "GET", &format!("/kv-store/{}", first.key), None).await;
    assert_eq!(again.body["value"], first.value.as_str());
}

/// `kv node` with this environment (and nothing else) must exit non-zero within a few seconds,
/// its last line on stderr the one-line error; returns that line.
fn refused(env: &[(&str, &str)], args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kv"))
        .arg("node")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kv");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kv node kept running with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "{env:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{env:?}: one line expected, got {stderr:?}");
    lines[0].to_owned()
}

#[test]
fn bad_environments_get_one_line_errors() {
    let view = "127.0.0.1:21001,127.0.0.1:21002,127.0.0.1:21003,127.0.0.1:21004";
    let me = "127.0.0.1:21001";
    let cases: [(&[(&str, &str)], &str); 7] = [
        (
            &[("K", "2"), ("VIEW", view), ("IPPORT", "127.0.0.1:21009")],
            "is not in VIEW",
        ),
        (&[("K", "0"), ("VIEW", view), ("IPPORT", me)], "K must be"),
        (&[("K", "two"), ("VIEW", view), ("IPPORT", me)], "K must be"),
        (
            &[("K", "5"), ("VIEW", view), ("IPPORT", me)],
            "K=5 but VIEW has only 4",
        ),
        (
            &[
                ("K", "1"),
                ("VIEW", "127.0.0.1:21001,localhost:21002"),
                ("IPPORT", me),
            ],
            "VIEW entry 2",
        ),
        (
            &[("K", "1"), ("VIEW", view), ("IPPORT", "127.0.0.1")],
            "IPPORT: \"127.0.0.1\" is not an address",
        ),
        (&[("K", "2"), ("VIEW", view)], "IPPORT is not set"),
    ];
    for (env, expected) in cases {
        let line = refused(env, &[]);
        assert!(line.starts_with("kv: "), "{line}");
        assert!(line.contains(expected), "{env:?}: {line}");
    }
    let line = refused(&[], &[]);
    assert!(line.contains("--bootstrap"), "{line}");
    let line = refused(
        &[("K", "1"), ("VIEW", view), ("IPPORT", me)],
        &["--http", "127.0.0.1:21005"],
    );
    assert!(line.contains("drop --http"), "{line}");
}
