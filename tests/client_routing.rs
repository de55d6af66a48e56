//! The cluster-aware client against fake nodes: small TCP servers in this test speaking the
//! native protocol, answering `GetMap` with a hand-built slot map and commands according to a
//! scripted role. Every request a fake receives is logged, so the tests can say exactly where
//! the client sent what, and under which request id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use kv::client::{CallError, Client, ClientConfig, Connection};
use kv::native::{
    ClientFrame, CoordinatorStatus, MemberStage, MemberStatus, NodeStatus, ServerCodec,
    ServerFrame, StatusReport,
};
use kv::repl::{execute_line, Outcome};
use kv::service::{KvService, ServiceError};
use kv_components::bootstrap::formation::form;
use kv_components::replica::KvStore;
use kv_ports::ids::{ClientId, GroupId, NodeId};
use kv_ports::kv::{KvCommand, KvError, KvOp, KvResult, RequestId};
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::codec::Framed;

const WAIT: Duration = Duration::from_secs(10);

/// How a fake node answers a command.
#[derive(Clone, Debug)]
enum Role {
    /// Applies it to its group's store and answers.
    Leader,
    /// Answers `NotLeader` with this hint.
    Follower(Option<NodeId>),
    /// Closes the connection without answering, and hands leadership to the given node (as
    /// if it crashed and that node won the election).
    DropAndHandOver(NodeId),
    /// Never answers (the connection stays open), and hands leadership over like above.
    MuteAndHandOver(NodeId),
    /// Never answers (the connection stays open).
    Mute,
    /// Answers with a frame that answers nothing (a slot map).
    Garbled,
}

/// What the fakes share: the script, and what they saw.
#[derive(Default)]
struct World {
    map: Mutex<Option<SlotMap>>,
    roles: Mutex<HashMap<NodeId, Role>>,
    statuses: Mutex<HashMap<SocketAddr, StatusReport>>,
    /// Every command each server received, by server address.
    logs: Mutex<HashMap<SocketAddr, Vec<KvCommand>>>,
    stores: Mutex<HashMap<GroupId, KvStore>>,
    /// Commands a node received for a key its group does not own.
    misrouted: AtomicUsize,
    /// Connections each server accepted, by server address.
    accepted: Mutex<HashMap<SocketAddr, usize>>,
}

impl World {
    fn role(&self, id: NodeId) -> Role {
        self.roles.lock().unwrap()[&id].clone()
    }

    fn set_role(&self, id: NodeId, role: Role) {
        self.roles.lock().unwrap().insert(id, role);
    }

    fn log(&self, addr: SocketAddr) -> Vec<KvCommand> {
        self.logs
            .lock()
            .unwrap()
            .get(&addr)
            .cloned()
            .unwrap_or_default()
    }

    fn clear_logs(&self) {
        self.logs.lock().unwrap().clear();
    }

    fn apply(&self, group: GroupId, op: &KvOp) -> KvResult {
        let mut stores = self.stores.lock().unwrap();
        stores.entry(group).or_default().apply(op)
    }
}

/// What a fake server is.
#[derive(Copy, Clone, Debug)]
enum Kind {
    /// A data node; `group` is where its commands are applied.
    Node { id: NodeId, group: GroupId },
    /// The coordinator: maps and status, no data.
    Coordinator,
}

/// A running fake server; aborted when dropped.
struct Fake {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_fake(world: Arc<World>, kind: Kind) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            *world.accepted.lock().unwrap().entry(addr).or_default() += 1;
            conns.push(AbortOnDrop(tokio::spawn(serve(
                stream,
                addr,
                world.clone(),
                kind,
            ))));
        }
    });
    Fake { addr, task }
}

/// Aborts a connection task when the server task (and so its list) is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve(stream: TcpStream, me: SocketAddr, world: Arc<World>, kind: Kind) {
    let mut framed = Framed::new(stream, ServerCodec::default());
    while let Some(Ok(frame)) = framed.next().await {
        let answer = match frame {
            ClientFrame::GetMap { have } => {
                let map = world.map.lock().unwrap().clone();
                ServerFrame::Map(map.filter(|m| m.epoch > have))
            }
            ClientFrame::GetStatus => {
                let status = world.statuses.lock().unwrap().get(&me).cloned();
                match status {
                    Some(status) => ServerFrame::Status(status),
                    None => futures::future::pending().await,
                }
            }
            ClientFrame::CheckIn { .. }
            | ClientFrame::DirectiveDone { .. }
            | ClientFrame::Suspicion { .. }
            | ClientFrame::Admin(_)
            | ClientFrame::Groups(_) => return,
            ClientFrame::Request(cmd) => {
                world
                    .logs
                    .lock()
                    .unwrap()
                    .entry(me)
                    .or_default()
                    .push(cmd.clone());
                match kind {
                    Kind::Coordinator => ServerFrame::Rejected {
                        id: cmd.id,
                        message: "the coordinator keeps no data".into(),
                    },
                    Kind::Node { id, group } => match command(&world, id, group, &cmd) {
                        Answer::Frame(frame) => frame,
                        Answer::Close => return,
                        // Keep the connection open without answering, until aborted.
                        Answer::Mute => futures::future::pending().await,
                    },
                }
            }
        };
        if framed.send(answer).await.is_err() {
            return;
        }
    }
}

/// What a node does with a command.
enum Answer {
    Frame(ServerFrame),
    Close,
    Mute,
}

/// A node's answer to a command per its role.
fn command(world: &World, id: NodeId, group: GroupId, cmd: &KvCommand) -> Answer {
    if let Some(map) = world.map.lock().unwrap().as_ref() {
        if cmd.op.key().and_then(|k| map.group_of_key(k)) != Some(group) {
            world.misrouted.fetch_add(1, Ordering::SeqCst);
        }
    }
    let result = match world.role(id) {
        Role::Leader => Ok(world.apply(group, &cmd.op)),
        Role::Follower(hint) => Err(KvError::NotLeader { hint }),
        Role::DropAndHandOver(next) => {
            hand_over(world, id, next);
            return Answer::Close;
        }
        Role::MuteAndHandOver(next) => {
            hand_over(world, id, next);
            return Answer::Mute;
        }
        Role::Mute => return Answer::Mute,
        Role::Garbled => return Answer::Frame(ServerFrame::Map(None)),
    };
    Answer::Frame(ServerFrame::Reply { id: cmd.id, result })
}

fn hand_over(world: &World, from: NodeId, to: NodeId) {
    world.set_role(from, Role::Follower(Some(to)));
    world.set_role(to, Role::Leader);
}

/// Four fake nodes in two groups of two (nodes 0 and 1 form group 0, nodes 2 and 3 group 1)
/// and a fake coordinator, sharing one [`World`].
struct Cluster {
    world: Arc<World>,
    coordinator: Fake,
    nodes: Vec<Option<Fake>>,
    ids: Vec<NodeId>,
    addrs: Vec<SocketAddr>,
    map: SlotMap,
}

impl Cluster {
    fn stop(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    fn log(&self, i: usize) -> Vec<KvCommand> {
        self.world.log(self.addrs[i])
    }
}

/// Node ids are random 64-bit numbers in real clusters; these are as long.
fn node_id(i: usize) -> NodeId {
    NodeId(0x5eed_0000_0000_0000 + 0x11 * (i as u64 + 1))
}

async fn cluster() -> Cluster {
    let world = Arc::new(World::default());
    let mut nodes = Vec::new();
    for i in 0..4 {
        let kind = Kind::Node {
            id: node_id(i),
            group: GroupId(i as u32 / 2),
        };
        nodes.push(Some(start_fake(world.clone(), kind).await));
    }
    let addrs: Vec<SocketAddr> = nodes.iter().flatten().map(|f| f.addr).collect();
    let infos: Vec<NodeInfo> = (0..4)
        .map(|i| NodeInfo {
            id: node_id(i),
            link: addrs[i],
            client: addrs[i],
            resp: None,
            http: None,
        })
        .collect();
    let map = form(&infos, 2).unwrap();
    assert_eq!(map.members_of(GroupId(0)), &[node_id(0), node_id(1)]);
    assert_eq!(map.members_of(GroupId(1)), &[node_id(2), node_id(3)]);
    *world.map.lock().unwrap() = Some(map.clone());
    // Group 0 is led by its second member, so a first try at the first is redirected.
    world.set_role(node_id(0), Role::Follower(Some(node_id(1))));
    world.set_role(node_id(1), Role::Leader);
    world.set_role(node_id(2), Role::Leader);
    world.set_role(node_id(3), Role::Follower(Some(node_id(2))));
    let coordinator = start_fake(world.clone(), Kind::Coordinator).await;
    Cluster {
        world,
        coordinator,
        nodes,
        ids: (0..4).map(node_id).collect(),
        addrs,
        map,
    }
}

/// Timeouts short enough for tests, long enough not to fire on a loaded machine by accident.
fn config() -> ClientConfig {
    ClientConfig {
        deadline: Duration::from_secs(5),
        attempt_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        map_refresh: Duration::from_secs(2),
        status_timeout: Duration::from_millis(300),
    }
}

/// The `n`-th key (of an endless sequence) that `map` places in `group`.
fn key_in(map: &SlotMap, group: u32, n: usize) -> Bytes {
    (0..)
        .map(|i| format!("key{i}"))
        .filter(|k| map.group_of_key(k.as_bytes()) == Some(GroupId(group)))
        .map(Bytes::from)
        .nth(n)
        .unwrap()
}

fn put(key: &Bytes, value: &str) -> KvOp {
    KvOp::Put {
        key: key.clone(),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn get(key: &Bytes) -> KvOp {
    KvOp::Get { key: key.clone() }
}

async fn run(client: &Client, op: KvOp) -> Result<KvResult, ServiceError> {
    timeout(WAIT, client.execute(op)).await.unwrap()
}

fn ids(log: &[KvCommand]) -> Vec<RequestId> {
    log.iter().map(|c| c.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_go_straight_to_the_leader_of_the_keys_group() {
    let c = cluster().await;
    let client = Client::connect([c.coordinator.addr], config()).unwrap();
    let (a, b) = (key_in(&c.map, 0, 0), key_in(&c.map, 1, 0));
    assert_eq!(run(&client, put(&a, "a0")).await, Ok(KvResult::Written));
    assert_eq!(run(&client, put(&b, "b0")).await, Ok(KvResult::Written));
    // The first try for group 0 went to its first member, which redirected to the leader.
    assert_eq!(ids(&c.log(0)), ids(&c.log(1)), "same id at both");
    assert_eq!(c.log(0).len(), 1);
    assert_eq!(c.log(2).len(), 1);
    assert!(c.log(3).is_empty());

    c.world.clear_logs();
    let accepted = c.world.accepted.lock().unwrap().clone();
    for i in 0..20 {
        let (ka, kb) = (key_in(&c.map, 0, i % 5), key_in(&c.map, 1, i % 5));
        let value = format!("v{i}");
        assert_eq!(run(&client, put(&ka, &value)).await, Ok(KvResult::Written));
        assert_eq!(run(&client, put(&kb, &value)).await, Ok(KvResult::Written));
        let read = run(&client, get(&ka)).await;
        assert_eq!(read, Ok(KvResult::Value(Some(Bytes::from(value)))));
    }
    assert!(c.log(0).is_empty(), "a follower saw requests");
    assert!(c.log(3).is_empty(), "a follower saw requests");
    assert!(
        c.world.log(c.coordinator.addr).is_empty(),
        "the coordinator saw requests"
    );
    assert_eq!(c.log(1).len(), 40);
    assert_eq!(c.log(2).len(), 20);
    assert_eq!(c.world.misrouted.load(Ordering::SeqCst), 0);
    assert_eq!(
        *c.world.accepted.lock().unwrap(),
        accepted,
        "connections are kept, not opened per command"
    );
    let seqs: Vec<u64> = c.log(1).iter().map(|cmd| cmd.id.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "one try each: {seqs:?}"
    );
    assert_eq!(client.map().await.map(|m| m.epoch), Some(Epoch(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_leader_hint_redirects_at_once() {
    let c = cluster().await;
    // A backoff this long would show in the timings: a hinted redirect must not wait.
    let slow_backoff = ClientConfig {
        deadline: Duration::from_secs(8),
        backoff_initial: Duration::from_secs(3),
        backoff_max: Duration::from_secs(3),
        ..config()
    };
    let client = Client::connect([c.addrs[3]], slow_backoff).unwrap();
    let k = key_in(&c.map, 0, 0);
    let started = Instant::now();
    assert_eq!(run(&client, put(&k, "1")).await, Ok(KvResult::Written));
    assert_eq!(ids(&c.log(0)), ids(&c.log(1)));

    // Leadership moves: the cached leader redirects to the new one.
    c.world
        .set_role(node_id(1), Role::Follower(Some(node_id(0))));
    c.world.set_role(node_id(0), Role::Leader);
    c.world.clear_logs();
    assert_eq!(
        run(&client, get(&k)).await,
        Ok(KvResult::Value(Some("1".into())))
    );
    assert_eq!(c.log(1).len(), 1);
    assert_eq!(ids(&c.log(0)), ids(&c.log(1)), "retried under the same id");
    assert!(started.elapsed() < Duration::from_secs(2), "backed off");
    c.world.clear_logs();
    assert_eq!(
        run(&client, get(&k)).await,
        Ok(KvResult::Value(Some("1".into())))
    );
    assert!(c.log(1).is_empty(), "the new leader is cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_leader_is_retried_with_the_same_id_at_the_next_member() {
    let c = cluster().await;
    let client = Client::connect([c.coordinator.addr], config()).unwrap();
    let k = key_in(&c.map, 1, 0);
    assert_eq!(run(&client, put(&k, "0")).await, Ok(KvResult::Written));

    // The leader closes the connection on the next command; node 3 takes over.
    c.world
        .set_role(node_id(2), Role::DropAndHandOver(node_id(3)));
    c.world.clear_logs();
    assert_eq!(run(&client, put(&k, "1")).await, Ok(KvResult::Written));
    let (lost, retried) = (c.log(2), c.log(3));
    assert_eq!(lost.len(), 1);
    assert_eq!(
        ids(&lost),
        ids(&retried),
        "same (client, seq) after the lost connection"
    );

    // Now the leader (node 3) never answers; node 2 takes over again.
    c.world
        .set_role(node_id(3), Role::MuteAndHandOver(node_id(2)));
    c.world.clear_logs();
    let started = Instant::now();
    assert_eq!(
        run(&client, get(&k)).await,
        Ok(KvResult::Value(Some("1".into())))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "no attempt timeout?"
    );
    let (silent, retried) = (c.log(3), c.log(2));
    assert_eq!(silent.len(), 1);
    assert_eq!(
        ids(&silent),
        ids(&retried),
        "same (client, seq) after the timeout"
    );
    assert_eq!(c.world.misrouted.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_when_a_replica_may_have_it_unavailable_when_none_could() {
    let mut c = cluster().await;
    let short = ClientConfig {
        deadline: Duration::from_millis(800),
        ..config()
    };
    let client = Client::connect([c.coordinator.addr], short).unwrap();
    let (a, b) = (key_in(&c.map, 0, 0), key_in(&c.map, 1, 0));
    assert_eq!(run(&client, put(&b, "1")).await, Ok(KvResult::Written));

    // Group 1 goes silent: the command was sent, so its outcome is unknown.
    c.world.set_role(node_id(2), Role::Mute);
    c.world.set_role(node_id(3), Role::Mute);
    let outcome = run(&client, put(&b, "2")).await;
    assert!(
        matches!(outcome, Err(ServiceError::Unknown(_))),
        "{outcome:?}"
    );

    // Group 1's nodes are gone. The first command may still be written into a connection
    // whose close the client has not read yet: then its outcome is rightly unknown.
    c.stop(2);
    c.stop(3);
    let outcome = run(&client, put(&b, "3")).await;
    assert!(
        matches!(
            outcome,
            Err(ServiceError::Unknown(_) | ServiceError::Unavailable(_))
        ),
        "{outcome:?}"
    );
    // Once the client knows the connections are closed, nothing can be sent: the command
    // surely did not happen.
    let outcome = run(&client, put(&b, "4")).await;
    assert!(
        matches!(outcome, Err(ServiceError::Unavailable(_))),
        "{outcome:?}"
    );

    // Group 0 is unaffected.
    assert_eq!(run(&client, put(&a, "x")).await, Ok(KvResult::Written));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_frame_is_an_error_not_a_panic() {
    let c = cluster().await;
    c.world.set_role(node_id(1), Role::Garbled);
    let cmd = KvCommand {
        id: RequestId {
            client: ClientId::random(),
            seq: 1,
        },
        op: get(&key_in(&c.map, 0, 0)),
    };
    let mut conn = Connection::open(c.addrs[1], WAIT).await.unwrap();
    let answer = timeout(WAIT, conn.call(&cmd)).await.unwrap();
    assert!(
        matches!(answer, Err(CallError::Unexpected(_))),
        "{answer:?}"
    );

    // The client treats it as a failed attempt and finds the group's new leader.
    c.world.set_role(node_id(0), Role::Leader);
    let client = Client::connect([c.addrs[1]], config()).unwrap();
    let outcome = run(&client, get(&key_in(&c.map, 0, 0))).await;
    assert_eq!(outcome, Ok(KvResult::Value(None)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_map_the_client_rotates_over_its_seeds() {
    let world = Arc::new(World::default());
    let group = GroupId(0);
    let follower = start_fake(
        world.clone(),
        Kind::Node {
            id: NodeId(1),
            group,
        },
    )
    .await;
    let leader = start_fake(
        world.clone(),
        Kind::Node {
            id: NodeId(2),
            group,
        },
    )
    .await;
    let coordinator = start_fake(world.clone(), Kind::Coordinator).await;
    world.set_role(NodeId(1), Role::Follower(None));
    world.set_role(NodeId(2), Role::Leader);
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let seeds = [coordinator.addr, follower.addr, dead, leader.addr];
    let client = Client::connect(seeds, config()).unwrap();
    let k = Bytes::from("k");
    assert_eq!(run(&client, put(&k, "v")).await, Ok(KvResult::Written));
    let (at_coordinator, at_follower, at_leader) = (
        world.log(coordinator.addr),
        world.log(follower.addr),
        world.log(leader.addr),
    );
    assert_eq!(ids(&at_coordinator), ids(&at_leader), "same id everywhere");
    assert_eq!(ids(&at_follower), ids(&at_leader), "same id everywhere");
    assert_eq!(at_leader.len(), 1);

    // The client stays at the seed that answered, and never sends the coordinator commands again.
    world.clear_logs();
    for _ in 0..5 {
        assert_eq!(
            run(&client, get(&k)).await,
            Ok(KvResult::Value(Some("v".into())))
        );
    }
    assert_eq!(world.log(leader.addr).len(), 5);
    assert!(world.log(follower.addr).is_empty());
    assert!(world.log(coordinator.addr).is_empty());
    assert_eq!(client.map().await, None);

    // Status without a map: what the coordinator says about formation.
    let forming = CoordinatorStatus {
        epoch: Epoch(0),
        waiting_for: 2,
        connected: vec![NodeId(1)],
        suspected: Vec::new(),
        in_flight: None,
        queued: 0,
        under_replicated: Vec::new(),
    };
    world
        .statuses
        .lock()
        .unwrap()
        .insert(coordinator.addr, StatusReport::Coordinator(forming));
    let status = client.cluster_status().await.unwrap();
    assert!(!status.all_groups_led());
    let text = status.render();
    assert!(
        text.contains("waits for 2 more node(s), 1 checked in"),
        "{text}"
    );
}

fn node_status(
    id: NodeId,
    group: u32,
    leader: Option<NodeId>,
    suspected: &[NodeId],
) -> StatusReport {
    StatusReport::Node(NodeStatus {
        id,
        epoch: Epoch(1),
        groups: vec![MemberStatus {
            group: GroupId(group),
            leader,
            decided: 7,
            config: 1,
            stage: MemberStage::Active,
        }],
        suspected: suspected.to_vec(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_assembles_leaders_and_unreachable_nodes() {
    let mut c = cluster().await;
    let (n0, n1, n2, n3) = (c.ids[0], c.ids[1], c.ids[2], c.ids[3]);
    {
        let mut statuses = c.world.statuses.lock().unwrap();
        statuses.insert(c.addrs[0], node_status(n0, 0, Some(n1), &[]));
        statuses.insert(c.addrs[1], node_status(n1, 0, Some(n1), &[]));
        statuses.insert(c.addrs[2], node_status(n2, 1, Some(n2), &[]));
        statuses.insert(c.addrs[3], node_status(n3, 1, Some(n2), &[]));
        let coordinator = CoordinatorStatus {
            epoch: Epoch(1),
            waiting_for: 0,
            connected: c.ids.clone(),
            suspected: Vec::new(),
            in_flight: None,
            queued: 0,
            under_replicated: Vec::new(),
        };
        statuses.insert(c.coordinator.addr, StatusReport::Coordinator(coordinator));
    }
    let client = Client::connect([c.coordinator.addr], config()).unwrap();
    let status = client.cluster_status().await.unwrap();
    assert!(status.all_groups_led(), "{status:?}");
    assert_eq!(status.epoch, Epoch(1));
    assert_eq!(status.groups[0].leader, Some(n1));
    assert_eq!(status.groups[1].leader, Some(n2));
    assert!(status.unreachable.is_empty());

    // Node 2 stops answering status questions, node 3 is gone, node 0 suspects node 3 and the
    // coordinator suspects node 2.
    c.world.statuses.lock().unwrap().remove(&c.addrs[2]);
    c.stop(3);
    {
        let mut statuses = c.world.statuses.lock().unwrap();
        statuses.insert(c.addrs[0], node_status(n0, 0, Some(n1), &[n3]));
        let coordinator = CoordinatorStatus {
            epoch: Epoch(1),
            waiting_for: 0,
            connected: vec![n0, n1],
            suspected: vec![n2],
            in_flight: Some(Epoch(2)),
            queued: 1,
            under_replicated: vec![GroupId(1)],
        };
        statuses.insert(c.coordinator.addr, StatusReport::Coordinator(coordinator));
    }
    let started = Instant::now();
    let status = client.cluster_status().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "asked one by one?"
    );
    assert!(!status.all_groups_led());
    assert_eq!(status.groups[0].leader, Some(n1));
    assert_eq!(status.groups[1].leader, None);
    assert_eq!(status.groups.iter().map(|g| g.slots).sum::<usize>(), 1024);
    assert_eq!(status.unreachable, vec![n2, n3]);
    assert_eq!(status.suspected, vec![n2, n3]);
    let text = status.render();
    let label = |i: usize| format!("{} ({})", c.addrs[i], kv::client::short_id(c.ids[i]));
    let expected = [
        "epoch 1  groups 2  nodes 4  replication 2".to_owned(),
        format!(
            "group 0  slots 512  leader {}  members {}, {}",
            label(1),
            label(0),
            label(1)
        ),
        format!(
            "group 1  slots 512  leader none (electing)  members {}, {}  \
             (under-replicated: a member failed and no majority is left to replace it)",
            label(2),
            label(3)
        ),
        "standbys  none".to_owned(),
        "reconfiguring  to epoch 2, 1 more change queued".to_owned(),
        "under-replicated  group 1".to_owned(),
        format!("suspected  {}, {}", label(2), label(3)),
        format!("unreachable  {}, {}", label(2), label(3)),
    ];
    for line in expected {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }

    // The REPL's `status` is the same table.
    match execute_line("status", &client).await {
        Outcome::Print(shown) => assert!(shown.contains("group 1  slots 512  leader none")),
        other => panic!("{other:?}"),
    }
}
