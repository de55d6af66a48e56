//! The native protocol end to end in one process: three group members on an in-memory
//! network, each with a `ClientEndpoint` on a real loopback socket, driven by `Client`s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kameo::actor::ActorRef;
use kv::bench::{self, BenchConfig, Stop};
use kv::checker::{check_history, History, Options, Verdict};
use kv::client::{CallError, Client, ClientConfig, Connection};
use kv::native::{ClientCodec, ClientEndpoint, EndpointConfig, ServerFrame};
use kv::service::{KvService, ServiceError};
use kv_components::group::{start_member, GroupMember, MemberConfig};
use kv_components::memory_link::{MemoryLink, MemoryNetwork};
use kv_components::sequence_paxos::component::QueryStatus;
use kv_components::timer::Timer;
use kv_ports::component::connect;
use kv_ports::ids::{ClientId, GroupId, NodeId};
use kv_ports::kv::{KvCommand, KvOp, KvPort, KvResult, RequestId, MAX_KEY_BYTES};
use kv_ports::supervisor::{spawn_child, start_supervisor, Supervisor};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;

const GROUP: GroupId = GroupId(1);
const WAIT: Duration = Duration::from_secs(10);

struct Node {
    id: NodeId,
    supervisor: ActorRef<Supervisor>,
    _link: ActorRef<MemoryLink>,
    member: GroupMember,
    endpoint: ActorRef<ClientEndpoint>,
    addr: SocketAddr,
}

impl Node {
    async fn stop(self) {
        self.endpoint.stop_gracefully().await.unwrap();
        self.endpoint.wait_for_shutdown().await;
        self.supervisor.stop_gracefully().await.unwrap();
        self.supervisor.wait_for_shutdown().await;
    }
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
    let listen = "127.0.0.1:0".parse().unwrap();
    let (endpoint, addr) = ClientEndpoint::start(listen, EndpointConfig::default())
        .await
        .unwrap();
    connect::<KvPort, _, _>(&member.replica, &endpoint)
        .await
        .unwrap();
    Node {
        id: NodeId(id),
        supervisor,
        _link: link,
        member,
        endpoint,
        addr,
    }
}

async fn start_group(network: &MemoryNetwork) -> Vec<Node> {
    let members: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start_node(network, id, &members).await);
    }
    nodes
}

async fn stop_all(nodes: Vec<Node>) {
    for node in nodes {
        node.stop().await;
    }
}

fn client(nodes: &[Node]) -> Client {
    Client::connect(nodes.iter().map(|n| n.addr), ClientConfig::default()).unwrap()
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

async fn run(client: &Client, op: KvOp) -> KvResult {
    timeout(WAIT, client.execute(op)).await.unwrap().unwrap()
}

async fn leader(nodes: &[Node]) -> NodeId {
    for _ in 0..200 {
        for node in nodes {
            if let Ok(status) = node.member.paxos.ask(QueryStatus).await {
                if status.leading {
                    return node.id;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for node in nodes {
        eprintln!(
            "{} status {:?}",
            node.id,
            node.member.paxos.ask(QueryStatus).await
        );
    }
    panic!("no leader elected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_runs_every_operation() {
    let network = MemoryNetwork::new();
    let nodes = start_group(&network).await;
    let c = client(&nodes);
    assert_eq!(run(&c, get("k")).await, KvResult::Value(None));
    assert_eq!(run(&c, put("k", "1")).await, KvResult::Written);
    assert_eq!(run(&c, get("k")).await, KvResult::Value(Some(key("1"))));
    let cas = |expected: Option<&str>, new: &str| KvOp::Cas {
        key: key("k"),
        expected: expected.map(key),
        new: key(new),
    };
    assert_eq!(run(&c, cas(Some("0"), "2")).await, KvResult::Swapped(false));
    assert_eq!(run(&c, cas(Some("1"), "2")).await, KvResult::Swapped(true));
    let del = || KvOp::Delete { key: key("k") };
    assert_eq!(run(&c, del()).await, KvResult::Deleted(true));
    assert_eq!(run(&c, del()).await, KvResult::Deleted(false));
    assert_eq!(run(&c, cas(None, "3")).await, KvResult::Swapped(true));
    assert_eq!(run(&c, get("k")).await, KvResult::Value(Some(key("3"))));
    let huge = KvOp::Get {
        key: Bytes::from(vec![b'x'; MAX_KEY_BYTES + 1]),
    };
    assert!(matches!(
        c.execute(huge).await,
        Err(ServiceError::Rejected(_))
    ));
    stop_all(nodes).await;
}

/// Sends `cmd` over fresh connections to every node in turn until one answers it.
async fn resend(nodes: &[Node], cmd: &KvCommand) -> KvResult {
    for attempt in 0..200 {
        let addr = nodes[attempt % nodes.len()].addr;
        let mut conn = Connection::open(addr, WAIT).await.unwrap();
        if let Ok(Ok(Ok(result))) = timeout(Duration::from_secs(1), conn.call(cmd)).await {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no node answered {cmd:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_command_takes_effect_once() {
    let network = MemoryNetwork::new();
    let nodes = start_group(&network).await;
    let id = RequestId {
        client: ClientId::random(),
        seq: 1,
    };
    let swap = KvCommand {
        id,
        op: KvOp::Cas {
            key: key("x"),
            expected: None,
            new: key("a"),
        },
    };
    assert_eq!(resend(&nodes, &swap).await, KvResult::Swapped(true));
    // The retry, at another node, is answered from the session table: no second attempt.
    assert_eq!(resend(&nodes[1..], &swap).await, KvResult::Swapped(true));
    let read = KvCommand {
        id: RequestId { seq: 2, ..id },
        op: get("x"),
    };
    assert_eq!(resend(&nodes, &read).await, KvResult::Value(Some(key("a"))));
    // Oversized values are refused by the endpoint before anything is proposed.
    let mut conn = Connection::open(nodes[0].addr, WAIT).await.unwrap();
    let huge = KvCommand {
        id: RequestId { seq: 3, ..id },
        op: KvOp::Get {
            key: Bytes::from(vec![b'x'; MAX_KEY_BYTES + 1]),
        },
    };
    let refused = timeout(WAIT, conn.call(&huge)).await.unwrap();
    assert!(
        matches!(refused, Err(CallError::Rejected(_))),
        "{refused:?}"
    );
    stop_all(nodes).await;
}

/// Under real time this once failed about one run in five: the survivors' BLE rested on a
/// leader whose ballot was below the ballot their acceptors had promised to the stopped
/// leader, so nobody could lead (fixed in BLE: such a leader makes a node unhappy; see
/// `a_leader_below_the_promised_ballot_is_outbid`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_fails_over_when_the_leader_node_stops() {
    let network = MemoryNetwork::new();
    let mut nodes = start_group(&network).await;
    // The client starts at the leader's endpoint, so stopping that node makes it fail over.
    let crashed = leader(&nodes).await;
    let mut addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    addrs.sort_by_key(|a| *a != nodes.iter().find(|n| n.id == crashed).unwrap().addr);
    let c = Client::connect(addrs, ClientConfig::default()).unwrap();
    for i in 0..20 {
        assert_eq!(run(&c, put("k", &i.to_string())).await, KvResult::Written);
    }
    assert_eq!(leader(&nodes).await, crashed);
    network.isolate(crashed);
    let position = nodes.iter().position(|n| n.id == crashed).unwrap();
    nodes.remove(position).stop().await;

    assert_eq!(run(&c, get("k")).await, KvResult::Value(Some(key("19"))));
    assert_eq!(run(&c, put("k", "after")).await, KvResult::Written);
    assert_eq!(run(&c, get("k")).await, KvResult::Value(Some(key("after"))));
    assert_ne!(leader(&nodes).await, crashed);
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_an_error_frame_and_the_endpoint_keeps_serving() {
    let network = MemoryNetwork::new();
    let nodes = start_group(&network).await;
    // The leader's endpoint: a client that knows only a follower's address would be sent to
    // a leader it cannot reach (there is no map here), whichever node won the election.
    let leader = leader(&nodes).await;
    let addr = nodes.iter().find(|n| n.id == leader).unwrap().addr;
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let mut framed = Framed::new(raw, ClientCodec::default());
    let answer = timeout(WAIT, framed.next()).await.unwrap();
    assert!(
        matches!(answer, Some(Ok(ServerFrame::Error { .. }))),
        "{answer:?}"
    );
    let end = timeout(WAIT, framed.next()).await.unwrap();
    assert!(end.is_none(), "connection not closed: {end:?}");

    let only_leader = Client::connect([addr], ClientConfig::default()).unwrap();
    assert_eq!(run(&only_leader, put("k", "v")).await, KvResult::Written);
    assert_eq!(
        run(&only_leader, get("k")).await,
        KvResult::Value(Some(key("v")))
    );
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = ClientConfig {
        deadline: Duration::from_millis(300),
        ..ClientConfig::default()
    };
    let c = Client::connect([addr], config).unwrap();
    let outcome = timeout(WAIT, c.execute(get("k"))).await.unwrap();
    assert!(
        matches!(outcome, Err(ServiceError::Unavailable(_))),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bench_over_clients_is_linearizable() {
    let network = MemoryNetwork::new();
    let nodes = start_group(&network).await;
    let path = std::env::temp_dir().join(format!("kv-native-bench-{}.jsonl", std::process::id()));
    let mut config = BenchConfig::new(Stop::Ops(500));
    config.keys = 10;
    config.history = Some(path.clone());
    config.progress = false;
    let sessions: Vec<Arc<dyn KvService>> = (0..4)
        .map(|_| Arc::new(client(&nodes)) as Arc<dyn KvService>)
        .collect();
    let report = timeout(Duration::from_secs(60), bench::run(config, sessions))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.total_ops(), 500);
    let history = History::parse_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(history.ops().len(), 500);
    assert_eq!(
        check_history(&history, Options::default()),
        Verdict::Linearizable
    );
    let _ = std::fs::remove_file(path);
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let listen = "127.0.0.1:0".parse().unwrap();
    let config = EndpointConfig { max_connections: 1 };
    // No KvPort connected: every request is answered NotLeader, which is all this needs.
    let (endpoint, addr) = ClientEndpoint::start(listen, config).await.unwrap();
    let cmd = KvCommand {
        id: RequestId {
            client: ClientId::random(),
            seq: 1,
        },
        op: get("k"),
    };
    let mut first = Connection::open(addr, WAIT).await.unwrap();
    let answer = timeout(WAIT, first.call(&cmd)).await.unwrap().unwrap();
    assert!(answer.is_err(), "{answer:?}");
    let mut second = Connection::open(addr, WAIT).await.unwrap();
    let waiting = timeout(Duration::from_millis(200), second.call(&cmd)).await;
    assert!(waiting.is_err(), "served beyond the limit: {waiting:?}");
    // Closing the first connection frees its slot for the waiting one.
    drop(first);
    let answer = timeout(WAIT, second.call(&cmd)).await.unwrap().unwrap();
    assert!(answer.is_err(), "{answer:?}");
    endpoint.stop_gracefully().await.unwrap();
    endpoint.wait_for_shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_fails_over_when_its_node_stops() {
    let network = MemoryNetwork::new();
    let mut nodes = start_group(&network).await;
    let leading = leader(&nodes).await;
    // The client starts at a follower's endpoint; stopping that node loses its connection.
    let position = nodes.iter().position(|n| n.id != leading).unwrap();
    let mut addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    addrs.swap(0, position);
    let c = Client::connect(addrs, ClientConfig::default()).unwrap();
    for i in 0..20 {
        assert_eq!(run(&c, put("k", &i.to_string())).await, KvResult::Written);
    }
    network.isolate(nodes[position].id);
    nodes.remove(position).stop().await;

    assert_eq!(run(&c, get("k")).await, KvResult::Value(Some(key("19"))));
    assert_eq!(run(&c, put("k", "after")).await, KvResult::Written);
    assert_eq!(run(&c, get("k")).await, KvResult::Value(Some(key("after"))));
    stop_all(nodes).await;
}
