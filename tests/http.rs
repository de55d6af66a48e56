//! The HTTP front end over an in-memory store: seed 001's REST API byte for byte (answers and
//! errors), seed 000's JSON messages, `/status`, `/metrics`, and the key spread over
//! partitions. Requests are hand-written HTTP/1.1 over TCP, one connection each.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use kv::http::{self, ClusterInfo, HttpState, StaticCluster, ViewChange, ViewChanged, FIXED_VIEW};
use kv::service::MemoryService;
use kv_components::bootstrap::formation::form;
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::kv::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use kv_ports::membership::{NodeInfo, SlotMap};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A fake node: link, native and HTTP addresses derived from its number.
fn node(i: u64) -> NodeInfo {
    let addr = |port: u64| format!("10.0.0.{i}:{port}").parse().unwrap();
    NodeInfo {
        id: NodeId(i),
        link: addr(9000),
        client: addr(7000),
        resp: None,
        http: Some(addr(8080)),
    }
}

/// A view seed 001 style: nodes by HTTP address, groups of `K` formed afresh on every change.
struct TestCluster {
    state: Mutex<(Vec<NodeInfo>, SlotMap)>,
    me: NodeId,
    replication: u32,
}

impl TestCluster {
    fn new(nodes: Vec<NodeInfo>, replication: u32, me: NodeId) -> TestCluster {
        let map = form(&nodes, replication).unwrap();
        TestCluster {
            state: Mutex::new((nodes, map)),
            me,
            replication,
        }
    }
}

impl ClusterInfo for TestCluster {
    fn map(&self) -> SlotMap {
        self.state.lock().unwrap().1.clone()
    }

    fn me(&self) -> Option<NodeId> {
        Some(self.me)
    }

    fn status_json(&self) -> BoxFuture<'static, Value> {
        let status = http::status_json(&self.map(), Some(self.me), None, None);
        Box::pin(async move { status })
    }

    fn update_view(&self, change: ViewChange) -> BoxFuture<'static, Result<ViewChanged, String>> {
        let mut state = self.state.lock().unwrap();
        let (nodes, map) = &mut *state;
        let (added, result) = match change {
            ViewChange::Add(addr) => {
                let next = nodes.iter().map(|n| n.id.0).max().unwrap_or(0) + 1;
                let mut info = node(next);
                info.http = Some(addr);
                nodes.push(info);
                (Some(NodeId(next)), Ok(()))
            }
            ViewChange::Remove(addr) => match nodes.iter().position(|n| n.http == Some(addr)) {
                Some(i) => {
                    nodes.remove(i);
                    (None, Ok(()))
                }
                None => (None, Err(format!("{addr} is not in the view"))),
            },
        };
        let result = result.and_then(|()| {
            *map = form(nodes, self.replication).map_err(|e| e.to_string())?;
            Ok(ViewChanged {
                partition_id: added.and_then(|n| map.group_of_node(n)),
                number_of_partitions: map.groups.len(),
            })
        });
        Box::pin(async move { result })
    }
}

/// A server on a free port; stops when dropped.
struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(cluster: Arc<dyn ClusterInfo>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = HttpState {
        service: Arc::new(MemoryService::new()),
        cluster,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        http::serve(listener, state, shutdown).await.unwrap();
    });
    Server { addr, _stop: stop }
}

fn four_nodes() -> Arc<TestCluster> {
    Arc::new(TestCluster::new((1..=4).map(node).collect(), 2, NodeId(1)))
}

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw bytes as a whole request and reads the answer to the end (within 20 s).
async fn raw(addr: SocketAddr, request: &[u8]) -> Answer {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no answer to {}",
                String::from_utf8_lossy(&request[..request.len().min(200)])
            )
        });
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    let mut body = response[split + 4..].to_vec();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers: head,
        body,
    }
}

fn dechunk(mut input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = input.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&input[..line]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&input[line + 2..line + 2 + size]);
        input = &input[line + 2 + size + 2..];
    }
}

/// One request with an optional form body, as `curl -X METHOD -d BODY` sends it.
async fn call(addr: SocketAddr, method: &str, target: &str, form: Option<&str>) -> Answer {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(form) = form {
        request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        request.push_str(&format!("Content-Length: {}\r\n\r\n{form}", form.len()));
    } else {
        request.push_str("\r\n");
    }
    raw(addr, request.as_bytes()).await
}

/// A seed 000 message on `POST /`.
async fn message(addr: SocketAddr, body: &str) -> Answer {
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(addr, request.as_bytes()).await
}

fn error(message: &str) -> Value {
    json!({ "result": "error", "error": message })
}

#[tokio::test]
async fn key_operations_answer_as_seed_001_says() {
    let cluster = four_nodes();
    let server = start(cluster.clone()).await;
    let addr = server.addr;
    let partition = i64::from(cluster.map().group_of_key(b"foo").unwrap().0);

    let put = call(
        addr,
        "PUT",
        "/kv-store/foo",
        Some("val=bar&causal_payload="),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert!(put
        .headers
        .to_ascii_lowercase()
        .contains("application/json"));
    let body = put.json();
    let fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        put.text().find("\"result\""),
        Some(1),
        "result comes first: {}",
        put.text()
    );
    assert_eq!(body["result"], "success");
    assert_eq!(body["partition_id"], partition);
    assert_eq!(body["causal_payload"], format!("1.{partition}"));
    let stamp: u64 = body["timestamp"].as_str().unwrap().parse().unwrap();
    assert!(stamp > 1_600_000_000);
    let mut sorted = fields.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["causal_payload", "partition_id", "result", "timestamp"]
    );

    // curl -X GET -d 'causal_payload=...': the body of a GET is read and ignored.
    let get = call(addr, "GET", "/kv-store/foo", Some("causal_payload=1.0.0.4")).await;
    assert_eq!(get.status, 200);
    let body = get.json();
    assert_eq!(body["result"], "success");
    assert_eq!(body["value"], "bar");
    assert_eq!(body["partition_id"], partition);
    assert!(body["causal_payload"].is_string() && body["timestamp"].is_string());
    assert!(get
        .text()
        .starts_with(r#"{"result":"success","value":"bar","partition_id":"#));

    // The value is overwritten; form encoding is decoded; the query string works too.
    let put = call(
        addr,
        "PUT",
        "/kv-store/foo?val=ignored",
        Some("val=a+b%26c%3D"),
    )
    .await;
    assert_eq!(put.status, 200);
    let get = call(addr, "GET", "/kv-store/foo?causal_payload=x", None).await;
    assert_eq!(get.json()["value"], "a b&c=");
    let put = call(addr, "PUT", "/kv-store/q?val=from-query", None).await;
    assert_eq!(put.status, 200);
    assert_eq!(
        call(addr, "GET", "/kv-store/q", None).await.json()["value"],
        "from-query"
    );
    // An empty value is a value.
    assert_eq!(
        call(addr, "PUT", "/kv-store/empty", Some("val="))
            .await
            .status,
        200
    );
    assert_eq!(
        call(addr, "GET", "/kv-store/empty", None).await.json()["value"],
        ""
    );

    // Keys are the percent-decoded rest of the path, slashes included.
    let put = call(addr, "PUT", "/kv-store/dir/a%20b", Some("val=1")).await;
    assert_eq!(put.status, 200);
    let partition = i64::from(cluster.map().group_of_key(b"dir/a b").unwrap().0);
    assert_eq!(put.json()["partition_id"], partition);
    assert_eq!(
        call(addr, "GET", "/kv-store/dir/a%20b", None).await.json()["value"],
        "1"
    );

    // A JSON body is read like a form.
    let json = r#"{"val":"jv"}"#;
    let request = format!(
        "PUT /kv-store/js HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
        json.len()
    );
    assert_eq!(raw(addr, request.as_bytes()).await.status, 200);
    assert_eq!(
        call(addr, "GET", "/kv-store/js", None).await.json()["value"],
        "jv"
    );

    // Delete (an extension), then the key is missing.
    let del = call(addr, "DELETE", "/kv-store/foo", None).await;
    assert_eq!(del.status, 200);
    assert_eq!(del.json()["result"], "success");
    let missing = call(addr, "GET", "/kv-store/foo", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json(), error("key does not exist"));
    assert_eq!(
        missing.text(),
        r#"{"result":"error","error":"key does not exist"}"#
    );
    let again = call(addr, "DELETE", "/kv-store/foo", None).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.json(), error("key does not exist"));
}

#[tokio::test]
async fn bad_key_requests_are_refused_and_change_nothing() {
    let server = start(four_nodes()).await;
    let addr = server.addr;

    // No val.
    for form in [None, Some("causal_payload="), Some("value=x")] {
        let answer = call(addr, "PUT", "/kv-store/k", form).await;
        assert_eq!(answer.status, 400, "{form:?}");
        assert_eq!(answer.json()["result"], "error");
        assert!(answer.json()["error"].as_str().unwrap().contains("val"));
    }
    assert_eq!(call(addr, "GET", "/kv-store/k", None).await.status, 404);

    // Oversized value and key.
    let big = "v".repeat(MAX_VALUE_BYTES + 1);
    let answer = call(addr, "PUT", "/kv-store/k", Some(&format!("val={big}"))).await;
    assert_eq!(answer.status, 400);
    assert!(answer.json()["error"].as_str().unwrap().contains("value"));
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    let answer = call(addr, "PUT", &format!("/kv-store/{long}"), Some("val=1")).await;
    assert_eq!(answer.status, 400);
    assert!(answer.json()["error"].as_str().unwrap().contains("key"));
    assert_eq!(call(addr, "GET", "/kv-store/k", None).await.status, 404);

    // A declared body beyond the limit is refused before it is read.
    let request = "PUT /kv-store/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 999999999\r\n\r\nval=1";
    let answer = raw(addr, request.as_bytes()).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["result"], "error");

    // No key, wrong methods, unknown paths, malformed JSON bodies.
    for (method, path, status) in [
        ("GET", "/kv-store/", 400),
        ("PUT", "/kv-store", 400),
        ("POST", "/kv-store/k", 405),
        ("PATCH", "/kv-store/k", 405),
        ("PUT", "/kv-store/get_partition_id", 405),
        ("GET", "/kv-store/update_view", 405),
        ("GET", "/nowhere", 404),
        ("POST", "/status", 405),
    ] {
        let answer = call(addr, method, path, Some("val=1")).await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.text());
        assert_eq!(answer.json()["result"], "error", "{method} {path}");
    }
    let request = "PUT /kv-store/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"val";
    let answer = raw(addr, request.as_bytes()).await;
    assert_eq!(answer.status, 400);
    assert!(answer.json()["error"].as_str().unwrap().contains("JSON"));

    // Odd encodings never panic: stray percent signs, bytes that are not UTF-8.
    assert_eq!(
        call(addr, "PUT", "/kv-store/%", Some("val=%zz%"))
            .await
            .status,
        200
    );
    assert_eq!(
        call(addr, "GET", "/kv-store/%25", None).await.json()["value"],
        "%zz%"
    );
    assert_eq!(
        call(addr, "PUT", "/kv-store/%ff%fe", Some("val=%ff"))
            .await
            .status,
        200
    );
    assert_eq!(
        call(addr, "GET", "/kv-store/%ff%fe", None).await.json()["value"],
        "\u{fffd}"
    );
    // The server still answers.
    assert_eq!(call(addr, "GET", "/kv-store/k", None).await.status, 404);
}

#[tokio::test]
async fn partition_queries_answer_from_the_map() {
    let cluster = four_nodes();
    let server = start(cluster.clone()).await;
    let addr = server.addr;
    let map = cluster.map();
    assert_eq!(map.groups.len(), 2);

    let mine = call(addr, "GET", "/kv-store/get_partition_id", None).await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.text(), r#"{"result":"success","partition_id":0}"#);

    let all = call(addr, "GET", "/kv-store/get_all_partition_ids", None).await;
    assert_eq!(all.status, 200);
    assert_eq!(
        all.text(),
        r#"{"result":"success","partition_id_list":[0,1]}"#
    );

    // curl -X GET .../get_partition_members -d 'partition_id=1'
    let members = call(
        addr,
        "GET",
        "/kv-store/get_partition_members",
        Some("partition_id=1"),
    )
    .await;
    assert_eq!(members.status, 200);
    let expected: Vec<String> = map
        .members_of(GroupId(1))
        .iter()
        .map(|&m| map.node(m).unwrap().http.unwrap().to_string())
        .collect();
    assert_eq!(expected, ["10.0.0.3:8080", "10.0.0.4:8080"]);
    assert_eq!(
        members.json(),
        json!({ "result": "success", "partition_members": expected })
    );
    let by_query = call(
        addr,
        "GET",
        "/kv-store/get_partition_members?partition_id=0",
        None,
    )
    .await;
    assert_eq!(
        by_query.json()["partition_members"],
        json!(["10.0.0.1:8080", "10.0.0.2:8080"])
    );

    for (form, status) in [
        (None, 400),
        (Some("partition_id="), 400),
        (Some("partition_id=x"), 400),
        (Some("partition_id=-1"), 400),
        (Some("partition_id=7"), 404),
    ] {
        let answer = call(addr, "GET", "/kv-store/get_partition_members", form).await;
        assert_eq!(answer.status, status, "{form:?}");
        assert_eq!(answer.json()["result"], "error", "{form:?}");
        assert!(answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("partition"));
    }
}

#[tokio::test]
async fn a_standby_has_no_partition_and_an_unformed_store_is_unavailable() {
    let nodes: Vec<NodeInfo> = (1..=5).map(node).collect();
    let map = form(&nodes, 2).unwrap();
    assert_eq!(map.standbys, [NodeId(5)]);
    let proxy = Arc::new(StaticCluster::new(map, Some(NodeId(5))));
    let server = start(proxy.clone()).await;
    let answer = call(server.addr, "GET", "/kv-store/get_partition_id", None).await;
    assert_eq!(answer.text(), r#"{"result":"success","partition_id":-1}"#);
    // A proxy serves keys all the same.
    assert_eq!(
        call(server.addr, "PUT", "/kv-store/k", Some("val=v"))
            .await
            .status,
        200
    );

    proxy.set_map(SlotMap::empty(2));
    for path in ["get_partition_id", "get_all_partition_ids"] {
        let answer = call(server.addr, "GET", &format!("/kv-store/{path}"), None).await;
        assert_eq!(answer.status, 503);
        assert!(answer.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("key value store is not available"));
    }
}

#[tokio::test]
async fn view_changes_answer_as_seed_001_says() {
    // A fixed view refuses every change with the error answer.
    let fixed = Arc::new(StaticCluster::new(four_nodes().map(), Some(NodeId(1))));
    let server = start(fixed).await;
    let answer = call(
        server.addr,
        "PUT",
        "/kv-store/update_view?type=add",
        Some("ip_port=10.0.0.9:8080"),
    )
    .await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json(), error(FIXED_VIEW));

    // A view that changes: 4 nodes, K = 2.
    let cluster = four_nodes();
    let server = start(cluster.clone()).await;
    let addr = server.addr;
    let add = |ip: &'static str| async move {
        call(
            addr,
            "PUT",
            "/kv-store/update_view?type=add",
            Some(&format!("ip_port={ip}")),
        )
        .await
    };
    // The fifth node is a proxy; the sixth makes a third partition.
    let answer = add("10.0.0.5:8080").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.text(),
        r#"{"result":"success","partition_id":-1,"number_of_partitions":2}"#
    );
    let answer = add("10.0.0.6:8080").await;
    assert_eq!(
        answer.text(),
        r#"{"result":"success","partition_id":2,"number_of_partitions":3}"#
    );
    let all = call(addr, "GET", "/kv-store/get_all_partition_ids", None).await;
    assert_eq!(all.json()["partition_id_list"], json!([0, 1, 2]));
    let answer = call(
        addr,
        "PUT",
        "/kv-store/update_view?type=remove",
        Some("ip_port=10.0.0.6:8080"),
    )
    .await;
    assert_eq!(
        answer.text(),
        r#"{"result":"success","number_of_partitions":2}"#
    );
    // The type may come in the body too.
    let answer = call(
        addr,
        "PUT",
        "/kv-store/update_view",
        Some("type=remove&ip_port=10.0.0.5:8080"),
    )
    .await;
    assert_eq!(answer.json()["number_of_partitions"], 2);

    // Errors: unknown node (from the cluster), bad type, missing or malformed ip_port.
    let answer = call(
        addr,
        "PUT",
        "/kv-store/update_view?type=remove",
        Some("ip_port=10.0.0.99:8080"),
    )
    .await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json(), error("10.0.0.99:8080 is not in the view"));
    for (target, form) in [
        (
            "/kv-store/update_view?type=grow",
            Some("ip_port=10.0.0.7:8080"),
        ),
        ("/kv-store/update_view", Some("ip_port=10.0.0.7:8080")),
        ("/kv-store/update_view?type=add", None),
        ("/kv-store/update_view?type=add", Some("ip_port=nonsense")),
        ("/kv-store/update_view?type=add", Some("ip_port=10.0.0.7")),
    ] {
        let answer = call(addr, "PUT", target, form).await;
        assert_eq!(answer.status, 400, "{target} {form:?}");
        assert_eq!(answer.json()["result"], "error");
    }
    assert_eq!(
        cluster.map().groups.len(),
        2,
        "bad requests changed nothing"
    );
}

#[tokio::test]
async fn seed_000_messages_put_get_cas_delete() {
    let server = start(four_nodes()).await;
    let addr = server.addr;

    let put = message(addr, r#"{"type":"put","payload":{"key":"k","value":"v"}}"#).await;
    assert_eq!(put.status, 200);
    assert_eq!(put.text(), r#"{"code":"success"}"#);
    let get = message(addr, r#"{"type":"get","payload":{"key":"k"}}"#).await;
    assert_eq!(
        get.text(),
        r#"{"code":"success","payload":{"key":"k","value":"v"}}"#
    );

    let missing = message(addr, r#"{"type":"get","payload":{"key":"nope"}}"#).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        json!({"code":"fail","payload":{"message":"key not found","key":"nope"}})
    );

    let cas = |body: &'static str| message(addr, body);
    let swapped = cas(r#"{"type":"cas","payload":{"key":"k","expected":"v","value":"w"}}"#).await;
    assert_eq!(
        swapped.json(),
        json!({"code":"success","payload":{"key":"k","swapped":true}})
    );
    let stale = cas(r#"{"type":"cas","payload":{"key":"k","expected":"v","value":"x"}}"#).await;
    assert_eq!(
        stale.json(),
        json!({"code":"success","payload":{"key":"k","swapped":false}})
    );
    let absent = cas(r#"{"type":"cas","payload":{"key":"new","expected":null,"value":"1"}}"#).await;
    assert_eq!(absent.json()["payload"]["swapped"], true);
    let again = cas(r#"{"type":"cas","payload":{"key":"new","expected":null,"value":"2"}}"#).await;
    assert_eq!(again.json()["payload"]["swapped"], false);
    let get = message(addr, r#"{"type":"get","payload":{"key":"k"}}"#).await;
    assert_eq!(get.json()["payload"]["value"], "w");

    let del = message(addr, r#"{"type":"delete","payload":{"key":"k"}}"#).await;
    assert_eq!(
        del.json(),
        json!({"code":"success","payload":{"key":"k","deleted":true}})
    );
    let del = message(addr, r#"{"type":"delete","payload":{"key":"k"}}"#).await;
    assert_eq!(del.json()["payload"]["deleted"], false);
    assert_eq!(
        message(addr, r#"{"type":"get","payload":{"key":"k"}}"#)
            .await
            .status,
        404
    );

    // The HTTP API and the JSON messages share the store.
    assert_eq!(
        call(addr, "GET", "/kv-store/new", None).await.json()["value"],
        "1"
    );

    // Malformed messages: 400 and a reason, never a panic.
    for body in [
        "",
        "{",
        "[]",
        "null",
        r#"{"payload":{"key":"k"}}"#,
        r#"{"type":7,"payload":{"key":"k"}}"#,
        r#"{"type":"get"}"#,
        r#"{"type":"get","payload":"k"}"#,
        r#"{"type":"get","payload":{}}"#,
        r#"{"type":"get","payload":{"key":["k"]}}"#,
        r#"{"type":"put","payload":{"key":"k"}}"#,
        r#"{"type":"put","payload":{"key":"","value":"v"}}"#,
        r#"{"type":"cas","payload":{"key":"k","value":"v"}}"#,
        r#"{"type":"frobnicate","payload":{"key":"k"}}"#,
    ] {
        let answer = message(addr, body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        let reply = answer.json();
        assert_eq!(reply["code"], "fail", "{body}");
        assert!(
            reply["payload"]["message"].as_str().unwrap().len() > 3,
            "{body}"
        );
    }
    assert_eq!(
        message(addr, r#"{"type":"get","payload":{"key":"k"}}"#)
            .await
            .status,
        404,
        "nothing was written"
    );
    let wrong = call(addr, "GET", "/", None).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.json()["code"], "fail");
}

#[tokio::test]
async fn status_and_metrics() {
    let server = start(four_nodes()).await;
    let addr = server.addr;
    assert_eq!(
        call(addr, "PUT", "/kv-store/m", Some("val=1")).await.status,
        200
    );
    assert_eq!(call(addr, "GET", "/kv-store/m", None).await.status, 200);
    assert_eq!(call(addr, "PUT", "/kv-store/m", None).await.status, 400);

    let status = call(addr, "GET", "/status", None).await;
    assert_eq!(status.status, 200);
    let status = status.json();
    assert_eq!(status["formed"], true);
    assert_eq!(status["epoch"], 1);
    assert_eq!(status["me"], "1");
    assert_eq!(status["partitions"].as_array().unwrap().len(), 2);
    assert_eq!(
        status["partitions"][1]["members"][0]["http"],
        "10.0.0.3:8080"
    );
    assert_eq!(status["partitions"][0]["slots"], 512);

    let metrics = call(addr, "GET", "/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.headers.contains("text/plain"));
    let text = metrics.text();
    for line in [
        r#"kv_ops_total{kind="put",outcome="ok",frontend="http"}"#,
        r#"kv_ops_total{kind="get",outcome="ok",frontend="http"}"#,
        r#"kv_ops_total{kind="put",outcome="rejected",frontend="http"}"#,
        r#"kv_op_latency_seconds_bucket{kind="get",frontend="http",le="0.001"}"#,
        "# TYPE kv_ops_total counter",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_keys_spread_evenly_over_partitions() {
    let cluster = four_nodes();
    let server = start(cluster).await;
    let addr = server.addr;
    let mut rng = SmallRng::seed_from_u64(0x5eed_0001);
    let keys: Vec<String> = (0..1000)
        .map(|_| {
            let len = rng.gen_range(4..16);
            (0..len)
                .map(|_| char::from(rng.sample(rand::distributions::Alphanumeric)))
                .collect()
        })
        .collect();
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for chunk in keys.chunks(50) {
        let puts = chunk.iter().map(|key| async move {
            let answer = call(addr, "PUT", &format!("/kv-store/{key}"), Some("val=x")).await;
            assert_eq!(answer.status, 200, "{key}: {}", answer.text());
            answer.json()["partition_id"].as_i64().unwrap()
        });
        for partition in futures::future::join_all(puts).await {
            *counts.entry(partition).or_default() += 1;
        }
    }
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), [0, 1]);
    for (partition, count) in &counts {
        assert!(
            (450..=550).contains(count),
            "partition {partition} got {count} of 1000 keys: {counts:?}"
        );
    }
    // A GET reports the same partition as the PUT did.
    let get = call(addr, "GET", &format!("/kv-store/{}", keys[0]), None).await;
    assert_eq!(get.json()["value"], "x");
}

#[tokio::test]
async fn serves_handed_connections_and_stops_on_shutdown() {
    // Another task owns the port and hands HTTP connections over.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (handed, streams) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok(accepted) = listener.accept().await {
            if handed.send(accepted).await.is_err() {
                return;
            }
        }
    });
    let state = HttpState {
        service: Arc::new(MemoryService::new()),
        cluster: four_nodes(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(http::serve_on(
        http::HandedStreams::new(streams, addr),
        state,
        async {
            let _ = stopped.await;
        },
    ));
    assert_eq!(
        call(addr, "PUT", "/kv-store/h", Some("val=1")).await.status,
        200
    );
    assert_eq!(
        call(addr, "GET", "/kv-store/h", None).await.json()["value"],
        "1"
    );
    stop.send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

#[tokio::test]
async fn a_node_cluster_follows_its_map_watch() {
    let (maps, watch) = tokio::sync::watch::channel(SlotMap::empty(2));
    // A native address nobody listens on: the status probe fails, the map is shown alone.
    let dead: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cluster = Arc::new(http::NodeCluster::new(NodeId(3), watch, dead));
    let server = start(cluster).await;
    let addr = server.addr;
    let answer = call(addr, "GET", "/kv-store/get_partition_id", None).await;
    assert_eq!(answer.status, 503);

    maps.send_replace(four_nodes().map());
    let answer = call(addr, "GET", "/kv-store/get_partition_id", None).await;
    assert_eq!(answer.text(), r#"{"result":"success","partition_id":1}"#);
    let put = call(addr, "PUT", "/kv-store/k", Some("val=v")).await;
    assert_eq!(
        put.json()["causal_payload"]
            .as_str()
            .unwrap()
            .split('.')
            .next(),
        Some("1")
    );
    let view = call(
        addr,
        "PUT",
        "/kv-store/update_view?type=add",
        Some("ip_port=10.0.0.9:8080"),
    )
    .await;
    assert_eq!(view.json(), error(FIXED_VIEW));
    let status = call(addr, "GET", "/status", None).await.json();
    assert_eq!(status["me"], "3");
    assert_eq!(status["probe"], Value::Null);
    assert!(status["probe_error"].is_string(), "{status}");
    assert_eq!(status["partitions"].as_array().unwrap().len(), 2);
}
