//! Integration tests of the perfect link: each node's link runs in its own tokio runtime and is
//! driven through the full component path (test requirer → link → TCP → link → requirer).

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kameo::prelude::*;
use kv_components::perfect_link::{
    AdoptStream, DropConnections, LinkConfig, PerfectLink, Unacked, PREAMBLE,
};
use kv_components::task::{tell_weak, TaskGuard};
use kv_ports::component::{connect, spawn, Requires};
use kv_ports::ids::NodeId;
use kv_ports::network::{NetIndication, NetRequest, NetworkPort, Topic};
use kv_ports::port::{Ind, RequiredPort};
use tokio::runtime::Runtime;

const WAIT: Duration = Duration::from_secs(20);
const T1: Topic = Topic::Test(1);

/// A requirer that forwards every indication to the test thread.
#[derive(Actor)]
struct Probe {
    net: RequiredPort<NetworkPort>,
    out: mpsc::Sender<NetIndication>,
}

impl Requires<NetworkPort> for Probe {
    fn required(&mut self) -> &mut RequiredPort<NetworkPort> {
        &mut self.net
    }
}

impl Message<Ind<NetworkPort>> for Probe {
    type Reply = ();
    async fn handle(&mut self, ind: Ind<NetworkPort>, _: &mut Context<Self, ()>) {
        let _ = self.out.send(ind.event);
    }
}

/// Makes the probe trigger a request on its port.
struct Cmd(NetRequest);

impl Message<Cmd> for Probe {
    type Reply = ();
    async fn handle(&mut self, Cmd(req): Cmd, _: &mut Context<Self, ()>) {
        assert!(self.net.trigger(req), "link is gone");
    }
}

/// Answered once everything the probe was told before has been handled.
struct Sync;

impl Message<Sync> for Probe {
    type Reply = ();
    async fn handle(&mut self, _: Sync, _: &mut Context<Self, ()>) {}
}

kv_ports::component!(Probe);

/// The test side of one probe: its indications, and how many `PeerDown`s went by.
struct Inbox(mpsc::Receiver<NetIndication>, Cell<usize>);

impl Inbox {
    /// The next indication matching `pred`, skipping others.
    fn wait_for(&self, what: &str, pred: impl Fn(&NetIndication) -> bool) -> NetIndication {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = self.0.recv_timeout(left);
            if let Ok(NetIndication::PeerDown(_)) = next {
                self.1.set(self.1.get() + 1);
            }
            match next {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) => {}
                Err(e) => panic!("waiting for {what}: {e}"),
            }
        }
    }

    /// The next delivered payload (skipping connection indications).
    fn next_payload(&self) -> (NodeId, Topic, Bytes) {
        match self.wait_for("a delivery", |e| matches!(e, NetIndication::Deliver { .. })) {
            NetIndication::Deliver {
                from,
                topic,
                payload,
            } => (from, topic, payload),
            _ => unreachable!(),
        }
    }

    /// Asserts no delivery arrives within `d`.
    fn no_delivery_within(&self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.0.recv_timeout(left) {
                Ok(NetIndication::Deliver { from, payload, .. }) => {
                    panic!("unexpected delivery from {from}: {payload:?}")
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    fn wait_up(&self, peer: NodeId) {
        self.wait_for("PeerUp", |e| *e == NetIndication::PeerUp(peer));
    }

    fn wait_down(&self, peer: NodeId) {
        self.wait_for("PeerDown", |e| *e == NetIndication::PeerDown(peer));
    }
}

/// One node: a link and its probes in a runtime of their own. Dropping it stops them all.
struct Node {
    id: NodeId,
    addr: SocketAddr,
    link: Option<ActorRef<PerfectLink>>,
    probes: Vec<ActorRef<Probe>>,
    /// The external acceptor of a link started with `start_shared`.
    acceptor: Option<TaskGuard>,
    rt: Option<Runtime>,
}

fn config() -> LinkConfig {
    LinkConfig {
        max_frame_len: 64 * 1024,
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(100),
        ack_interval: Duration::from_millis(5),
        ack_every: 256,
        handshake_timeout: Duration::from_secs(2),
        advertise: None,
    }
}

impl Node {
    fn start(id: u64) -> (Node, Inbox) {
        Self::start_with(id, config())
    }

    fn start_with(id: u64, config: LinkConfig) -> (Node, Inbox) {
        Self::start_at(id, "127.0.0.1:0".parse().expect("addr"), config)
    }

    fn start_at(id: u64, listen: SocketAddr, config: LinkConfig) -> (Node, Inbox) {
        let rt = runtime();
        let id = NodeId(id);
        let (link, addr) = rt
            .block_on(PerfectLink::start(id, listen, config))
            .expect("link starts");
        Self::assemble(id, addr, link, None, rt)
    }

    /// A link without a listener of its own: a separate acceptor task (standing in for the
    /// node's multiplexer) owns the port and hands every connection over with `AdoptStream`.
    fn start_adopting(id: u64) -> (Node, Inbox) {
        let rt = runtime();
        let id = NodeId(id);
        let (link, addr, acceptor) = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("bound");
            let link = PerfectLink::start_shared(id, addr, config());
            let weak = link.downgrade();
            let acceptor = TaskGuard::spawn(async move {
                while let Ok((stream, from)) = listener.accept().await {
                    if !tell_weak(&weak, AdoptStream { stream, from }) {
                        return;
                    }
                }
            });
            (link, addr, acceptor)
        });
        Self::assemble(id, addr, link, Some(acceptor), rt)
    }

    fn assemble(
        id: NodeId,
        addr: SocketAddr,
        link: ActorRef<PerfectLink>,
        acceptor: Option<TaskGuard>,
        rt: Runtime,
    ) -> (Node, Inbox) {
        let mut node = Node {
            id,
            addr,
            link: Some(link),
            probes: Vec::new(),
            acceptor,
            rt: Some(rt),
        };
        let inbox = node.add_probe();
        (node, inbox)
    }

    fn rt(&self) -> &Runtime {
        self.rt.as_ref().expect("runtime")
    }

    fn link(&self) -> &ActorRef<PerfectLink> {
        self.link.as_ref().expect("link")
    }

    /// Adds a requirer of the link; returns its inbox (probe index = creation order).
    fn add_probe(&mut self) -> Inbox {
        let (tx, rx) = mpsc::channel();
        let link = self.link().clone();
        let probe = self.rt().block_on(async move {
            let probe = spawn::<Probe>(Probe {
                net: RequiredPort::default(),
                out: tx,
            });
            connect::<NetworkPort, _, _>(&link, &probe)
                .await
                .expect("wired");
            probe
        });
        self.probes.push(probe);
        Inbox(rx, Cell::new(0))
    }

    /// Has probe `i` trigger `req` on the link.
    fn req_from(&self, i: usize, req: NetRequest) {
        self.probes[i]
            .tell(Cmd(req))
            .try_send()
            .expect("probe alive");
    }

    fn req(&self, req: NetRequest) {
        self.req_from(0, req);
    }

    /// Subscribes probe `i` to `topic`; on return the subscription is queued at the link.
    fn subscribe(&self, i: usize, topic: Topic) {
        self.req_from(i, NetRequest::Subscribe(topic));
        let probe = self.probes[i].clone();
        self.rt()
            .block_on(async move { probe.ask(Sync).await })
            .expect("probe alive");
    }

    fn send(&self, to: &Node, topic: Topic, payload: impl Into<Bytes>) {
        self.req(NetRequest::Send {
            to: to.id,
            topic,
            payload: payload.into(),
        });
    }

    fn add_peer(&self, other: &Node) {
        self.req(NetRequest::AddPeer {
            node: other.id,
            addr: other.addr,
        });
    }

    fn drop_connections(&self) {
        self.link()
            .tell(DropConnections)
            .try_send()
            .expect("link alive");
    }

    fn unacked(&self, to: &Node) -> usize {
        let link = self.link().clone();
        let to = to.id;
        self.rt()
            .block_on(async move { link.ask(Unacked(to)).await })
            .expect("ask")
    }
}

fn runtime() -> Runtime {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

impl Drop for Node {
    fn drop(&mut self) {
        self.acceptor = None;
        self.probes.clear();
        self.link = None;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

fn num(i: u64) -> Bytes {
    Bytes::copy_from_slice(&i.to_be_bytes())
}

fn read_num(b: &Bytes) -> u64 {
    u64::from_be_bytes(b[..].try_into().expect("8 bytes"))
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Two connected nodes whose first probes subscribe to `T1`.
fn pair() -> (Node, Inbox, Node, Inbox) {
    let (a, ia) = Node::start(1);
    let (b, ib) = Node::start(2);
    connect_pair(a, ia, b, ib)
}

fn connect_pair(a: Node, ia: Inbox, b: Node, ib: Inbox) -> (Node, Inbox, Node, Inbox) {
    a.subscribe(0, T1);
    b.subscribe(0, T1);
    a.add_peer(&b);
    b.add_peer(&a);
    ia.wait_up(b.id);
    ib.wait_up(a.id);
    (a, ia, b, ib)
}

#[test]
fn ten_thousand_messages_exactly_once_in_order_across_drops() {
    let (a, _ia, b, ib) = pair();
    let mut next = 0u64;
    for chunk in 0..4u64 {
        for i in chunk * 2_500..(chunk + 1) * 2_500 {
            a.send(&b, T1, num(i));
        }
        // The drop goes straight to a link while the sends still trickle through the probe,
        // so it cuts the stream in the middle.
        if chunk % 2 == 0 {
            a.drop_connections();
        } else {
            b.drop_connections();
        }
        for _ in 0..1_000 {
            let (from, topic, payload) = ib.next_payload();
            assert_eq!((from, topic), (a.id, T1));
            assert_eq!(read_num(&payload), next, "out of order or duplicated");
            next += 1;
        }
    }
    while next < 10_000 {
        let (_, _, payload) = ib.next_payload();
        assert_eq!(read_num(&payload), next, "out of order or duplicated");
        next += 1;
    }
    ib.no_delivery_within(Duration::from_millis(200));
    assert!(ib.1.get() >= 1, "the connection never dropped");
    wait_until("all acked", || a.unacked(&b) == 0);
}

#[test]
fn bidirectional_traffic_survives_drops() {
    let (a, ia, b, ib) = pair();
    for i in 0..3_000 {
        a.send(&b, T1, num(i));
        b.send(&a, T1, num(i));
        if i == 1_000 {
            a.drop_connections();
        }
        if i == 2_000 {
            b.drop_connections();
        }
    }
    for i in 0..3_000 {
        assert_eq!(read_num(&ib.next_payload().2), i);
        assert_eq!(read_num(&ia.next_payload().2), i);
    }
    ia.no_delivery_within(Duration::from_millis(100));
    ib.no_delivery_within(Duration::from_millis(100));
}

#[test]
fn peer_up_and_down_are_indicated() {
    let (a, ia, b, ib) = pair();
    a.drop_connections();
    ia.wait_down(b.id);
    ia.wait_up(b.id);
    ib.wait_down(a.id);
    ib.wait_up(a.id);
    drop(b);
    ia.wait_down(NodeId(2));
}

#[test]
fn block_loses_traffic_both_ways_and_unblock_restores_it() {
    let (a, ia, b, ib) = pair();
    a.send(&b, T1, num(1));
    assert_eq!(read_num(&ib.next_payload().2), 1);

    a.req(NetRequest::Block(b.id));
    ia.wait_down(b.id);
    ib.wait_down(a.id);
    a.send(&b, T1, num(2)); // dropped at a
    b.send(&a, T1, num(200)); // queued at b, refused by a, discarded at unblock
    ib.no_delivery_within(Duration::from_millis(150));
    ia.no_delivery_within(Duration::from_millis(1));

    a.req(NetRequest::Unblock(b.id));
    ia.wait_up(b.id);
    ib.wait_up(a.id);
    a.send(&b, T1, num(3));
    b.send(&a, T1, num(300));
    assert_eq!(read_num(&ib.next_payload().2), 3);
    assert_eq!(read_num(&ia.next_payload().2), 300);
    ia.no_delivery_within(Duration::from_millis(100));
    ib.no_delivery_within(Duration::from_millis(1));
}

/// Connects a raw socket, writes `bytes`, and expects the link to hang up.
fn expect_disconnect(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(bytes).expect("write");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the link to close the socket, got {other:?}"),
    }
}

/// `bytes` after the link preamble.
fn after_preamble(bytes: &[u8]) -> Vec<u8> {
    let mut all = PREAMBLE.to_vec();
    all.extend_from_slice(bytes);
    all
}

#[test]
fn oversized_or_garbage_frames_disconnect_only_that_socket() {
    let (a, ia, b, _ib) = pair();
    expect_disconnect(a.addr, &after_preamble(&u32::MAX.to_be_bytes()));
    let mut garbage = 5u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xff; 5]);
    expect_disconnect(a.addr, &after_preamble(&garbage));
    expect_disconnect(a.addr, &after_preamble(&[0, 0, 0, 1, 2])); // Data before any Hello
    expect_disconnect(a.addr, &garbage); // no preamble at all
    expect_disconnect(a.addr, b"KVL2\0\0\0\0"); // a wrong one
    b.send(&a, T1, num(7));
    assert_eq!(read_num(&ia.next_payload().2), 7);
    // A payload over the maximum is refused at the sender; later ones still flow.
    b.send(&a, T1, vec![0u8; 64 * 1024]);
    b.send(&a, T1, num(8));
    assert_eq!(read_num(&ia.next_payload().2), 8);
}

#[test]
fn subscribers_only_get_their_topic() {
    let (a, _ia, mut b, ib) = pair();
    let ib2 = b.add_probe();
    b.subscribe(1, Topic::Test(2));
    a.send(&b, T1, "one");
    a.send(&b, Topic::Test(2), "two");
    a.send(&b, Topic::Test(3), "three");
    a.send(&b, T1, "end1");
    a.send(&b, Topic::Test(2), "end2");
    assert_eq!(ib.next_payload().2, Bytes::from("one"));
    assert_eq!(ib.next_payload().2, Bytes::from("end1"));
    assert_eq!(
        ib2.next_payload(),
        (a.id, Topic::Test(2), Bytes::from("two"))
    );
    assert_eq!(ib2.next_payload().2, Bytes::from("end2"));
    ib.no_delivery_within(Duration::from_millis(100));
    ib2.no_delivery_within(Duration::from_millis(1));
}

#[test]
fn sends_before_add_peer_are_delivered_after_it() {
    let (a, _ia) = Node::start(1);
    let (b, ib) = Node::start(2);
    b.subscribe(0, T1);
    for i in 0..5 {
        a.send(&b, T1, num(i));
    }
    ib.no_delivery_within(Duration::from_millis(100));
    a.add_peer(&b);
    for i in 0..5 {
        assert_eq!(read_num(&ib.next_payload().2), i);
    }
}

#[test]
fn sends_to_an_unknown_peer_flow_once_it_dials_us() {
    let (a, _ia) = Node::start(1);
    let (b, ib) = Node::start(2);
    b.subscribe(0, T1);
    for i in 0..5 {
        a.send(&b, T1, num(i));
    }
    b.add_peer(&a); // b dials a; a learns b (and its address) from the Hello
    for i in 0..5 {
        assert_eq!(read_num(&ib.next_payload().2), i);
    }
}

#[test]
fn dropping_the_link_closes_its_listener_and_sockets() {
    let (a, ia, mut b, _ib) = pair();
    let addr = b.addr;
    b.probes.clear();
    b.link = None; // last strong reference: the link stops, its runtime keeps running
    ia.wait_down(b.id);
    wait_until("listener closed", || TcpStream::connect(addr).is_err());
    drop(a);
}

#[test]
fn a_restarted_peer_gets_a_fresh_session() {
    let (a, ia, b, _ib) = pair();
    a.send(&b, T1, num(1));
    let b_addr = b.addr;
    drop(b);
    ia.wait_down(NodeId(2));
    // Same node id, same address, new process: numbering restarts at 1 on both sides.
    let (b2, ib2) = Node::start_at(2, b_addr, config());
    b2.subscribe(0, T1);
    ia.wait_up(b2.id);
    a.send(&b2, T1, num(2));
    b2.send(&a, T1, num(20));
    assert_eq!(read_num(&ib2.next_payload().2), 2);
    assert_eq!(read_num(&ia.next_payload().2), 20);
}

#[test]
fn a_silent_socket_is_closed_after_the_handshake_timeout() {
    let config = LinkConfig {
        handshake_timeout: Duration::from_millis(50),
        ..config()
    };
    let (a, _ia) = Node::start_with(1, config);
    let started = Instant::now();
    expect_disconnect(a.addr, &[]);
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[test]
fn adopted_streams_deliver_exactly_once_in_order_across_drops() {
    let (a, ia) = Node::start_adopting(1);
    let (b, ib) = Node::start_adopting(2);
    let (a, ia, b, ib) = connect_pair(a, ia, b, ib);
    for i in 0..5_000 {
        a.send(&b, T1, num(i));
        b.send(&a, T1, num(i));
        if i == 1_500 {
            a.drop_connections();
        }
        if i == 3_500 {
            b.drop_connections();
        }
    }
    for i in 0..5_000 {
        assert_eq!(
            read_num(&ib.next_payload().2),
            i,
            "out of order or duplicated"
        );
        assert_eq!(
            read_num(&ia.next_payload().2),
            i,
            "out of order or duplicated"
        );
    }
    ia.no_delivery_within(Duration::from_millis(200));
    ib.no_delivery_within(Duration::from_millis(1));
    assert!(ia.1.get() + ib.1.get() >= 1, "the connection never dropped");
    wait_until("all acked", || a.unacked(&b) == 0 && b.unacked(&a) == 0);
    // The acceptor hands over anything; the link itself refuses what is not a link peer.
    expect_disconnect(a.addr, &[0, 0, 0, 3, 1, 2, 3]);
    a.send(&b, T1, num(9));
    assert_eq!(read_num(&ib.next_payload().2), 9);
}
