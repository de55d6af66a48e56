//! The component framework driven through real kameo actors.

use std::time::Duration;

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::component::{connect, spawn};
use kv_ports::port::Port;
use kv_ports::supervisor::{spawn_child, start_supervisor, CountChildren};
use kv_ports::testkit::{fake_provider, probe, FakeProvider, Indicate, Probe, Trigger, TriggerOn};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

struct Echo;

impl Port for Echo {
    type Request = String;
    type Indication = String;
}

const WAIT: Duration = Duration::from_secs(5);

async fn next<T>(rx: &mut UnboundedReceiver<T>) -> T {
    timeout(WAIT, rx.recv())
        .await
        .expect("timed out")
        .expect("channel closed")
}

async fn nothing_more<T: std::fmt::Debug>(rx: &mut UnboundedReceiver<T>) {
    // Anything in flight lands within a few scheduler turns; a real delivery would show here.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(rx.try_recv().is_err(), "unexpected extra event");
}

#[tokio::test]
async fn requests_reach_the_provider_and_answers_only_the_asker() {
    let (provider, mut requests) = fake_provider::<Echo>();
    let (alice, mut alice_sees) = probe::<Echo, _>(&provider).await.unwrap();
    let (_bob, mut bob_sees) = probe::<Echo, _>(&provider).await.unwrap();

    assert!(alice.ask(Trigger("hi".to_string())).await.unwrap());
    let (conn, request) = next(&mut requests).await;
    assert_eq!(request, "hi");

    provider
        .tell(Indicate {
            to: Some(conn),
            event: "for alice".to_string(),
        })
        .await
        .unwrap();
    assert_eq!(next(&mut alice_sees).await, "for alice");
    nothing_more(&mut bob_sees).await;
}

#[tokio::test]
async fn a_requirer_of_several_providers_can_pick_one() {
    let (first, mut first_sees) = fake_provider::<Echo>();
    let (second, mut second_sees) = fake_provider::<Echo>();
    let (requirer, _) = probe::<Echo, _>(&first).await.unwrap();
    let to_second = connect::<Echo, _, _>(&second, &requirer).await.unwrap();

    let picked = TriggerOn(to_second, "only second".to_string());
    assert!(requirer.ask(picked).await.unwrap());
    assert_eq!(
        next(&mut second_sees).await,
        (to_second, "only second".to_string())
    );
    nothing_more(&mut first_sees).await;

    second.stop_gracefully().await.unwrap();
    second.wait_for_shutdown().await;
    let gone = TriggerOn(to_second, "nobody".to_string());
    assert!(
        !requirer.ask(gone).await.unwrap(),
        "a stopped provider takes nothing"
    );
}

#[tokio::test]
async fn indications_broadcast_to_every_requirer() {
    let (provider, _requests) = fake_provider::<Echo>();
    let (_a, mut a_sees) = probe::<Echo, _>(&provider).await.unwrap();
    let (_b, mut b_sees) = probe::<Echo, _>(&provider).await.unwrap();
    provider
        .tell(Indicate {
            to: None,
            event: "all".to_string(),
        })
        .await
        .unwrap();
    assert_eq!(next(&mut a_sees).await, "all");
    assert_eq!(next(&mut b_sees).await, "all");
}

#[tokio::test]
async fn connections_are_weak_and_a_stopped_provider_is_noticed() {
    let (provider, _requests) = fake_provider::<Echo>();
    let (requirer, _seen) = probe::<Echo, _>(&provider).await.unwrap();
    let weak = provider.downgrade();
    drop(provider);
    timeout(WAIT, weak.wait_for_shutdown()).await.unwrap();
    assert!(!requirer.ask(Trigger("lost".to_string())).await.unwrap());
}

#[tokio::test]
async fn connecting_to_a_stopped_component_is_an_error() {
    let (provider, _requests) = fake_provider::<Echo>();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let requirer = spawn::<Probe<Echo>>(tx);
    requirer.stop_gracefully().await.unwrap();
    requirer.wait_for_shutdown().await;
    assert!(connect::<Echo, _, _>(&provider, &requirer).await.is_err());
}

#[tokio::test]
async fn dropping_the_supervisor_stops_the_tree() {
    let node = start_supervisor("n1");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let provider = spawn_child::<FakeProvider<Echo>>(&node, tx).await;
    let (tx, _seen) = tokio::sync::mpsc::unbounded_channel();
    let requirer = spawn_child::<Probe<Echo>>(&node, tx).await;
    connect::<Echo, _, _>(&provider, &requirer).await.unwrap();
    assert_eq!(node.ask(CountChildren).await.unwrap(), 2);

    let (provider, requirer) = (provider.downgrade(), requirer.downgrade());
    node.stop_gracefully().await.unwrap();
    drop(node);
    timeout(WAIT, provider.wait_for_shutdown()).await.unwrap();
    timeout(WAIT, requirer.wait_for_shutdown()).await.unwrap();
}

/// A component that fails on demand.
#[derive(Actor)]
struct Fragile;

struct Fail;

impl Message<Fail> for Fragile {
    type Reply = ();

    async fn handle(&mut self, _: Fail, _: &mut Context<Self, ()>) {
        panic!("deliberate failure");
    }
}

#[tokio::test]
async fn a_failing_component_stops_its_node() {
    let node = start_supervisor("n2");
    let fragile: ActorRef<Fragile> = spawn_child::<Fragile>(&node, Fragile).await;
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let sibling = spawn_child::<FakeProvider<Echo>>(&node, tx)
        .await
        .downgrade();
    let node_weak = node.downgrade();
    drop(node);

    fragile.tell(Fail).await.unwrap();
    timeout(WAIT, node_weak.wait_for_shutdown()).await.unwrap();
    timeout(WAIT, sibling.wait_for_shutdown()).await.unwrap();
}

#[tokio::test]
async fn dropping_the_last_supervisor_reference_stops_the_tree() {
    let node = start_supervisor("n3");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let child = spawn_child::<FakeProvider<Echo>>(&node, tx)
        .await
        .downgrade();
    let node_weak = node.downgrade();
    drop(node);
    timeout(WAIT, node_weak.wait_for_shutdown()).await.unwrap();
    timeout(WAIT, child.wait_for_shutdown()).await.unwrap();
}
