//! Throughput of the perfect link through the full component path:
//! requirer → link → TCP (loopback) → link → requirer, in one process.
//!
//! `cargo run --release -p kv-components --example link_bench [messages_64B] [messages_1KiB]`

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kameo::prelude::*;
use kv_components::perfect_link::{LinkConfig, PerfectLink};
use kv_ports::component::{connect, spawn, Requires};
use kv_ports::ids::NodeId;
use kv_ports::network::{NetIndication, NetRequest, NetworkPort, Topic};
use kv_ports::port::{Ind, RequiredPort};

const TOPIC: Topic = Topic::Test(0);
/// Most messages in flight (sent by the source, not yet seen by the sink).
const WINDOW: u64 = 50_000;

/// Counts what the link delivers.
#[derive(Actor)]
struct Sink {
    net: RequiredPort<NetworkPort>,
    frames: Arc<AtomicU64>,
    up: Arc<AtomicBool>,
}

impl Requires<NetworkPort> for Sink {
    fn required(&mut self) -> &mut RequiredPort<NetworkPort> {
        &mut self.net
    }
}

impl Message<Ind<NetworkPort>> for Sink {
    type Reply = ();
    async fn handle(&mut self, ind: Ind<NetworkPort>, _: &mut Context<Self, ()>) {
        match ind.event {
            NetIndication::Deliver { .. } => {
                self.frames.fetch_add(1, Ordering::Relaxed);
            }
            NetIndication::PeerUp(_) => self.up.store(true, Ordering::Relaxed),
            NetIndication::PeerDown(_) => {}
        }
    }
}

/// Triggers a request on the requirer's port (source or sink alike).
struct Trigger(NetRequest, u64);

impl Message<Trigger> for Sink {
    type Reply = ();
    async fn handle(&mut self, Trigger(req, times): Trigger, _: &mut Context<Self, ()>) {
        for _ in 0..times {
            self.net.trigger(req.clone());
        }
    }
}

kv_ports::component!(Sink);

struct Side {
    node: NodeId,
    addr: SocketAddr,
    _link: ActorRef<PerfectLink>,
    app: ActorRef<Sink>,
    frames: Arc<AtomicU64>,
    up: Arc<AtomicBool>,
}

async fn side(id: u64) -> Side {
    let node = NodeId(id);
    let local = "127.0.0.1:0".parse().expect("addr");
    let (link, addr) = PerfectLink::start(node, local, LinkConfig::default())
        .await
        .expect("link");
    let frames = Arc::new(AtomicU64::new(0));
    let up = Arc::new(AtomicBool::new(false));
    let app = spawn::<Sink>(Sink {
        net: RequiredPort::default(),
        frames: frames.clone(),
        up: up.clone(),
    });
    connect::<NetworkPort, _, _>(&link, &app)
        .await
        .expect("wire");
    Side {
        node,
        addr,
        _link: link,
        app,
        frames,
        up,
    }
}

/// Sends `n` messages of `size` bytes from `a` to `b`; returns the elapsed time.
async fn run(a: &Side, b: &Side, n: u64, size: usize) -> Duration {
    let payload = Bytes::from(vec![7u8; size]);
    let send = NetRequest::Send {
        to: b.node,
        topic: TOPIC,
        payload,
    };
    let start_count = b.frames.load(Ordering::Relaxed);
    let target = start_count + n;
    let started = Instant::now();
    let mut sent = 0;
    while sent < n {
        let seen = b.frames.load(Ordering::Relaxed) - start_count;
        let room = (seen + WINDOW).saturating_sub(sent).min(n - sent);
        if room >= WINDOW / 4 || sent + room == n && room > 0 {
            a.app
                .tell(Trigger(send.clone(), room))
                .await
                .expect("source");
            sent += room;
        } else {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    while b.frames.load(Ordering::Relaxed) < target {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    started.elapsed()
}

fn report(label: &str, n: u64, size: usize, took: Duration) {
    let secs = took.as_secs_f64();
    let fps = n as f64 / secs;
    let mbps = fps * size as f64 / 1e6;
    println!("{label:>6}: {n:>9} msgs in {secs:>6.3} s  {fps:>12.0} frames/s  {mbps:>8.1} MB/s");
}

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let small = arg(1, 1_000_000);
    let large = arg(2, 200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let a = side(1).await;
        let b = side(2).await;
        b.app
            .tell(Trigger(NetRequest::Subscribe(TOPIC), 1))
            .await
            .expect("sink");
        a.app
            .tell(Trigger(
                NetRequest::AddPeer {
                    node: b.node,
                    addr: b.addr,
                },
                1,
            ))
            .await
            .expect("source");
        while !(a.up.load(Ordering::Relaxed) && b.up.load(Ordering::Relaxed)) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        run(&a, &b, 10_000, 64).await; // warm-up
        report("64 B", small, 64, run(&a, &b, small, 64).await);
        report("1 KiB", large, 1024, run(&a, &b, large, 1024).await);
    });
}
