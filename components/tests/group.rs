//! One replication group of three members in one process: leader election, Sequence Paxos
//! and replicas wired through real ports over an in-memory network, with real timers under
//! tokio's paused clock (deterministic virtual time).

use std::time::Duration;

use bytes::Bytes;
use kameo::actor::ActorRef;
use kv_components::group::{start_member, GroupMember, MemberConfig};
use kv_components::memory_link::{MemoryLink, MemoryNetwork};
use kv_components::sequence_paxos::component::QueryStatus;
use kv_components::timer::Timer;
use kv_ports::ids::{ClientId, GroupId, NodeId};
use kv_ports::kv::{KvCommand, KvError, KvOp, KvPort, KvReply, KvResult, RequestId};
use kv_ports::supervisor::{spawn_child, start_supervisor, Supervisor};
use kv_ports::testkit::{probe, Probe, Trigger};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

const GROUP: GroupId = GroupId(1);

struct Node {
    id: NodeId,
    supervisor: ActorRef<Supervisor>,
    _link: ActorRef<MemoryLink>,
    member: GroupMember,
    client: ActorRef<Probe<KvPort>>,
    replies: UnboundedReceiver<KvReply>,
}

async fn start_node(network: &MemoryNetwork, id: u64, members: &[NodeId]) -> Node {
    let supervisor = start_supervisor(format!("n{id}"));
    let link = network.join(NodeId(id));
    let timer = spawn_child::<Timer>(&supervisor, ()).await;
    let config = MemberConfig::new(GROUP, NodeId(id), members.to_vec());
    let member = start_member(&supervisor, &link, &timer, config)
        .await
        .unwrap();
    let (client, replies) = probe::<KvPort, _>(&member.replica).await.unwrap();
    Node {
        id: NodeId(id),
        supervisor,
        _link: link,
        member,
        client,
        replies,
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

/// A client session that retries a command, with the same id, at every node in turn until
/// one answers it.
struct Client {
    id: ClientId,
    seq: u64,
}

impl Client {
    fn new() -> Self {
        Client {
            id: ClientId::random(),
            seq: 0,
        }
    }

    fn next(&mut self, op: KvOp) -> KvCommand {
        self.seq += 1;
        KvCommand {
            id: RequestId {
                client: self.id,
                seq: self.seq,
            },
            op,
        }
    }

    async fn run(&mut self, nodes: &mut [Node], op: KvOp) -> KvResult {
        let cmd = self.next(op);
        resend(nodes, &cmd).await
    }
}

async fn resend(nodes: &mut [Node], cmd: &KvCommand) -> KvResult {
    for attempt in 0..100 {
        let node = &mut nodes[attempt % nodes.len()];
        if node.client.ask(Trigger(cmd.clone())).await.is_err() {
            continue;
        }
        if let Some(result) = answer(&mut node.replies, cmd.id).await {
            match result {
                Ok(result) => return result,
                // No leader yet (an election is under way): back off like a real client.
                Err(KvError::NotLeader { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }
    panic!("no node answered {cmd:?}");
}

/// The answer to `id`, skipping answers to earlier attempts; `None` after a second of
/// (virtual) silence.
async fn answer(
    replies: &mut UnboundedReceiver<KvReply>,
    id: RequestId,
) -> Option<Result<KvResult, KvError>> {
    loop {
        let reply = timeout(Duration::from_secs(1), replies.recv())
            .await
            .ok()??;
        if reply.id == id {
            return Some(reply.result);
        }
    }
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

async fn leader(nodes: &[Node]) -> NodeId {
    for _ in 0..100 {
        for node in nodes {
            if let Ok(status) = node.member.paxos.ask(QueryStatus).await {
                if status.leading {
                    return node.id;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader elected");
}

#[tokio::test(start_paused = true)]
async fn a_group_elects_a_leader_and_serves_every_operation() {
    let network = MemoryNetwork::new();
    let mut nodes = start_group(&network).await;
    let mut client = Client::new();

    assert_eq!(
        client.run(&mut nodes, get("k")).await,
        KvResult::Value(None)
    );
    assert_eq!(
        client.run(&mut nodes, put("k", "1")).await,
        KvResult::Written
    );
    assert_eq!(
        client.run(&mut nodes, get("k")).await,
        KvResult::Value(Some(key("1")))
    );
    let cas = |expected: Option<&str>, new: &str| KvOp::Cas {
        key: key("k"),
        expected: expected.map(key),
        new: key(new),
    };
    assert_eq!(
        client.run(&mut nodes, cas(Some("0"), "2")).await,
        KvResult::Swapped(false)
    );
    assert_eq!(
        client.run(&mut nodes, cas(Some("1"), "2")).await,
        KvResult::Swapped(true)
    );
    assert_eq!(
        client.run(&mut nodes, KvOp::Delete { key: key("k") }).await,
        KvResult::Deleted(true)
    );
    assert_eq!(
        client.run(&mut nodes, cas(None, "3")).await,
        KvResult::Swapped(true)
    );
    assert_eq!(
        client.run(&mut nodes, get("k")).await,
        KvResult::Value(Some(key("3")))
    );
}

#[tokio::test(start_paused = true)]
async fn a_retried_command_takes_effect_once() {
    let network = MemoryNetwork::new();
    let mut nodes = start_group(&network).await;
    let mut client = Client::new();
    let swap = client.next(KvOp::Cas {
        key: key("x"),
        expected: None,
        new: key("a"),
    });
    assert_eq!(resend(&mut nodes, &swap).await, KvResult::Swapped(true));
    // The retry is answered from the session table: still "swapped", not a second attempt.
    assert_eq!(resend(&mut nodes, &swap).await, KvResult::Swapped(true));
    assert_eq!(
        client.run(&mut nodes, get("x")).await,
        KvResult::Value(Some(key("a")))
    );
}

#[tokio::test(start_paused = true)]
async fn the_group_serves_again_after_its_leader_crashes() {
    let network = MemoryNetwork::new();
    let mut nodes = start_group(&network).await;
    let mut client = Client::new();
    for i in 0..20 {
        let value = i.to_string();
        assert_eq!(
            client.run(&mut nodes, put("k", &value)).await,
            KvResult::Written
        );
    }

    let crashed = leader(&nodes).await;
    network.isolate(crashed);
    let position = nodes.iter().position(|n| n.id == crashed).unwrap();
    let node = nodes.remove(position);
    node.supervisor.stop_gracefully().await.unwrap();
    node.supervisor.wait_for_shutdown().await;

    assert_ne!(leader(&nodes).await, crashed);
    assert_eq!(
        client.run(&mut nodes, get("k")).await,
        KvResult::Value(Some(key("19")))
    );
    assert_eq!(
        client.run(&mut nodes, put("k", "after")).await,
        KvResult::Written
    );
    assert_eq!(
        client.run(&mut nodes, get("k")).await,
        KvResult::Value(Some(key("after")))
    );
}
