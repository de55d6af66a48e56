//! One port per node: the node-to-node link and the native client protocol share the node's
//! `listen` address (and HTTP will), told apart by their first bytes. Three in-process nodes
//! with a static single-group map whose link and client addresses are the same form a group
//! and serve clients; garbage, HTTP-looking and silent connections are dealt with.

mod cluster_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use kv::client::{Client, ClientConfig};
use kv::native::{
    ClientCodec, ClientEndpoint, ClientFrame, EndpointConfig, NoMapView, ServerFrame,
};
use kv::node::mux::{self, HttpConn, MuxConfig, Targets};
use kv::node::{Join, Node, NodeConfig};
use kv::service::KvService;
use kv_components::perfect_link::{LinkConfig, PerfectLink};
use kv_ports::ids::{ClientId, GroupId, NodeId};
use kv_ports::kv::{KvCommand, KvError, KvOp, KvResult, RequestId};
use kv_ports::membership::{Epoch, GroupInfo, NodeInfo, SlotMap, SLOTS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

use cluster_support::{free_addrs, FORM_TIMEOUT};

/// How long a socket may take to answer or close in these tests.
const WAIT: Duration = Duration::from_secs(10);

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// One group of every node in `addrs` (ids 1, 2, ...), owning every slot; each node is
/// reached at one address for both its link and its clients.
fn static_map(addrs: &[SocketAddr]) -> SlotMap {
    let nodes: Vec<NodeInfo> = addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| NodeInfo {
            id: NodeId(i as u64 + 1),
            link: *addr,
            client: *addr,
            resp: None,
            http: None,
        })
        .collect();
    let map = SlotMap {
        epoch: Epoch(1),
        replication: addrs.len() as u32,
        slots: vec![GroupId(0); SLOTS],
        groups: vec![GroupInfo {
            id: GroupId(0),
            config: 1,
            members: nodes.iter().map(|n| n.id).collect(),
        }],
        standbys: Vec::new(),
        nodes,
        next_group: GroupId(1),
    };
    map.validate().expect("a valid map");
    map
}

/// Reads everything until the peer closes; fails if it does not close within [`WAIT`].
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    match tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await {
        Ok(Ok(_)) => answer,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => answer,
        Ok(Err(e)) => panic!("read failed: {e}"),
        Err(_) => panic!("the node did not close the connection within {WAIT:?}"),
    }
}

/// Sends `request` raw and expects one native `Error` frame, then the close.
async fn expect_native_error(addr: SocketAddr, request: &[u8]) {
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(request).await.unwrap();
    let mut framed = Framed::new(raw, ClientCodec::default());
    let frame = tokio::time::timeout(WAIT, framed.next())
        .await
        .expect("an answer in time");
    assert!(
        matches!(frame, Some(Ok(ServerFrame::Error { .. }))),
        "expected an error frame for {request:02x?}, got {frame:?}"
    );
    let mut raw = framed.into_inner();
    assert!(read_until_closed(&mut raw).await.is_empty());
}

async fn wait_until_led(client: &Client) {
    let deadline = Instant::now() + FORM_TIMEOUT;
    loop {
        if let Ok(status) = client.cluster_status().await {
            if status.all_groups_led() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader within {FORM_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_static_nodes_share_one_port_for_link_and_clients() {
    let addrs = free_addrs(3);
    let map = static_map(&addrs);
    let mut nodes = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let config = NodeConfig {
            listen: *addr,
            join: Join::Static {
                map: map.clone(),
                id: NodeId(i as u64 + 1),
            },
            resp: None,
            http: None,
        };
        let node = Node::start(config).await.expect("node starts");
        assert_eq!(node.info.link, *addr);
        assert_eq!(node.info.client, *addr);
        nodes.push(node);
    }

    // (a) The group forms over the shared ports, and each node's one address serves clients.
    wait_until_led(&Client::connect(addrs.clone(), ClientConfig::default()).unwrap()).await;
    for (i, addr) in addrs.iter().enumerate() {
        let client = Client::connect([*addr], ClientConfig::default()).unwrap();
        let key = bytes(&format!("key-{i}"));
        let put = KvOp::Put {
            key: key.clone(),
            value: bytes(&format!("value-{i}")),
        };
        assert_eq!(
            client.execute(put).await,
            Ok(KvResult::Written),
            "via {addr}"
        );
        let get = KvOp::Get { key };
        assert_eq!(
            client.execute(get).await,
            Ok(KvResult::Value(Some(bytes(&format!("value-{i}"))))),
            "via {addr}"
        );
    }

    // (b) Garbage is the native endpoint's business: an error frame, then the close.
    expect_native_error(addrs[0], &[0, 0, 0, 3, 0xff, 0xff, 0xff]).await;
    expect_native_error(addrs[1], &[0xff; 16]).await;

    // (c) An HTTP-looking connection is closed (no HTTP front end on this node), unanswered.
    let mut http = TcpStream::connect(addrs[2]).await.unwrap();
    http.write_all(b"GET /status HTTP/1.1\r\nHost: kv\r\n\r\n")
        .await
        .unwrap();
    assert!(read_until_closed(&mut http).await.is_empty());

    // A connection that never says anything is closed after the sniff timeout.
    let started = Instant::now();
    let mut silent = TcpStream::connect(addrs[0]).await.unwrap();
    assert!(read_until_closed(&mut silent).await.is_empty());
    assert!(started.elapsed() >= Duration::from_secs(1));

    // Through all of that the group kept serving.
    let client = Client::connect(addrs.clone(), ClientConfig::default()).unwrap();
    let get = KvOp::Get {
        key: bytes("key-0"),
    };
    assert_eq!(
        client.execute(get).await,
        Ok(KvResult::Value(Some(bytes("value-0"))))
    );

    for node in nodes {
        node.stop().await;
    }
}

/// The multiplexer on its own: HTTP connections reach the sink with every byte still
/// unread, and native clients' first bytes reach the endpoint intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mux_replays_first_bytes_to_every_consumer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let link = PerfectLink::start_shared(NodeId(1), addr, LinkConfig::default());
    let endpoint = ClientEndpoint::start_shared(EndpointConfig::default(), Arc::new(NoMapView));
    let (http_tx, mut http_rx) = mpsc::channel(4);
    let (coordinator_tx, mut coordinator_rx) = mpsc::channel(4);
    let targets = Targets {
        link: link.downgrade(),
        native: endpoint.downgrade(),
        http: Some(http_tx),
        coordinator: Some(coordinator_tx),
    };
    let config = MuxConfig {
        sniff_timeout: Duration::from_millis(500),
        ..MuxConfig::default()
    };
    let _mux = mux::serve(listener, targets, config);

    // HTTP: the sink gets the stream with the request unread and can answer on it.
    let request = b"POST /kv/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(request).await.unwrap();
    let HttpConn { mut stream, .. } = tokio::time::timeout(WAIT, http_rx.recv())
        .await
        .expect("handed over in time")
        .expect("a connection");
    let mut got = vec![0u8; request.len()];
    stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got[..], &request[..]);
    stream
        .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
        .await
        .unwrap();
    drop(stream);
    let answer = read_until_closed(&mut client).await;
    assert!(answer.starts_with(b"HTTP/1.1 204"));

    // Native: a request (no KvPort behind this endpoint, so `NotLeader`) and its answer.
    let raw = TcpStream::connect(addr).await.unwrap();
    let mut framed = Framed::new(raw, ClientCodec::default());
    let id = RequestId {
        client: ClientId::random(),
        seq: 1,
    };
    let cmd = KvCommand {
        id,
        op: KvOp::Get { key: bytes("a") },
    };
    framed.send(ClientFrame::Request(cmd)).await.unwrap();
    let answer = tokio::time::timeout(WAIT, framed.next())
        .await
        .expect("an answer in time");
    assert!(
        matches!(
            answer,
            Some(Ok(ServerFrame::Reply {
                id: got,
                result: Err(KvError::NotLeader { .. })
            })) if got == id
        ),
        "{answer:?}"
    );

    // The embedded coordinator: the preamble is read off, the frames that follow are intact.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&mux::COORDINATOR_PREAMBLE).await.unwrap();
    client.write_all(b"\0\0\0\x01x").await.unwrap();
    let (mut stream, _) = tokio::time::timeout(WAIT, coordinator_rx.recv())
        .await
        .expect("handed over in time")
        .expect("a connection");
    let mut got = [0u8; 5];
    stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"\0\0\0\x01x");
    drop(stream);
    assert!(read_until_closed(&mut client).await.is_empty());

    // A partial link preamble that never completes is closed after the sniff timeout.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(b"KV").await.unwrap();
    assert!(read_until_closed(&mut partial).await.is_empty());
}
