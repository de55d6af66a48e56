//! The in-process gateway: sessions, retries and failures against a fake router, then end to
//! end under the RESP server on real replication groups.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use kameo::actor::ActorRef;
use kv::gateway::{Gateway, GatewayConfig, GatewayService};
use kv::resp::{serve, Dialect};
use kv::service::{KvService, ServiceError};
use kv_components::group::{start_member, GroupMember, MemberConfig};
use kv_components::memory_link::{MemoryLink, MemoryNetwork};
use kv_components::replica::KvStore;
use kv_components::sequence_paxos::component::QueryStatus;
use kv_components::timer::Timer;
use kv_ports::component::connect;
use kv_ports::ids::{ClientId, GroupId, NodeId};
use kv_ports::kv::{
    KvCommand, KvError, KvOp, KvPort, KvReply, KvResult, RequestId, MAX_VALUE_BYTES,
};
use kv_ports::port::ConnectionId;
use kv_ports::supervisor::{spawn_child, start_supervisor, Supervisor};
use kv_ports::testkit::{fake_provider, FakeProvider, Indicate, Requests};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc::error::TryRecvError, oneshot};
use tokio::time::{timeout, Instant};

/// How long a reply may take before the test calls it lost. It only catches hangs: on two
/// shared cores under a parallel build, a burst of pipelined commands has taken over 10 s.
const WAIT: Duration = Duration::from_secs(60);

/// Short timeouts for the tests that wait out a deadline. (Real time: the root crate's tokio
/// lacks the `test-util` feature that a paused clock needs.)
fn quick() -> GatewayConfig {
    GatewayConfig {
        deadline: Duration::from_millis(400),
        attempt_timeout: Duration::from_millis(100),
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
    }
}

type Fake = ActorRef<FakeProvider<KvPort>>;

/// A gateway wired to a fake router whose requests the test reads and answers.
struct Rig {
    fake: Fake,
    requests: Requests<KvPort>,
    service: Arc<GatewayService>,
    _gateway: ActorRef<Gateway>,
}

async fn rig(config: GatewayConfig) -> Rig {
    let (fake, requests) = fake_provider::<KvPort>();
    let (gateway, service) = Gateway::start(config);
    connect::<KvPort, _, _>(&fake, &gateway).await.unwrap();
    Rig {
        fake,
        requests,
        service,
        _gateway: gateway,
    }
}

impl Rig {
    async fn next(&mut self) -> (ConnectionId, KvCommand) {
        timeout(WAIT, self.requests.recv())
            .await
            .expect("the gateway sends a request")
            .expect("the fake is alive")
    }
}

async fn answer(fake: &Fake, to: ConnectionId, id: RequestId, result: Result<KvResult, KvError>) {
    let event = KvReply { id, result };
    fake.tell(Indicate {
        to: Some(to),
        event,
    })
    .await
    .unwrap();
}

/// Answers every request from one map, like a one-node store that is always leader.
fn serve_map(fake: Fake, mut requests: Requests<KvPort>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut store = KvStore::default();
        while let Some((to, cmd)) = requests.recv().await {
            let result = store.apply(&cmd.op);
            answer(&fake, to, cmd.id, Ok(result)).await;
        }
    })
}

fn key(k: &str) -> Bytes {
    Bytes::copy_from_slice(k.as_bytes())
}

fn put(k: &str, v: &str) -> KvOp {
    KvOp::Put {
        key: key(k),
        value: key(v),
    }
}

fn get(k: &str) -> KvOp {
    KvOp::Get { key: key(k) }
}

#[tokio::test]
async fn put_then_get_round_trips_through_the_port() {
    let Rig {
        fake,
        requests,
        service,
        _gateway,
    } = rig(GatewayConfig::default()).await;
    let _router = serve_map(fake, requests);
    assert_eq!(service.execute(put("a", "1")).await, Ok(KvResult::Written));
    assert_eq!(
        service.execute(get("a")).await,
        Ok(KvResult::Value(Some(key("1"))))
    );
    assert_eq!(service.execute(get("b")).await, Ok(KvResult::Value(None)));
    // One operation at a time needs one session only.
    assert_eq!(service.idle_sessions(), 1);
}

/// Runs 50 gets at once; the fake holds every request until all 50 have arrived, so they are
/// truly concurrent, then answers each with its own key. Returns the request ids seen.
async fn concurrent_wave(rig: &mut Rig) -> Vec<RequestId> {
    const N: usize = 50;
    let ops = (0..N).map(|i| rig.service.execute(get(&format!("k{i}"))));
    let service = rig.service.clone();
    let fake = rig.fake.clone();
    let requests = &mut rig.requests;
    let router = async move {
        let mut held = Vec::new();
        while held.len() < N {
            let (to, cmd) = timeout(WAIT, requests.recv()).await.unwrap().unwrap();
            held.push((to, cmd));
        }
        let clients: HashSet<ClientId> = held.iter().map(|(_, c)| c.id.client).collect();
        assert_eq!(clients.len(), N, "concurrent commands share a session");
        // Answer in reverse order, so an answer reaching the wrong caller would show.
        for (to, cmd) in held.iter().rev() {
            let KvOp::Get { key } = &cmd.op else {
                panic!("unexpected {cmd:?}");
            };
            answer(&fake, *to, cmd.id, Ok(KvResult::Value(Some(key.clone())))).await;
        }
        held.into_iter().map(|(_, c)| c.id).collect::<Vec<_>>()
    };
    let (results, ids) = tokio::join!(join_all(ops), router);
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result, Ok(KvResult::Value(Some(key(&format!("k{i}"))))));
    }
    assert!(service.idle_sessions() <= N);
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_operations_use_distinct_sessions_that_are_reused() {
    let mut rig = rig(GatewayConfig::default()).await;
    let first = concurrent_wave(&mut rig).await;
    assert_eq!(rig.service.idle_sessions(), 50);
    let second = concurrent_wave(&mut rig).await;
    assert_eq!(rig.service.idle_sessions(), 50);
    let first_clients: HashSet<ClientId> = first.iter().map(|id| id.client).collect();
    let latest: HashMap<ClientId, u64> = first.iter().map(|id| (id.client, id.seq)).collect();
    for id in &second {
        assert!(
            first_clients.contains(&id.client),
            "{id:?} is a new session"
        );
        assert!(id.seq > latest[&id.client], "{id:?} reuses a seq");
    }
}

#[tokio::test]
async fn not_leader_is_retried_with_the_same_request_id() {
    let mut rig = rig(GatewayConfig::default()).await;
    let service = rig.service.clone();
    let op = tokio::spawn(async move { service.execute(put("a", "1")).await });
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (to, cmd) = rig.next().await;
        ids.push(cmd.id);
        answer(
            &rig.fake,
            to,
            cmd.id,
            Err(KvError::NotLeader { hint: None }),
        )
        .await;
    }
    let (to, cmd) = rig.next().await;
    ids.push(cmd.id);
    answer(&rig.fake, to, cmd.id, Ok(KvResult::Written)).await;
    assert_eq!(op.await.unwrap(), Ok(KvResult::Written));
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "retries changed the id: {ids:?}"
    );
    // The next operation is a new command of the same session.
    let service = rig.service.clone();
    let op = tokio::spawn(async move { service.execute(get("a")).await });
    let (to, cmd) = rig.next().await;
    assert_eq!(cmd.id.client, ids[0].client);
    assert_eq!(cmd.id.seq, ids[0].seq + 1);
    answer(&rig.fake, to, cmd.id, Ok(KvResult::Value(None))).await;
    assert_eq!(op.await.unwrap(), Ok(KvResult::Value(None)));
}

#[tokio::test]
async fn sealed_is_retried_and_superseded_is_unknown() {
    let mut rig = rig(GatewayConfig::default()).await;
    let service = rig.service.clone();
    let op = tokio::spawn(async move { service.execute(put("a", "1")).await });
    let (to, first) = rig.next().await;
    answer(
        &rig.fake,
        to,
        first.id,
        Err(KvError::Sealed { next_config: 2 }),
    )
    .await;
    let (to, again) = rig.next().await;
    assert_eq!(again.id, first.id);
    answer(&rig.fake, to, again.id, Err(KvError::Superseded)).await;
    assert!(matches!(op.await.unwrap(), Err(ServiceError::Unknown(_))));
}

#[tokio::test]
async fn a_stale_answer_for_an_older_command_is_ignored() {
    let mut rig = rig(GatewayConfig::default()).await;
    let service = rig.service.clone();
    let op = tokio::spawn(async move { service.execute(get("a")).await });
    let (to, cmd) = rig.next().await;
    let stale = RequestId {
        client: cmd.id.client,
        seq: cmd.id.seq - 1,
    };
    answer(&rig.fake, to, stale, Ok(KvResult::Value(Some(key("old"))))).await;
    answer(&rig.fake, to, cmd.id, Ok(KvResult::Value(Some(key("new"))))).await;
    assert_eq!(op.await.unwrap(), Ok(KvResult::Value(Some(key("new")))));
}

#[tokio::test]
async fn an_unanswered_command_ends_unknown_at_the_deadline() {
    let config = quick();
    let mut rig = rig(config.clone()).await;
    let started = Instant::now();
    let result = rig.service.execute(put("a", "1")).await;
    let waited = started.elapsed();
    assert!(
        matches!(result, Err(ServiceError::Unknown(_))),
        "{result:?}"
    );
    assert!(waited >= config.deadline, "gave up after {waited:?}");
    assert!(
        waited < config.deadline + Duration::from_secs(2),
        "took {waited:?}"
    );
    // Resubmitted after each attempt timeout, always under the same id.
    let mut seen = Vec::new();
    while let Ok((_, cmd)) = rig.requests.try_recv() {
        seen.push(cmd.id);
    }
    assert!(seen.len() >= 2, "only {} attempts", seen.len());
    assert!(seen.iter().all(|id| *id == seen[0]));
    // The session goes back to the pool; its next command has a higher seq.
    assert_eq!(rig.service.idle_sessions(), 1);
    let service = rig.service.clone();
    let next = tokio::spawn(async move { service.execute(get("a")).await });
    let (to, cmd) = rig.next().await;
    assert_eq!(cmd.id.client, seen[0].client);
    assert!(cmd.id.seq > seen[0].seq);
    answer(&rig.fake, to, cmd.id, Ok(KvResult::Value(None))).await;
    assert_eq!(next.await.unwrap(), Ok(KvResult::Value(None)));
}

#[tokio::test]
async fn oversized_values_are_rejected_without_reaching_the_router() {
    let mut rig = rig(GatewayConfig::default()).await;
    let big = Bytes::from(vec![b'x'; MAX_VALUE_BYTES + 1]);
    let op = KvOp::Put {
        key: key("a"),
        value: big,
    };
    let result = rig.service.execute(op).await;
    assert!(
        matches!(result, Err(ServiceError::Rejected(_))),
        "{result:?}"
    );
    tokio::task::yield_now().await;
    assert!(matches!(rig.requests.try_recv(), Err(TryRecvError::Empty)));
    assert_eq!(rig.service.idle_sessions(), 0, "no session was taken");
}

#[tokio::test]
async fn without_a_router_operations_are_unavailable() {
    let config = quick();
    let (_gateway, service) = Gateway::start(config.clone());
    let started = Instant::now();
    let result = service.execute(get("a")).await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() >= config.deadline);
}

#[tokio::test]
async fn an_abandoned_operation_returns_its_session() {
    let mut rig = rig(GatewayConfig::default()).await;
    let service = rig.service.clone();
    let op = tokio::spawn(async move { service.execute(get("a")).await });
    let (_, first) = rig.next().await;
    op.abort();
    assert!(op.await.unwrap_err().is_cancelled());
    assert_eq!(rig.service.idle_sessions(), 1);
    let service = rig.service.clone();
    let op = tokio::spawn(async move { service.execute(get("a")).await });
    let (to, cmd) = rig.next().await;
    assert_eq!(cmd.id.client, first.id.client);
    assert_eq!(cmd.id.seq, first.id.seq + 1);
    answer(&rig.fake, to, cmd.id, Ok(KvResult::Value(None))).await;
    assert_eq!(op.await.unwrap(), Ok(KvResult::Value(None)));
}

// --- End to end: RESP server → gateway → real replication group ---------------------------

const GROUP: GroupId = GroupId(1);

struct Node {
    supervisor: ActorRef<Supervisor>,
    _link: ActorRef<MemoryLink>,
    member: GroupMember,
}

async fn start_node(network: &MemoryNetwork, id: u64, members: &[NodeId]) -> Node {
    let supervisor = start_supervisor(format!("n{id}"));
    let link = network.join(NodeId(id));
    let timer = spawn_child::<Timer>(&supervisor, ()).await;
    let mut config = MemberConfig::new(GROUP, NodeId(id), members.to_vec());
    config.tick = Duration::from_millis(5);
    config.election_ticks = 10;
    let member = start_member(&supervisor, &link, &timer, config)
        .await
        .unwrap();
    Node {
        supervisor,
        _link: link,
        member,
    }
}

/// A replication group with a gateway on its first member's replica and a RESP server on
/// the gateway.
struct Stack {
    nodes: Vec<Node>,
    gateway: ActorRef<Gateway>,
    service: Arc<GatewayService>,
    addr: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The index of the member that leads, once one does.
async fn leader_of(nodes: &[Node]) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        for (i, node) in nodes.iter().enumerate() {
            if node.member.paxos.ask(QueryStatus).await.unwrap().leading {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Stack {
    async fn start(size: u64) -> Stack {
        let network = MemoryNetwork::new();
        let members: Vec<NodeId> = (1..=size).map(NodeId).collect();
        let mut nodes = Vec::new();
        for id in 1..=size {
            nodes.push(start_node(&network, id, &members).await);
        }
        // A node's gateway talks to its router, which finds the leader; with no router here,
        // the gateway goes straight to the leader's replica (followers redirect).
        let leader = leader_of(&nodes).await;
        let (gateway, service) = Gateway::start(GatewayConfig::default());
        connect::<KvPort, _, _>(&nodes[leader].member.replica, &gateway)
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let resp = service.clone();
        let server = tokio::spawn(serve(listener, resp, Dialect::Redis, async move {
            let _ = stopped.await;
        }));
        Stack {
            nodes,
            gateway,
            service,
            addr,
            stop,
            server,
        }
    }

    async fn shut_down(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
        self.gateway.stop_gracefully().await.unwrap();
        self.gateway.wait_for_shutdown().await;
        for node in self.nodes {
            node.supervisor.stop_gracefully().await.unwrap();
            node.supervisor.wait_for_shutdown().await;
        }
    }
}

fn resp_command(args: &[&str]) -> String {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    req
}

/// Reads exactly `expect.len()` bytes and compares them with `expect`.
async fn expect_reply(stream: &mut TcpStream, expect: &[u8], what: &str) {
    let mut got = vec![0u8; expect.len()];
    timeout(WAIT, stream.read_exact(&mut got))
        .await
        .expect("a reply in time")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expect),
        "reply to {what}"
    );
}

/// Sends one RESP command and checks its reply.
async fn call(stream: &mut TcpStream, args: &[&str], expect: &[u8]) {
    stream
        .write_all(resp_command(args).as_bytes())
        .await
        .unwrap();
    expect_reply(stream, expect, &format!("{args:?}")).await;
}

async fn resp_set_get(size: u64) {
    let stack = Stack::start(size).await;
    let mut stream = TcpStream::connect(stack.addr).await.unwrap();
    // The gateway retries NotLeader until the group has elected its leader.
    call(&mut stream, &["SET", "a", "1"], b"+OK\r\n").await;
    call(&mut stream, &["GET", "a"], b"$1\r\n1\r\n").await;
    call(&mut stream, &["GET", "missing"], b"$-1\r\n").await;
    drop(stream);
    stack.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_set_and_get_on_a_single_node_group() {
    resp_set_get(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_set_and_get_on_the_leader_of_three() {
    resp_set_get(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pipelining_resp_connections_share_a_small_session_pool() {
    const CONNS: usize = 20;
    const DEPTH: usize = 16;
    let stack = Stack::start(3).await;
    // Wait for a leader, so the burst below measures the steady state.
    let mut first = TcpStream::connect(stack.addr).await.unwrap();
    call(&mut first, &["SET", "warm", "up"], b"+OK\r\n").await;
    let clients = (0..CONNS).map(|c| {
        let addr = stack.addr;
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let sets: String = (0..DEPTH)
                .map(|i| resp_command(&["SET", &format!("k{c}.{i}"), &format!("{c}.{i}")]))
                .collect();
            stream.write_all(sets.as_bytes()).await.unwrap();
            expect_reply(&mut stream, &b"+OK\r\n".repeat(DEPTH), "pipelined SETs").await;
            let gets: String = (0..DEPTH)
                .map(|i| resp_command(&["GET", &format!("k{c}.{i}")]))
                .collect();
            stream.write_all(gets.as_bytes()).await.unwrap();
            let expect: String = (0..DEPTH)
                .map(|i| {
                    let v = format!("{c}.{i}");
                    format!("${}\r\n{v}\r\n", v.len())
                })
                .collect();
            expect_reply(&mut stream, expect.as_bytes(), "pipelined GETs").await;
        })
    });
    for client in join_all(clients).await {
        client.unwrap();
    }
    // A connection runs its pipeline one command at a time, so at most one session each
    // (plus the warm-up connection's).
    let idle = stack.service.idle_sessions();
    assert!((1..=CONNS + 1).contains(&idle), "{idle} sessions");
    drop(first);
    stack.shut_down().await;
}
