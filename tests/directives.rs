//! Data nodes under a fake coordinator that speaks the session protocol over real loopback
//! sockets: the coordinator's directives start a serving group, move a group to new members
//! keeping its data (the leaving member retires and is detached), answer re-sends, and refuse
//! what cannot be done; nodes report their suspicions; an operator's request sent to a node is
//! relayed to the coordinator.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use kv::client::{Client, ClientConfig};
use kv::coordinator::{admin, fetch_status};
use kv::native::{
    AdminAnswer, AdminRequest, ClientFrame, Directive, DirectiveId, DirectiveOutcome, MemberStage,
    NodeRef, NodeStatus, ServerCodec, ServerFrame, StatusReport,
};
use kv::node::{Join, Node, NodeConfig};
use kv::service::KvService;
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::kv::{KvOp, KvResult};
use kv_ports::membership::{Epoch, GroupInfo, NodeInfo, Slot, SlotMap, SLOTS};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::codec::Framed;

/// Upper bound for every awaited condition; they normally hold within a second.
const WAIT: Duration = Duration::from_secs(20);

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// One node's session, as the fake coordinator holds it.
struct Session {
    info: NodeInfo,
    framed: Framed<TcpStream, ServerCodec>,
    /// Suspicion reports heard so far, in order.
    suspicions: Vec<(NodeId, bool)>,
}

/// A coordinator that does only what the test tells it.
struct FakeCoordinator {
    listener: TcpListener,
    addr: SocketAddr,
    next_id: u64,
}

impl FakeCoordinator {
    async fn bind() -> FakeCoordinator {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        FakeCoordinator {
            listener,
            addr,
            next_id: 0,
        }
    }

    /// Accepts the next node's session and reads its check-in, which must carry the map of
    /// `epoch` (`None`: no map).
    async fn accept_with(&self, epoch: Option<Epoch>) -> Session {
        let (stream, _) = timeout(WAIT, self.listener.accept())
            .await
            .expect("a node checks in")
            .unwrap();
        let mut framed = Framed::new(stream, ServerCodec::default());
        match timeout(WAIT, framed.next())
            .await
            .expect("check-in in time")
        {
            Some(Ok(ClientFrame::CheckIn { node, map })) => {
                assert_eq!(map.map(|m| m.epoch), epoch, "the map re-reported");
                Session {
                    info: node,
                    framed,
                    suspicions: Vec::new(),
                }
            }
            other => panic!("expected a check-in, got {other:?}"),
        }
    }

    /// Accepts the next node's session and reads its check-in (without a map).
    async fn accept(&self) -> Session {
        self.accept_with(None).await
    }

    fn fresh(&mut self) -> DirectiveId {
        self.next_id += 1;
        DirectiveId(self.next_id)
    }
}

impl Session {
    async fn send(&mut self, frame: ServerFrame) {
        self.framed.send(frame).await.expect("session open");
    }

    async fn directive(&mut self, id: DirectiveId, peers: &[NodeInfo], directive: Directive) {
        let peers = peers.to_vec();
        self.send(ServerFrame::Directive {
            id,
            peers,
            directive,
        })
        .await;
    }

    /// The next directive answer (suspicion reports on the way are kept).
    async fn answer(&mut self) -> (DirectiveId, DirectiveOutcome) {
        loop {
            let frame = timeout(WAIT, self.framed.next())
                .await
                .expect("an answer in time");
            match frame {
                Some(Ok(ClientFrame::DirectiveDone { id, outcome })) => return (id, outcome),
                Some(Ok(ClientFrame::Suspicion { node, suspected })) => {
                    self.suspicions.push((node, suspected));
                }
                other => panic!("unexpected frame on the session: {other:?}"),
            }
        }
    }

    /// Sends a directive and waits for its answer.
    async fn run(
        &mut self,
        id: DirectiveId,
        peers: &[NodeInfo],
        directive: Directive,
    ) -> DirectiveOutcome {
        self.directive(id, peers, directive).await;
        let (answered, outcome) = self.answer().await;
        assert_eq!(answered, id, "answers name their directive");
        outcome
    }

    /// Reads frames until a suspicion report about `node` says `suspected`.
    async fn suspicion(&mut self, node: NodeId, suspected: bool) {
        if self.suspicions.contains(&(node, suspected)) {
            return;
        }
        loop {
            let frame = timeout(WAIT, self.framed.next())
                .await
                .expect("a suspicion report in time");
            match frame {
                Some(Ok(ClientFrame::Suspicion {
                    node: n,
                    suspected: s,
                })) => {
                    self.suspicions.push((n, s));
                    if (n, s) == (node, suspected) {
                        return;
                    }
                }
                other => panic!("unexpected frame on the session: {other:?}"),
            }
        }
    }
}

/// Starts `n` nodes checked in with `coordinator`, each with its session.
async fn start_nodes(coordinator: &FakeCoordinator, n: usize) -> (Vec<Node>, Vec<Session>) {
    let mut nodes = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..n {
        let config = NodeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            join: Join::Coordinator(coordinator.addr.into()),
            resp: None,
            http: None,
        };
        nodes.push(Node::start(config).await.expect("node starts"));
        let session = coordinator.accept().await;
        assert_eq!(session.info, nodes.last().unwrap().info);
        sessions.push(session);
    }
    (nodes, sessions)
}

/// A map of one group (all slots) with these members; the other nodes are standbys.
fn one_group_map(epoch: u64, config: u32, infos: &[NodeInfo], members: &[NodeId]) -> SlotMap {
    let mut nodes = infos.to_vec();
    nodes.sort_by_key(|n| n.id);
    let map = SlotMap {
        epoch: Epoch(epoch),
        replication: 3,
        slots: vec![GroupId(0); SLOTS],
        groups: vec![GroupInfo {
            id: GroupId(0),
            config,
            members: members.to_vec(),
        }],
        standbys: infos
            .iter()
            .map(|n| n.id)
            .filter(|id| !members.contains(id))
            .collect(),
        nodes,
        next_group: GroupId(1),
    };
    map.validate().expect("a valid map");
    map
}

fn all_slots() -> Vec<Slot> {
    (0..SLOTS).map(|s| Slot(s as u16)).collect()
}

async fn node_status(node: &Node) -> NodeStatus {
    match fetch_status(node.info.client, Duration::from_secs(2)).await {
        Ok(StatusReport::Node(s)) => s,
        other => panic!("expected a node's status, got {other:?}"),
    }
}

/// Polls `node`'s status until `done` holds.
async fn status_until(node: &Node, what: &str, done: impl Fn(&NodeStatus) -> bool) -> NodeStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = node_status(node).await;
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: last status {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a node runs group 0 actively in `config` and knows a leader.
fn led_in(config: u32) -> impl Fn(&NodeStatus) -> bool {
    move |s| {
        s.groups.iter().any(|g| {
            g.group == GroupId(0)
                && g.config == config
                && g.stage == MemberStage::Active
                && g.leader.is_some()
        })
    }
}

async fn stop_all(nodes: Vec<Node>) {
    for node in nodes {
        node.stop().await;
    }
}

/// Starts group 0 on the first three nodes with `StartGroup`, then publishes its map.
async fn form_group(
    coordinator: &mut FakeCoordinator,
    sessions: &mut [Session],
    infos: &[NodeInfo],
) -> SlotMap {
    let members: Vec<NodeId> = infos[..3].iter().map(|n| n.id).collect();
    let start = Directive::StartGroup {
        group: GroupId(0),
        config: 1,
        members: members.clone(),
        slots: all_slots(),
    };
    let ids: Vec<DirectiveId> = (0..3).map(|_| coordinator.fresh()).collect();
    for (s, id) in sessions[..3].iter_mut().zip(&ids) {
        s.directive(*id, infos, start.clone()).await;
    }
    for (s, id) in sessions[..3].iter_mut().zip(&ids) {
        assert_eq!(s.answer().await, (*id, DirectiveOutcome::Done));
    }
    let map = one_group_map(1, 1, infos, &members);
    for s in sessions.iter_mut() {
        s.send(ServerFrame::Map(Some(map.clone()))).await;
    }
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_group_forms_a_serving_group_and_answers_resends() {
    let mut coordinator = FakeCoordinator::bind().await;
    let (nodes, mut sessions) = start_nodes(&coordinator, 3).await;
    let infos: Vec<NodeInfo> = nodes.iter().map(|n| n.info.clone()).collect();

    // Before any directive a node runs no group.
    assert!(node_status(&nodes[0]).await.groups.is_empty());
    form_group(&mut coordinator, &mut sessions, &infos).await;
    for node in &nodes {
        status_until(node, "group 0 led in configuration 1", led_in(1)).await;
    }
    let client = Client::connect([infos[2].client], ClientConfig::default()).unwrap();
    let put = KvOp::Put {
        key: bytes("k"),
        value: bytes("v"),
    };
    assert_eq!(client.execute(put).await, Ok(KvResult::Written));

    // A re-sent directive that is done is answered `Done` again; a new StartGroup for a group
    // that runs changes nothing.
    let again = Directive::StartGroup {
        group: GroupId(0),
        config: 1,
        members: infos.iter().map(|n| n.id).collect(),
        slots: Vec::new(),
    };
    let resent = DirectiveId(1);
    assert_eq!(
        sessions[0].run(resent, &[], again.clone()).await,
        DirectiveOutcome::Done
    );
    let fresh = coordinator.fresh();
    assert_eq!(
        sessions[0].run(fresh, &[], again).await,
        DirectiveOutcome::Done
    );
    let get = KvOp::Get { key: bytes("k") };
    assert_eq!(
        client.execute(get).await,
        Ok(KvResult::Value(Some(bytes("v"))))
    );

    // What cannot be done is refused, and nothing changes.
    let id = coordinator.fresh();
    let not_member = Directive::StartGroup {
        group: GroupId(7),
        config: 1,
        members: vec![NodeId(1)],
        slots: Vec::new(),
    };
    assert!(matches!(
        sessions[0].run(id, &[], not_member).await,
        DirectiveOutcome::Failed(_)
    ));
    let id = coordinator.fresh();
    let no_member = Directive::ChangeMembers {
        group: GroupId(7),
        from_config: 1,
        new_config: 2,
        members: vec![infos[0].id],
    };
    assert!(matches!(
        sessions[0].run(id, &[], no_member).await,
        DirectiveOutcome::Failed(_)
    ));
    let id = coordinator.fresh();
    let backwards = Directive::JoinGroup {
        group: GroupId(7),
        after: 2,
        next: 2,
        sources: Vec::new(),
    };
    assert!(matches!(
        sessions[0].run(id, &[], backwards).await,
        DirectiveOutcome::Failed(_)
    ));
    let id = coordinator.fresh();
    let stale = Directive::ChangeMembers {
        group: GroupId(0),
        from_config: 3,
        new_config: 4,
        members: vec![infos[0].id],
    };
    assert!(matches!(
        sessions[0].run(id, &[], stale).await,
        DirectiveOutcome::Failed(_)
    ));
    assert_eq!(node_status(&nodes[0]).await.groups.len(), 1);

    // StopGroup stops the member; the group goes on with the other two.
    let id = coordinator.fresh();
    let stop = Directive::StopGroup { group: GroupId(0) };
    assert_eq!(sessions[0].run(id, &[], stop).await, DirectiveOutcome::Done);
    assert!(node_status(&nodes[0]).await.groups.is_empty());
    let put = KvOp::Put {
        key: bytes("k"),
        value: bytes("w"),
    };
    assert_eq!(client.execute(put).await, Ok(KvResult::Written));

    // The session drops before an answer is read; after the reconnect the coordinator sends
    // the directive again: it is answered (maybe twice), and carried out once.
    let id = coordinator.fresh();
    let join = Directive::JoinGroup {
        group: GroupId(5),
        after: 1,
        next: 2,
        sources: infos.iter().map(|n| n.id).collect(),
    };
    sessions[0].directive(id, &infos, join.clone()).await;
    drop(sessions.remove(0));
    let mut session = coordinator.accept_with(Some(Epoch(1))).await;
    session.directive(id, &infos, join).await;
    assert_eq!(session.answer().await, (id, DirectiveOutcome::Done));
    let status = node_status(&nodes[0]).await;
    assert_eq!(status.groups.len(), 1, "{status:?}");
    assert_eq!(
        (status.groups[0].group, status.groups[0].stage),
        (GroupId(5), MemberStage::Joining)
    );
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_members_and_join_group_move_a_group_keeping_its_data() {
    let mut coordinator = FakeCoordinator::bind().await;
    let (nodes, mut sessions) = start_nodes(&coordinator, 4).await;
    let infos: Vec<NodeInfo> = nodes.iter().map(|n| n.info.clone()).collect();
    // The new member is in no map yet: only the directives' peers name it.
    let old: Vec<NodeInfo> = infos[..3].to_vec();
    form_group(&mut coordinator, &mut sessions[..3], &old).await;
    for node in &nodes[..3] {
        status_until(node, "group 0 led in configuration 1", led_in(1)).await;
    }
    let client = Client::connect([infos[1].client], ClientConfig::default()).unwrap();
    let mut written = BTreeMap::new();
    for i in 0..20 {
        let (key, value) = (format!("key-{i}"), format!("value-{i}"));
        let put = KvOp::Put {
            key: bytes(&key),
            value: bytes(&value),
        };
        assert_eq!(client.execute(put).await, Ok(KvResult::Written));
        written.insert(key, value);
    }

    // Configuration 2: node 0 leaves, node 3 joins.
    let next: Vec<NodeId> = infos[1..].iter().map(|n| n.id).collect();
    let sources: Vec<NodeId> = infos.iter().map(|n| n.id).collect();
    let join = Directive::JoinGroup {
        group: GroupId(0),
        after: 1,
        next: 2,
        sources,
    };
    let join_id = coordinator.fresh();
    sessions[3].directive(join_id, &infos, join).await;
    assert_eq!(
        sessions[3].answer().await,
        (join_id, DirectiveOutcome::Done)
    );
    let joining = node_status(&nodes[3]).await;
    assert_eq!(joining.groups.len(), 1, "{joining:?}");
    assert_eq!(joining.groups[0].stage, MemberStage::Joining);

    // Asked at a follower (which forwards the StopSign to its leader) or the leader alike; as
    // the coordinator does, a `NotLeader` is retried at the hint (or the next member).
    let change = Directive::ChangeMembers {
        group: GroupId(0),
        from_config: 1,
        new_config: 2,
        members: next.clone(),
    };
    let outcome = at_leader(
        &mut coordinator,
        &mut sessions,
        &infos,
        0..3,
        change.clone(),
    )
    .await;
    assert_eq!(outcome, DirectiveOutcome::Done);
    // Done again at any member once sealed: the change happened, whoever proposed it.
    let again = coordinator.fresh();
    let outcome = sessions[1].run(again, &infos, change.clone()).await;
    assert_eq!(outcome, DirectiveOutcome::Done);

    // The new configuration serves, new member included, with every pair written before.
    for node in &nodes[1..] {
        status_until(node, "group 0 led in configuration 2", led_in(2)).await;
    }
    let map = one_group_map(2, 2, &infos, &next);
    for s in sessions.iter_mut() {
        s.send(ServerFrame::Map(Some(map.clone()))).await;
    }
    let via_new = Client::connect([infos[3].client], ClientConfig::default()).unwrap();
    for (key, value) in &written {
        let get = KvOp::Get { key: bytes(key) };
        assert_eq!(
            via_new.execute(get).await,
            Ok(KvResult::Value(Some(bytes(value)))),
            "{key} after the change"
        );
    }
    let put = KvOp::Put {
        key: bytes("after"),
        value: bytes("change"),
    };
    assert_eq!(via_new.execute(put).await, Ok(KvResult::Written));

    // The leaving member retires once the new configuration runs, and is detached.
    status_until(&nodes[0], "the leaving member retires", |s| {
        s.groups.is_empty()
    })
    .await;
    // Asked again there, the change is known done; a later one is not.
    let id = coordinator.fresh();
    let outcome = sessions[0].run(id, &infos, change.clone()).await;
    assert_eq!(outcome, DirectiveOutcome::Done);
    let later = Directive::ChangeMembers {
        group: GroupId(0),
        from_config: 2,
        new_config: 3,
        members: next.clone(),
    };
    let id = coordinator.fresh();
    let outcome = sessions[0].run(id, &infos, later).await;
    assert!(
        matches!(outcome, DirectiveOutcome::Failed(_)),
        "{outcome:?}"
    );

    // Killing a member of the new configuration: the others report the suspicion.
    let victim = infos[3].id;
    let mut nodes = nodes;
    nodes.pop().unwrap().stop().await;
    sessions[1].suspicion(victim, true).await;
    // After a reconnect (a coordinator restart, say) the node reports it again, right after
    // its check-in.
    let info = sessions[1].info.clone();
    drop(sessions.remove(1));
    let session = coordinator.accept_with(Some(Epoch(2))).await;
    assert_eq!(session.info, info);
    sessions.insert(1, session);
    sessions[1].suspicion(victim, true).await;
    let get = KvOp::Get {
        key: bytes("after"),
    };
    assert_eq!(
        via_new_fallback(&infos).execute(get).await,
        Ok(KvResult::Value(Some(bytes("change"))))
    );
    stop_all(nodes).await;
}

/// Sends `directive` to a member of the group whose sessions are `members` (the last one
/// first), as the coordinator does: a `NotLeader` is retried at its hint, or at the next
/// member. Returns the first other answer.
async fn at_leader(
    coordinator: &mut FakeCoordinator,
    sessions: &mut [Session],
    infos: &[NodeInfo],
    members: std::ops::Range<usize>,
    directive: Directive,
) -> DirectiveOutcome {
    let mut at = members.end - 1;
    let deadline = Instant::now() + WAIT;
    loop {
        let id = coordinator.fresh();
        match sessions[at].run(id, infos, directive.clone()).await {
            DirectiveOutcome::NotLeader { hint } => {
                let hinted = hint.and_then(|l| infos.iter().position(|n| n.id == l));
                at = match hinted.filter(|i| members.contains(i)) {
                    Some(leader) => leader,
                    None if at + 1 < members.end => at + 1,
                    None => members.start,
                };
            }
            other => return other,
        }
        assert!(Instant::now() < deadline, "{directive:?} not done in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client that knows every live member of configuration 2 (nodes 1 and 2).
fn via_new_fallback(infos: &[NodeInfo]) -> Client {
    Client::connect([infos[1].client, infos[2].client], ClientConfig::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_requests_are_relayed_to_the_coordinator() {
    let coordinator = FakeCoordinator::bind().await;
    let (nodes, mut sessions) = start_nodes(&coordinator, 1).await;
    let node = nodes[0].info.client;
    let request = AdminRequest::Remove(NodeRef::Id(NodeId(9)));
    let asked = tokio::spawn(admin(node, request.clone(), WAIT));
    // The node opens a connection of its own to the coordinator for the request.
    let (stream, _) = timeout(WAIT, coordinator.listener.accept())
        .await
        .expect("the node relays")
        .unwrap();
    let mut relayed = Framed::new(stream, ServerCodec::default());
    let frame = timeout(WAIT, relayed.next()).await.expect("a request");
    assert!(matches!(frame, Some(Ok(ClientFrame::Admin(r))) if r == request));
    let answer = AdminAnswer::Refused("no such node".into());
    relayed
        .send(ServerFrame::Admin(answer.clone()))
        .await
        .unwrap();
    assert_eq!(asked.await.unwrap().unwrap(), answer);
    drop(sessions.pop());
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_and_install_move_a_slot_between_groups() {
    let mut coordinator = FakeCoordinator::bind().await;
    let (nodes, mut sessions) = start_nodes(&coordinator, 6).await;
    let infos: Vec<NodeInfo> = nodes.iter().map(|n| n.info.clone()).collect();
    let ids: Vec<NodeId> = infos.iter().map(|n| n.id).collect();
    // Group 0 owns every slot, group 1 (created empty, as a reconfiguration creates groups)
    // none.
    for (group, range, slots) in [(0, 0..3, all_slots()), (1, 3..6, Vec::new())] {
        let start = Directive::StartGroup {
            group: GroupId(group),
            config: 1,
            members: ids[range.clone()].to_vec(),
            slots,
        };
        for i in range {
            let id = coordinator.fresh();
            let outcome = sessions[i].run(id, &infos, start.clone()).await;
            assert_eq!(outcome, DirectiveOutcome::Done);
        }
    }
    let mut map = one_group_map(1, 1, &infos, &ids[..3]);
    map.standbys.clear();
    map.groups.push(GroupInfo {
        id: GroupId(1),
        config: 1,
        members: ids[3..].to_vec(),
    });
    map.next_group = GroupId(2);
    map.validate().expect("a valid map");
    for s in sessions.iter_mut() {
        s.send(ServerFrame::Map(Some(map.clone()))).await;
    }
    for node in &nodes {
        status_until(node, "its group led", |s| {
            s.groups.len() == 1 && s.groups[0].leader.is_some()
        })
        .await;
    }
    let client = Client::connect([infos[0].client], ClientConfig::default()).unwrap();
    for i in 0..10 {
        let put = KvOp::Put {
            key: bytes(&format!("key-{i}")),
            value: bytes(&format!("value-{i}")),
        };
        assert_eq!(client.execute(put).await, Ok(KvResult::Written));
    }

    // Freeze the slot of key-3 in group 0: its data comes back, and again on a re-freeze.
    let slot = kv_ports::membership::slot_of(b"key-3");
    let freeze = Directive::Freeze {
        group: GroupId(0),
        slots: vec![slot],
        epoch: Epoch(2),
    };
    let outcome = at_leader(
        &mut coordinator,
        &mut sessions,
        &infos,
        0..3,
        freeze.clone(),
    )
    .await;
    let DirectiveOutcome::Frozen(data) = outcome else {
        panic!("freeze answered {outcome:?}");
    };
    assert!(
        data.pairs.contains(&(bytes("key-3"), bytes("value-3"))),
        "{data:?}"
    );
    let again = at_leader(&mut coordinator, &mut sessions, &infos, 0..3, freeze).await;
    assert_eq!(again, DirectiveOutcome::Frozen(data.clone()));

    // Install it in group 1, then publish the map that moves the slot.
    let install = Directive::Install {
        group: GroupId(1),
        slots: vec![slot],
        epoch: Epoch(2),
        data,
    };
    let outcome = at_leader(
        &mut coordinator,
        &mut sessions,
        &infos,
        3..6,
        install.clone(),
    )
    .await;
    assert_eq!(outcome, DirectiveOutcome::Done);
    // A slot-move directive for a group with no member on the node fails there.
    let id = coordinator.fresh();
    let outcome = sessions[0].run(id, &infos, install).await;
    assert!(
        matches!(outcome, DirectiveOutcome::Failed(_)),
        "{outcome:?}"
    );

    map.epoch = Epoch(2);
    map.slots[slot.index()] = GroupId(1);
    map.validate().expect("a valid map");
    for s in sessions.iter_mut() {
        s.send(ServerFrame::Map(Some(map.clone()))).await;
    }
    // The client still routes by epoch 1: group 0 answers Moved, the client refreshes.
    let get = KvOp::Get {
        key: bytes("key-3"),
    };
    assert_eq!(
        client.execute(get).await,
        Ok(KvResult::Value(Some(bytes("value-3"))))
    );
    let put = KvOp::Put {
        key: bytes("key-3"),
        value: bytes("moved"),
    };
    assert_eq!(client.execute(put).await, Ok(KvResult::Written));
    for i in [0, 1, 2, 4] {
        let get = KvOp::Get {
            key: bytes(&format!("key-{i}")),
        };
        assert_eq!(
            client.execute(get).await,
            Ok(KvResult::Value(Some(bytes(&format!("value-{i}"))))),
        );
    }
    let status = node_status(&nodes[4]).await;
    assert!(status.groups[0].decided >= 1, "{status:?}");
    stop_all(nodes).await;
}
