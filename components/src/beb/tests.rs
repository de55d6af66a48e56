//! The BEB shell on an in-memory network of three nodes.

use std::time::Duration;

use bytes::Bytes;
use kameo::actor::ActorRef;
use kv_ports::broadcast::{BroadcastDeliver, BroadcastPort, BroadcastRequest};
use kv_ports::component::{connect, spawn, Start};
use kv_ports::ids::NodeId;
use kv_ports::network::{NetworkPort, Topic};
use kv_ports::testkit::{probe, Probe, Trigger};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

use super::Beb;
use crate::memory_link::{MemoryLink, MemoryNetwork};

struct Node {
    _beb: ActorRef<Beb>,
    _link: ActorRef<MemoryLink>,
    app: ActorRef<Probe<BroadcastPort>>,
    seen: UnboundedReceiver<BroadcastDeliver>,
}

const TOPIC: Topic = Topic::Test(7);

async fn node(network: &MemoryNetwork, me: u64, members: &[u64]) -> Node {
    let link = network.join(NodeId(me));
    let beb = spawn::<Beb>(NodeId(me));
    connect::<NetworkPort, _, _>(&link, &beb).await.unwrap();
    let (app, seen) = probe::<BroadcastPort, _>(&beb).await.unwrap();
    beb.tell(Start).await.unwrap();
    let members = members.iter().map(|&n| NodeId(n)).collect();
    app.ask(Trigger(BroadcastRequest::Members(members)))
        .await
        .unwrap();
    app.ask(Trigger(BroadcastRequest::Subscribe(TOPIC)))
        .await
        .unwrap();
    Node {
        _beb: beb,
        _link: link,
        app,
        seen,
    }
}

async fn next(seen: &mut UnboundedReceiver<BroadcastDeliver>) -> BroadcastDeliver {
    timeout(Duration::from_secs(5), seen.recv())
        .await
        .expect("no delivery")
        .unwrap()
}

fn broadcast(text: &'static str) -> BroadcastRequest {
    BroadcastRequest::Broadcast {
        topic: TOPIC,
        payload: Bytes::from_static(text.as_bytes()),
    }
}

#[tokio::test]
async fn every_member_delivers_each_broadcast_once_in_order() {
    let network = MemoryNetwork::new();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(node(&network, id, &[1, 2, 3]).await);
    }
    nodes[0].app.ask(Trigger(broadcast("a"))).await.unwrap();
    nodes[0].app.ask(Trigger(broadcast("b"))).await.unwrap();
    for node in &mut nodes {
        for expected in ["a", "b"] {
            let got = next(&mut node.seen).await;
            assert_eq!(
                (got.from, got.payload.as_ref()),
                (NodeId(1), expected.as_bytes())
            );
        }
        assert!(node.seen.try_recv().is_err());
    }
}

#[tokio::test]
async fn a_cut_member_misses_the_broadcast_and_others_still_get_it() {
    let network = MemoryNetwork::new();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(node(&network, id, &[1, 2, 3]).await);
    }
    network.cut(NodeId(1), NodeId(3));
    nodes[0].app.ask(Trigger(broadcast("x"))).await.unwrap();
    assert_eq!(next(&mut nodes[0].seen).await.payload.as_ref(), b"x");
    assert_eq!(next(&mut nodes[1].seen).await.payload.as_ref(), b"x");
    assert!(timeout(Duration::from_millis(100), nodes[2].seen.recv())
        .await
        .is_err());
}

#[tokio::test]
async fn only_subscribers_of_the_topic_deliver() {
    let network = MemoryNetwork::new();
    let mut a = node(&network, 1, &[1, 2]).await;
    let mut b = node(&network, 2, &[1, 2]).await;
    let other = BroadcastRequest::Broadcast {
        topic: Topic::Test(8),
        payload: Bytes::new(),
    };
    a.app.ask(Trigger(other)).await.unwrap();
    a.app.ask(Trigger(broadcast("mine"))).await.unwrap();
    assert_eq!(next(&mut b.seen).await.payload.as_ref(), b"mine");
    assert_eq!(next(&mut a.seen).await.payload.as_ref(), b"mine");
}
