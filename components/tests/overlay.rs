//! The overlay router on an in-memory network under tokio's paused clock: real groups (leader
//! election, Sequence Paxos, replicas) behind the overlays for end-to-end routing, and fake
//! replicas where a test must script `NotLeader` answers exactly.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kameo::actor::ActorRef;
use kv_components::bootstrap::formation::form;
use kv_components::group::{start_member, GroupMember, MemberConfig};
use kv_components::memory_link::{MemoryLink, MemoryNetwork};
use kv_components::overlay::component::{
    AttachGroup, DetachGroup, InstallMap, Overlay, OverlayArgs, QueryOverlay, MAX_REROUTES,
};
use kv_components::sequence_paxos::component::QueryStatus;
use kv_components::timer::Timer;
use kv_ports::component::{connect, Start};
use kv_ports::ids::{ClientId, GroupId, NodeId};
use kv_ports::kv::{KvCommand, KvError, KvOp, KvPort, KvReply, KvResult, RequestId};
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};
use kv_ports::network::NetworkPort;
use kv_ports::port::ConnectionId;
use kv_ports::supervisor::{spawn_child, start_supervisor, Supervisor};
use kv_ports::testkit::{fake_provider, probe, FakeProvider, Indicate, Probe, Requests, Trigger};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{timeout, Instant};

const G0: GroupId = GroupId(0);
const G1: GroupId = GroupId(1);
/// The standby of the seven-node cluster.
const STANDBY: NodeId = NodeId(7);

fn info(id: u64) -> NodeInfo {
    let addr: SocketAddr = ([127, 0, 0, 1], 7000 + id as u16).into();
    NodeInfo::at(NodeId(id), addr)
}

/// The formed map of nodes `1..=n` in groups of three: {1,2,3} is g0, {4,5,6} g1, the rest
/// standbys.
fn formed(n: u64) -> SlotMap {
    let nodes: Vec<NodeInfo> = (1..=n).map(info).collect();
    let map = form(&nodes, 3).expect("enough nodes");
    assert_eq!(map.validate(), Ok(()));
    map
}

/// A key whose slot belongs to `group`, different for each `nth`.
fn key_of(map: &SlotMap, group: GroupId, nth: usize) -> Bytes {
    (0..)
        .map(|i| Bytes::from(format!("key-{i}")))
        .filter(|k| map.group_of_key(k) == Some(group))
        .nth(nth)
        .expect("every group owns slots")
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

fn value(v: &str) -> KvResult {
    KvResult::Value(Some(Bytes::copy_from_slice(v.as_bytes())))
}

/// One node: a link, an overlay and, for a member, its group's components.
struct Node {
    id: NodeId,
    _supervisor: ActorRef<Supervisor>,
    _link: ActorRef<MemoryLink>,
    overlay: ActorRef<Overlay>,
    member: Option<GroupMember>,
}

/// Starts an overlay for node `id` under `supervisor`, connected to `link` and started.
async fn start_overlay(
    supervisor: &ActorRef<Supervisor>,
    link: &ActorRef<MemoryLink>,
    id: NodeId,
) -> ActorRef<Overlay> {
    let args = OverlayArgs {
        me: id,
        replication: 3,
    };
    let overlay = spawn_child::<Overlay>(supervisor, args).await;
    connect::<NetworkPort, _, _>(link, &overlay).await.unwrap();
    overlay.tell(Start).await.unwrap();
    overlay
}

/// Starts node `id` of `map`: its group member (if any, with `priority`), its overlay wired to
/// the member's replica, and the map installed.
async fn start_node(network: &MemoryNetwork, map: &SlotMap, id: NodeId, priority: u64) -> Node {
    let supervisor = start_supervisor(format!("{id}"));
    let link = network.join(id);
    let timer = spawn_child::<Timer>(&supervisor, ()).await;
    let overlay = start_overlay(&supervisor, &link, id).await;
    let mut member = None;
    if let Some(group) = map.group_of_node(id) {
        let mut config = MemberConfig::new(group, id, map.members_of(group).to_vec());
        config.priority = priority;
        let started = start_member(&supervisor, &link, &timer, config)
            .await
            .unwrap();
        let conn = connect::<KvPort, _, _>(&started.replica, &overlay)
            .await
            .unwrap();
        overlay.tell(AttachGroup { group, conn }).await.unwrap();
        member = Some(started);
    }
    overlay.tell(InstallMap(map.clone())).await.unwrap();
    Node {
        id,
        _supervisor: supervisor,
        _link: link,
        overlay,
        member,
    }
}

/// Seven nodes: g0 on 1–3, g1 on 4–6, node 7 a standby. `leads_first` gives each group's
/// first member the election priority (so it leads, and is the router's first pick);
/// otherwise the highest id wins the election and the router first tries a follower.
async fn start_cluster(network: &MemoryNetwork, leads_first: bool) -> (SlotMap, Vec<Node>) {
    let map = formed(7);
    assert_eq!(map.members_of(G0), &[NodeId(1), NodeId(2), NodeId(3)]);
    assert_eq!(map.members_of(G1), &[NodeId(4), NodeId(5), NodeId(6)]);
    assert_eq!(map.standbys, vec![STANDBY]);
    let mut nodes = Vec::new();
    for id in 1..=7 {
        let first = [NodeId(1), NodeId(4)].contains(&NodeId(id));
        let priority = if leads_first && first { 10 } else { 0 };
        nodes.push(start_node(network, &map, NodeId(id), priority).await);
    }
    // Elections settle before the tests route, so the routers' first answers are telling.
    for group in [G0, G1] {
        leader(&nodes, &map, group).await;
    }
    (map, nodes)
}

fn node(nodes: &[Node], id: NodeId) -> &Node {
    nodes
        .iter()
        .find(|n| n.id == id)
        .expect("a node of the cluster")
}

/// The member of `group` (other than `except`) that leads it, once one does.
async fn leader_but(
    nodes: &[Node],
    map: &SlotMap,
    group: GroupId,
    except: Option<NodeId>,
) -> NodeId {
    for _ in 0..100 {
        for &id in map.members_of(group) {
            if Some(id) == except {
                continue;
            }
            let Some(member) = &node(nodes, id).member else {
                continue;
            };
            if let Ok(status) = member.paxos.ask(QueryStatus).await {
                if status.leading {
                    return id;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader elected in {group}");
}

/// The member of `group` that leads it, once one does.
async fn leader(nodes: &[Node], map: &SlotMap, group: GroupId) -> NodeId {
    leader_but(nodes, map, group, None).await
}

/// A front end on one overlay: a probe plus a client session that retries each command with
/// the same request id until it gets a result.
struct Front {
    probe: ActorRef<Probe<KvPort>>,
    replies: UnboundedReceiver<KvReply>,
    client: ClientId,
    seq: u64,
}

impl Front {
    async fn on(overlay: &ActorRef<Overlay>) -> Front {
        let (probe, replies) = probe::<KvPort, _>(overlay).await.unwrap();
        Front {
            probe,
            replies,
            client: ClientId::random(),
            seq: 0,
        }
    }

    fn next(&mut self, op: KvOp) -> KvCommand {
        self.seq += 1;
        KvCommand {
            id: RequestId {
                client: self.client,
                seq: self.seq,
            },
            op,
        }
    }

    async fn send(&self, cmd: &KvCommand) {
        assert!(self.probe.ask(Trigger(cmd.clone())).await.unwrap());
    }

    /// The answer to `id`, skipping others; `None` after a second of (virtual) silence.
    async fn answer(&mut self, id: RequestId) -> Option<Result<KvResult, KvError>> {
        loop {
            let reply = timeout(Duration::from_secs(1), self.replies.recv())
                .await
                .ok()??;
            if reply.id == id {
                return Some(reply.result);
            }
        }
    }

    /// Waits for `cmd`'s result, resending it (same id) after a `NotLeader` or silence.
    async fn settle(&mut self, cmd: &KvCommand) -> KvResult {
        for _ in 0..100 {
            match self.answer(cmd.id).await {
                Some(Ok(result)) => return result,
                Some(Err(KvError::NotLeader { .. })) | None => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    self.send(cmd).await;
                }
                Some(Err(other)) => panic!("unexpected {other:?}"),
            }
        }
        panic!("no answer for {cmd:?}");
    }

    async fn run(&mut self, op: KvOp) -> KvResult {
        let cmd = self.next(op);
        self.send(&cmd).await;
        self.settle(&cmd).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_standby_serves_the_keys_of_every_group() {
    let network = MemoryNetwork::new();
    let (map, nodes) = start_cluster(&network, true).await;
    let mut front = Front::on(&node(&nodes, STANDBY).overlay).await;
    let (a, b) = (key_of(&map, G0, 0), key_of(&map, G1, 0));

    assert_eq!(front.run(get(&a)).await, KvResult::Value(None));
    assert_eq!(front.run(put(&a, "in g0")).await, KvResult::Written);
    assert_eq!(front.run(put(&b, "in g1")).await, KvResult::Written);
    assert_eq!(front.run(get(&a)).await, value("in g0"));
    assert_eq!(front.run(get(&b)).await, value("in g1"));

    // The answers taught the standby's router both leaders; nothing is left waiting.
    let status = node(&nodes, STANDBY)
        .overlay
        .ask(QueryOverlay)
        .await
        .unwrap();
    assert_eq!(status.epoch, map.epoch);
    assert!(status.local_groups.is_empty());
    assert_eq!(
        status.leaders.get(&G0),
        Some(&leader(&nodes, &map, G0).await)
    );
    assert_eq!(
        status.leaders.get(&G1),
        Some(&leader(&nodes, &map, G1).await)
    );
    assert_eq!((status.pending, status.serving), (0, 0));
    for n in &nodes {
        let status = n.overlay.ask(QueryOverlay).await.unwrap();
        assert_eq!(
            status.serving, 0,
            "{} still serves forwarded commands",
            n.id
        );
    }
}

#[tokio::test(start_paused = true)]
async fn every_member_serves_both_its_own_and_the_other_groups_keys() {
    let network = MemoryNetwork::new();
    let (map, nodes) = start_cluster(&network, true).await;
    let mut writer = Front::on(&node(&nodes, STANDBY).overlay).await;
    let keys = [key_of(&map, G0, 1), key_of(&map, G1, 1)];
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            writer.run(put(key, &format!("v{i}"))).await,
            KvResult::Written
        );
    }
    // Every node reads both keys through its own overlay: local replicas (leaders and
    // followers alike) for its own group, forwards for the other.
    for n in &nodes {
        let mut front = Front::on(&n.overlay).await;
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(
                front.run(get(key)).await,
                value(&format!("v{i}")),
                "at {}",
                n.id
            );
        }
        let status = n.overlay.ask(QueryOverlay).await.unwrap();
        let own: Vec<GroupId> = map.group_of_node(n.id).into_iter().collect();
        assert_eq!(status.local_groups, own);
    }
}

#[tokio::test(start_paused = true)]
async fn a_command_sent_to_a_follower_reaches_the_leader() {
    let network = MemoryNetwork::new();
    // Without priorities the highest id leads, while the router first tries the first member.
    let (map, nodes) = start_cluster(&network, false).await;
    let leader_g0 = leader(&nodes, &map, G0).await;
    let first = map.members_of(G0)[0];
    assert_ne!(leader_g0, first, "the router's first pick is a follower");

    let key = key_of(&map, G0, 2);
    let mut standby = Front::on(&node(&nodes, STANDBY).overlay).await;
    assert_eq!(
        standby.run(put(&key, "via a follower")).await,
        KvResult::Written
    );
    // Through the follower's own overlay, i.e. its local (non-leader) replica.
    let mut follower = Front::on(&node(&nodes, first).overlay).await;
    assert_eq!(follower.run(get(&key)).await, value("via a follower"));
    assert_eq!(follower.run(put(&key, "again")).await, KvResult::Written);
    assert_eq!(standby.run(get(&key)).await, value("again"));
    let paxos = &node(&nodes, leader_g0)
        .member
        .as_ref()
        .expect("a member")
        .paxos;
    let status = paxos.ask(QueryStatus).await.unwrap();
    assert!(status.leading && status.decided >= 3, "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn the_overlay_follows_a_new_leader_after_the_old_one_is_cut_off() {
    let network = MemoryNetwork::new();
    let (map, nodes) = start_cluster(&network, true).await;
    let old = leader(&nodes, &map, G0).await;
    assert_eq!(old, NodeId(1));
    let standby = &node(&nodes, STANDBY).overlay;
    let mut front = Front::on(standby).await;
    let (a, b) = (key_of(&map, G0, 3), key_of(&map, G1, 3));
    assert_eq!(front.run(put(&a, "before")).await, KvResult::Written);
    let status = standby.ask(QueryOverlay).await.unwrap();
    assert_eq!(status.leaders.get(&G0), Some(&old));

    // A command is on its way to the leader when the leader is cut off: the overlay reroutes
    // it to another member when the connection drops (which answers from its session table if
    // the command was decided in time, or gets it decided by the next leader).
    let during = front.next(put(&a, "during"));
    front.send(&during).await;
    network.isolate(old);
    assert_eq!(front.settle(&during).await, KvResult::Written);
    // The next command comes while the group may still be electing: the client retries it
    // (same id) until the new leader has it decided.
    assert_eq!(front.run(put(&a, "after")).await, KvResult::Written);
    // The cut-off node may still believe it leads; a majority elected another.
    let new = leader_but(&nodes, &map, G0, Some(old)).await;
    assert_ne!(new, old);

    assert_eq!(front.run(get(&a)).await, value("after"));
    assert_eq!(front.run(put(&b, "g1 unaffected")).await, KvResult::Written);
    assert_eq!(front.run(get(&b)).await, value("g1 unaffected"));
    let status = standby.ask(QueryOverlay).await.unwrap();
    assert_ne!(status.leaders.get(&G0), Some(&old));
    assert_eq!(status.pending, 0);

    // Another node's overlay, which never talked to the old leader, also gets through.
    let mut other = Front::on(&node(&nodes, NodeId(5)).overlay).await;
    assert_eq!(other.run(get(&a)).await, value("after"));
}

#[tokio::test(start_paused = true)]
async fn without_a_map_commands_are_refused_at_once() {
    let network = MemoryNetwork::new();
    let supervisor = start_supervisor("n1");
    let link = network.join(NodeId(1));
    let overlay = start_overlay(&supervisor, &link, NodeId(1)).await;
    let mut front = Front::on(&overlay).await;
    let started = Instant::now();
    let cmd = front.next(put(&Bytes::from_static(b"k"), "v"));
    front.send(&cmd).await;
    let refused = Err(KvError::NotLeader { hint: None });
    assert_eq!(front.answer(cmd.id).await, Some(refused));
    assert_eq!(Instant::now(), started, "no time passed");
    let status = overlay.ask(QueryOverlay).await.unwrap();
    assert_eq!((status.epoch, status.pending), (Epoch(0), 0));
}

/// Nodes 1–3 run fake replicas of g0, answered by hand; node 4 is a standby whose overlay the
/// test's front end uses.
struct Scripted {
    map: SlotMap,
    overlays: Vec<ActorRef<Overlay>>,
    fakes: Vec<(ActorRef<FakeProvider<KvPort>>, Requests<KvPort>)>,
    front: Front,
    network: MemoryNetwork,
    _links: Vec<ActorRef<MemoryLink>>,
    _supervisor: ActorRef<Supervisor>,
}

/// A request one fake replica received.
struct Seen {
    /// The node of the fake.
    at: NodeId,
    /// The overlay's connection, to answer on.
    conn: ConnectionId,
    cmd: KvCommand,
}

impl Scripted {
    async fn start() -> Scripted {
        let network = MemoryNetwork::new();
        let map = formed(4);
        assert_eq!(map.members_of(G0), &[NodeId(1), NodeId(2), NodeId(3)]);
        let supervisor = start_supervisor("scripted");
        let (mut overlays, mut fakes, mut links) = (Vec::new(), Vec::new(), Vec::new());
        for id in (1..=4).map(NodeId) {
            let link = network.join(id);
            let overlay = start_overlay(&supervisor, &link, id).await;
            if map.group_of_node(id) == Some(G0) {
                let (fake, requests) = fake_provider::<KvPort>();
                let conn = connect::<KvPort, _, _>(&fake, &overlay).await.unwrap();
                overlay.tell(AttachGroup { group: G0, conn }).await.unwrap();
                fakes.push((fake, requests));
            }
            overlay.tell(InstallMap(map.clone())).await.unwrap();
            overlays.push(overlay);
            links.push(link);
        }
        let front = Front::on(&overlays[3]).await;
        Scripted {
            map,
            overlays,
            fakes,
            front,
            network,
            _links: links,
            _supervisor: supervisor,
        }
    }

    /// The one request a fake replica received since the last call.
    async fn one_request(&mut self) -> Seen {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut seen = Vec::new();
        for (i, (_, requests)) in self.fakes.iter_mut().enumerate() {
            while let Ok((conn, cmd)) = requests.try_recv() {
                let at = NodeId(i as u64 + 1);
                seen.push(Seen { at, conn, cmd });
            }
        }
        assert_eq!(seen.len(), 1, "exactly one replica got a request");
        seen.pop().expect("one")
    }

    /// No fake replica received anything.
    async fn quiet(&mut self) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        for (_, requests) in &mut self.fakes {
            assert!(requests.try_recv().is_err(), "no replica gets a request");
        }
    }

    /// The fake replica of `seen.at` answers `seen` with `result`.
    async fn reply(&self, seen: &Seen, result: Result<KvResult, KvError>) {
        let (fake, _) = &self.fakes[seen.at.0 as usize - 1];
        let event = KvReply {
            id: seen.cmd.id,
            result,
        };
        let indicate = Indicate {
            to: Some(seen.conn),
            event,
        };
        fake.tell(indicate).await.unwrap();
    }

    /// The front end's next answer, or `None` when none comes within a second.
    async fn answer(&mut self, id: RequestId) -> Option<Result<KvResult, KvError>> {
        self.front.answer(id).await
    }

    async fn standby_status(&self) -> kv_components::overlay::component::OverlayStatus {
        self.overlays[3].ask(QueryOverlay).await.unwrap()
    }
}

fn not_leader(hint: Option<u64>) -> Result<KvResult, KvError> {
    Err(KvError::NotLeader {
        hint: hint.map(NodeId),
    })
}

#[tokio::test(start_paused = true)]
async fn a_not_leader_hint_redirects_the_command_and_teaches_the_router() {
    let mut s = Scripted::start().await;
    let key = key_of(&s.map, G0, 0);
    let cmd = s.front.next(put(&key, "v"));
    s.front.send(&cmd).await;

    // The router's first pick, node 1, says node 3 leads.
    let first = s.one_request().await;
    assert_eq!((first.at, &first.cmd), (NodeId(1), &cmd));
    s.reply(&first, not_leader(Some(3))).await;
    // Node 1 answered and forwarded nothing itself; the standby redirected to node 3.
    let second = s.one_request().await;
    assert_eq!((second.at, &second.cmd), (NodeId(3), &cmd));
    s.reply(&second, Ok(KvResult::Written)).await;
    assert_eq!(s.answer(cmd.id).await, Some(Ok(KvResult::Written)));

    // The router learned the leader: the next command goes straight to node 3.
    let status = s.standby_status().await;
    assert_eq!(status.leaders.get(&G0), Some(&NodeId(3)));
    assert_eq!(status.pending, 0);
    let next = s.front.next(get(&key));
    s.front.send(&next).await;
    let seen = s.one_request().await;
    assert_eq!(seen.at, NodeId(3));
    s.reply(&seen, Ok(value("v"))).await;
    assert_eq!(s.answer(next.id).await, Some(Ok(value("v"))));
    s.quiet().await;
}

#[tokio::test(start_paused = true)]
async fn a_command_is_rerouted_a_bounded_number_of_times() {
    let mut s = Scripted::start().await;
    let key = key_of(&s.map, G0, 0);
    let cmd = s.front.next(get(&key));
    s.front.send(&cmd).await;
    let mut tried = Vec::new();
    for _ in 0..=MAX_REROUTES {
        let seen = s.one_request().await;
        assert_eq!(seen.cmd, cmd, "every attempt keeps the request id");
        tried.push(seen.at);
        s.reply(&seen, not_leader(None)).await;
    }
    // Without hints the router walks the members in turn, then gives the client the refusal.
    assert_eq!(tried, [1, 2, 3, 1].map(NodeId));
    assert_eq!(s.answer(cmd.id).await, Some(not_leader(None)));
    s.quiet().await;
    assert_eq!(s.standby_status().await.pending, 0);
}

#[tokio::test(start_paused = true)]
async fn a_newer_command_of_a_client_replaces_its_older_one() {
    let mut s = Scripted::start().await;
    let key = key_of(&s.map, G0, 0);
    let older = s.front.next(put(&key, "1"));
    s.front.send(&older).await;
    let older_seen = s.one_request().await;
    let newer = s.front.next(put(&key, "2"));
    s.front.send(&newer).await;
    let newer_seen = s.one_request().await;
    assert_eq!(newer_seen.cmd, newer);

    // The older command's answer (even a redirect) is dropped: the client moved on.
    s.reply(&older_seen, not_leader(Some(2))).await;
    s.reply(&older_seen, Ok(KvResult::Written)).await;
    s.quiet().await;
    assert!(
        s.front.replies.try_recv().is_err(),
        "no answer for the replaced command"
    );
    s.reply(&newer_seen, Ok(KvResult::Written)).await;
    assert_eq!(s.answer(newer.id).await, Some(Ok(KvResult::Written)));
}

#[tokio::test(start_paused = true)]
async fn a_node_without_the_group_refuses_and_the_sender_reroutes() {
    let mut s = Scripted::start().await;
    let key = key_of(&s.map, G0, 0);
    s.overlays[0].tell(DetachGroup(G0)).await.unwrap();
    let cmd = s.front.next(put(&key, "v"));
    s.front.send(&cmd).await;
    // Node 1 (the first pick) has no replica of g0 any more: it answers NotLeader, and the
    // standby tries the next member.
    let seen = s.one_request().await;
    assert_eq!(seen.at, NodeId(2));
    s.reply(&seen, Ok(KvResult::Written)).await;
    assert_eq!(s.answer(cmd.id).await, Some(Ok(KvResult::Written)));
    let status = s.overlays[0].ask(QueryOverlay).await.unwrap();
    assert!(status.local_groups.is_empty());
    assert_eq!(status.serving, 0);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_reroutes_what_waits_behind_it() {
    let mut s = Scripted::start().await;
    let key = key_of(&s.map, G0, 0);
    let cmd = s.front.next(put(&key, "v"));
    s.front.send(&cmd).await;
    let seen = s.one_request().await;
    assert_eq!(seen.at, NodeId(1));
    s.network.cut(NodeId(1), NodeId(4));
    // The standby reroutes at once, to the next member, with the same request id.
    let again = s.one_request().await;
    assert_eq!((again.at, &again.cmd), (NodeId(2), &cmd));
    s.reply(&again, Ok(KvResult::Written)).await;
    assert_eq!(s.answer(cmd.id).await, Some(Ok(KvResult::Written)));
    // Node 1's late answer is lost with the connection; node 1 forgot what it owed.
    s.reply(&seen, Ok(KvResult::Written)).await;
    s.quiet().await;
    assert_eq!(s.overlays[0].ask(QueryOverlay).await.unwrap().serving, 0);
    assert_eq!(s.standby_status().await.leaders.get(&G0), Some(&NodeId(2)));
}

#[tokio::test(start_paused = true)]
async fn an_answer_from_a_newer_map_is_noticed() {
    let mut s = Scripted::start().await;
    let key = key_of(&s.map, G0, 0);
    let mut newer = s.map.clone();
    newer.epoch = newer.epoch.next();
    s.overlays[0].tell(InstallMap(newer.clone())).await.unwrap();

    let cmd = s.front.next(get(&key));
    s.front.send(&cmd).await;
    let seen = s.one_request().await;
    assert_eq!(seen.at, NodeId(1));
    s.reply(&seen, Ok(KvResult::Value(None))).await;
    assert_eq!(s.answer(cmd.id).await, Some(Ok(KvResult::Value(None))));
    assert_eq!(s.standby_status().await.newer_heard, Some(newer.epoch));

    // Installing that map (here by hand; later by a refresh) settles it.
    s.overlays[3].tell(InstallMap(newer.clone())).await.unwrap();
    let status = s.standby_status().await;
    assert_eq!((status.epoch, status.newer_heard), (newer.epoch, None));
    // An older map is ignored.
    s.overlays[3].tell(InstallMap(s.map.clone())).await.unwrap();
    assert_eq!(s.standby_status().await.epoch, newer.epoch);
}

#[tokio::test(start_paused = true)]
async fn a_command_for_a_local_group_goes_to_the_local_replica() {
    let mut s = Scripted::start().await;
    let key = key_of(&s.map, G0, 0);
    // A front end on node 2, a member of g0: the router's first pick is node 1 (remote); a
    // hint naming node 2 itself brings the command to the local replica.
    let mut front = Front::on(&s.overlays[1]).await;
    let cmd = front.next(get(&key));
    front.send(&cmd).await;
    let remote = s.one_request().await;
    assert_eq!(remote.at, NodeId(1));
    s.reply(&remote, not_leader(Some(2))).await;
    let local = s.one_request().await;
    assert_eq!((local.at, &local.cmd), (NodeId(2), &cmd));
    s.reply(&local, Ok(KvResult::Value(None))).await;
    assert_eq!(front.answer(cmd.id).await, Some(Ok(KvResult::Value(None))));
    let status = s.overlays[1].ask(QueryOverlay).await.unwrap();
    assert_eq!(status.leaders.get(&G0), Some(&NodeId(2)));
}
