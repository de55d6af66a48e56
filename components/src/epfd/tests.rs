//! The EPFD shell wired to real timers and an in-memory network of three nodes.

use std::time::Duration;

use kameo::actor::ActorRef;
use kv_ports::component::{connect, spawn, Start};
use kv_ports::fd::{FailureDetectorPort, FdIndication, FdRequest};
use kv_ports::ids::NodeId;
use kv_ports::network::NetworkPort;
use kv_ports::testkit::{probe, Probe, Trigger};
use kv_ports::timer::TimerPort;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

use super::core::EpfdConfig;
use super::Epfd;
use crate::memory_link::{MemoryLink, MemoryNetwork};
use crate::timer::Timer;

struct Node {
    epfd: ActorRef<Epfd>,
    _link: ActorRef<MemoryLink>,
    _timer: ActorRef<Timer>,
    _probe: ActorRef<Probe<FailureDetectorPort>>,
    seen: UnboundedReceiver<FdIndication>,
}

const CONFIG: EpfdConfig = EpfdConfig {
    initial_delay: Duration::from_millis(100),
    increment: Duration::from_millis(100),
};

async fn node(network: &MemoryNetwork, me: u64, all: &[u64]) -> Node {
    let link = network.join(NodeId(me));
    let timer = spawn::<Timer>(());
    let epfd = spawn::<Epfd>(CONFIG);
    connect::<NetworkPort, _, _>(&link, &epfd).await.unwrap();
    connect::<TimerPort, _, _>(&timer, &epfd).await.unwrap();
    let (probe, seen) = probe::<FailureDetectorPort, _>(&epfd).await.unwrap();
    epfd.tell(Start).await.unwrap();
    let others = all
        .iter()
        .filter(|&&n| n != me)
        .map(|&n| NodeId(n))
        .collect();
    probe
        .ask(Trigger(FdRequest::Monitor(others)))
        .await
        .unwrap();
    Node {
        epfd,
        _link: link,
        _timer: timer,
        _probe: probe,
        seen,
    }
}

async fn cluster(network: &MemoryNetwork, ids: &[u64]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for &id in ids {
        nodes.push(node(network, id, ids).await);
    }
    nodes
}

/// The next indication, letting virtual time run as far as needed (time is paused).
async fn next(seen: &mut UnboundedReceiver<FdIndication>) -> FdIndication {
    timeout(Duration::from_secs(60), seen.recv())
        .await
        .expect("no indication")
        .unwrap()
}

/// Asserts that nothing is indicated for `span` of virtual time.
async fn quiet(seen: &mut UnboundedReceiver<FdIndication>, span: Duration) {
    if let Ok(ind) = timeout(span, seen.recv()).await {
        panic!("unexpected {ind:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn correct_nodes_are_never_suspected() {
    let network = MemoryNetwork::new();
    let mut nodes = cluster(&network, &[1, 2, 3]).await;
    for node in &mut nodes {
        quiet(&mut node.seen, Duration::from_secs(10)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_crashed_node_is_suspected_by_everyone_else() {
    let network = MemoryNetwork::new();
    let mut nodes = cluster(&network, &[1, 2, 3]).await;
    quiet(&mut nodes[0].seen, Duration::from_secs(1)).await;

    let crashed = nodes.pop().unwrap();
    crashed.epfd.kill();
    crashed.epfd.wait_for_shutdown().await;

    for node in &mut nodes {
        assert_eq!(next(&mut node.seen).await, FdIndication::Suspect(NodeId(3)));
        quiet(&mut node.seen, Duration::from_secs(5)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_false_suspicion_is_restored_after_the_link_heals() {
    let network = MemoryNetwork::new();
    let mut nodes = cluster(&network, &[1, 2]).await;
    network.cut(NodeId(1), NodeId(2));
    assert_eq!(
        next(&mut nodes[0].seen).await,
        FdIndication::Suspect(NodeId(2))
    );
    assert_eq!(
        next(&mut nodes[1].seen).await,
        FdIndication::Suspect(NodeId(1))
    );
    network.heal(NodeId(1), NodeId(2));
    assert_eq!(
        next(&mut nodes[0].seen).await,
        FdIndication::Restore(NodeId(2))
    );
    assert_eq!(
        next(&mut nodes[1].seen).await,
        FdIndication::Restore(NodeId(1))
    );
    quiet(&mut nodes[0].seen, Duration::from_secs(5)).await;
}
