//! The bootstrap coordinator over real loopback sockets: formation, a late standby, a
//! coordinator restart recovered from the nodes' sessions, and its answers to strangers.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use kv::coordinator::{fetch_map, fetch_status, serve, start_session, AskError, CoordinatorConfig};
use kv::native::{ClientCodec, ClientFrame, CoordinatorStatus, ServerFrame, StatusReport};
use kv_components::task::TaskGuard;
use kv_ports::ids::{ClientId, NodeId};
use kv_ports::kv::{KvCommand, KvOp, RequestId};
use kv_ports::membership::{Epoch, NodeInfo, SlotMap, SLOTS};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::codec::{Framed, FramedRead};

/// Upper bound for every awaited condition; they normally hold within milliseconds.
const WAIT: Duration = Duration::from_secs(10);
/// How long one question may take.
const ASK: Duration = Duration::from_secs(2);

/// A running coordinator.
struct Coordinator {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Coordinator {
    fn start(listener: TcpListener) -> Coordinator {
        let addr = listener.local_addr().unwrap();
        let config = CoordinatorConfig {
            min_nodes: 4,
            ..CoordinatorConfig::new(2)
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, config, async {
            let _ = stopped.await;
        }));
        Coordinator { addr, stop, task }
    }

    async fn bind() -> Coordinator {
        Coordinator::start(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    async fn shut_down(self) {
        let _ = self.stop.send(());
        timeout(WAIT, self.task)
            .await
            .expect("coordinator stops")
            .unwrap()
            .unwrap();
    }
}

/// A fake data node: only its session and the map it holds.
struct Node {
    maps: watch::Receiver<SlotMap>,
    _session: TaskGuard,
}

fn info(i: u16) -> NodeInfo {
    let addr = SocketAddr::from(([127, 0, 0, 1], i));
    NodeInfo {
        id: NodeId(u64::from(i)),
        link: addr,
        client: addr,
        resp: None,
        http: None,
    }
}

fn node(coordinator: SocketAddr, i: u16) -> Node {
    let (tx, maps) = watch::channel(SlotMap::empty(2));
    Node {
        maps,
        _session: start_session(coordinator, info(i), tx),
    }
}

/// Waits until the node holds a map of at least `epoch`; returns it.
async fn map_at(node: &mut Node, epoch: Epoch) -> SlotMap {
    timeout(WAIT, node.maps.wait_for(|m| m.epoch >= epoch))
        .await
        .expect("map arrives in time")
        .expect("session alive")
        .clone()
}

async fn status(addr: SocketAddr) -> CoordinatorStatus {
    match fetch_status(addr, ASK).await.unwrap() {
        StatusReport::Coordinator(s) => s,
        other => panic!("expected the coordinator's status, got {other:?}"),
    }
}

/// Polls the coordinator's status until `done` holds.
async fn status_until(
    addr: SocketAddr,
    done: impl Fn(&CoordinatorStatus) -> bool,
) -> CoordinatorStatus {
    timeout(WAIT, async {
        loop {
            let s = status(addr).await;
            if done(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("status reached in time")
}

/// Four nodes check in and form epoch 1; checks what (a) asks along the way.
async fn formed(coordinator: SocketAddr) -> Vec<Node> {
    let mut nodes: Vec<Node> = (1..=3).map(|i| node(coordinator, i)).collect();
    let s = status_until(coordinator, |s| s.connected.len() == 3).await;
    assert_eq!((s.epoch, s.waiting_for), (Epoch(0), 1));
    assert_eq!(fetch_map(coordinator, Epoch(0), ASK).await.unwrap(), None);
    nodes.push(node(coordinator, 4));
    let mut maps = Vec::new();
    for n in &mut nodes {
        maps.push(map_at(n, Epoch(1)).await);
    }
    assert!(
        maps.iter().all(|m| *m == maps[0]),
        "everyone holds the same map"
    );
    let map = &maps[0];
    assert_eq!(map.epoch, Epoch(1));
    assert_eq!(map.groups.len(), 2);
    assert!(map.standbys.is_empty());
    assert_eq!(map.slots.len(), SLOTS);
    assert!(map.slot_counts().values().all(|&n| n == SLOTS / 2));
    assert!((1..=4).all(|i| map.node(NodeId(i)).is_some()));
    nodes
}

/// Formation plus a fifth node that becomes a standby (epoch 2 everywhere).
async fn with_standby(coordinator: SocketAddr) -> (Vec<Node>, SlotMap) {
    let mut nodes = formed(coordinator).await;
    nodes.push(node(coordinator, 5));
    let mut maps = Vec::new();
    for n in &mut nodes {
        maps.push(map_at(n, Epoch(2)).await);
    }
    assert!(maps.iter().all(|m| *m == maps[0]));
    let map = maps.swap_remove(0);
    assert_eq!(map.epoch, Epoch(2));
    assert_eq!(map.standbys, [NodeId(5)]);
    assert_eq!(map.groups.len(), 2);
    (nodes, map)
}

#[tokio::test]
async fn four_nodes_form_two_groups() {
    let coordinator = Coordinator::bind().await;
    let _nodes = formed(coordinator.addr).await;
    let s = status(coordinator.addr).await;
    assert_eq!((s.epoch, s.waiting_for), (Epoch(1), 0));
    assert_eq!(s.connected.len(), 4);
    let map = fetch_map(coordinator.addr, Epoch(0), ASK).await.unwrap();
    assert_eq!(map.map(|m| m.epoch), Some(Epoch(1)));
    assert_eq!(
        fetch_map(coordinator.addr, Epoch(1), ASK).await.unwrap(),
        None
    );
    coordinator.shut_down().await;
}

#[tokio::test]
async fn a_late_node_becomes_a_standby() {
    let coordinator = Coordinator::bind().await;
    let (_nodes, map) = with_standby(coordinator.addr).await;
    let fetched = fetch_map(coordinator.addr, Epoch(1), ASK).await.unwrap();
    assert_eq!(fetched, Some(map));
    coordinator.shut_down().await;
}

#[tokio::test]
async fn a_restarted_coordinator_adopts_the_nodes_map() {
    let first = Coordinator::bind().await;
    let addr = first.addr;
    let (mut nodes, map) = with_standby(addr).await;
    first.shut_down().await;
    let listener = timeout(WAIT, async {
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => return listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .expect("the coordinator's port can be bound again");
    let second = Coordinator::start(listener);
    let s = status_until(addr, |s| s.connected.len() == 5).await;
    assert_eq!((s.epoch, s.waiting_for), (Epoch(2), 0));
    let fetched = fetch_map(addr, Epoch(0), ASK).await.unwrap();
    assert_eq!(fetched.as_ref(), Some(&map), "adopted, not formed anew");
    for n in &mut nodes {
        assert_eq!(*n.maps.borrow_and_update(), map);
    }
    second.shut_down().await;
}

#[tokio::test]
async fn garbage_closes_only_its_own_connection() {
    let coordinator = Coordinator::bind().await;
    let stream = TcpStream::connect(coordinator.addr).await.unwrap();
    let mut other = Framed::new(stream, ClientCodec::default());
    let mut bad = TcpStream::connect(coordinator.addr).await.unwrap();
    bad.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let mut answers = FramedRead::new(bad, ClientCodec::default());
    let answer = timeout(WAIT, answers.next()).await.unwrap();
    assert!(
        matches!(answer, Some(Ok(ServerFrame::Error { .. }))),
        "{answer:?}"
    );
    let end = timeout(WAIT, answers.next()).await.unwrap();
    assert!(end.is_none(), "closed after the error, got {end:?}");
    other
        .send(ClientFrame::GetMap { have: Epoch(0) })
        .await
        .unwrap();
    let answer = timeout(WAIT, other.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(answer, ServerFrame::Map(None));
    assert_eq!(status(coordinator.addr).await.epoch, Epoch(0));
    coordinator.shut_down().await;
}

#[tokio::test]
async fn data_commands_are_rejected_and_the_connection_kept() {
    let coordinator = Coordinator::bind().await;
    let stream = TcpStream::connect(coordinator.addr).await.unwrap();
    let mut conn = Framed::new(stream, ClientCodec::default());
    let id = RequestId {
        client: ClientId::random(),
        seq: 1,
    };
    let op = KvOp::Put {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(b"v"),
    };
    conn.send(ClientFrame::Request(KvCommand { id, op }))
        .await
        .unwrap();
    let answer = timeout(WAIT, conn.next()).await.unwrap().unwrap().unwrap();
    match answer {
        ServerFrame::Rejected {
            id: answered,
            message,
        } => {
            assert_eq!(answered, id);
            assert!(message.contains("keeps no data"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    conn.send(ClientFrame::GetStatus).await.unwrap();
    let answer = timeout(WAIT, conn.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(
        answer,
        ServerFrame::Status(StatusReport::Coordinator(_))
    ));
    coordinator.shut_down().await;
}

#[tokio::test]
async fn asking_nobody_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = fetch_map(addr, Epoch(0), ASK).await.unwrap_err();
    assert!(matches!(error, AskError::Connect { .. }), "{error}");
}

#[tokio::test]
async fn shutdown_closes_the_sessions() {
    let coordinator = Coordinator::bind().await;
    let stream = TcpStream::connect(coordinator.addr).await.unwrap();
    let mut session = Framed::new(stream, ClientCodec::default());
    let check_in = ClientFrame::CheckIn {
        node: info(1),
        map: None,
    };
    session.send(check_in).await.unwrap();
    status_until(coordinator.addr, |s| s.connected.len() == 1).await;
    coordinator.shut_down().await;
    let end = timeout(WAIT, session.next()).await.unwrap();
    assert!(!matches!(end, Some(Ok(_))), "closed, got {end:?}");
}
