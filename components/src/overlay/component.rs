//! The Overlay component: the router every front end talks to, so any node (a standby too)
//! serves any key.
//!
//! ```text
//!        KvPort (native endpoint, RESP/HTTP gateway)
//!                      │
//!                   Overlay ──── NetworkPort (Topic::Overlay: Forward / Answer)
//!                      │
//!        KvPort, one connection per local group's ReplicaComponent
//! ```
//!
//! A command from a front end is routed by the [`Router`] core (key → slot → group → leader
//! guess). When the target is this node and it runs a replica of the group, the command goes
//! to that replica; otherwise it is forwarded to the target node, whose overlay hands it to
//! its own replica of the group and answers. The node the command came in at owns its
//! redirects: a `NotLeader` answer teaches the router (the hint, or the next member to try)
//! and the command is routed again with the same request id, a bounded number of times; the
//! replicas' session tables keep a command that reached two replicas from taking effect twice.
//! A forwarded command whose target's connection drops is routed again at once.
//!
//! As in the replica, each client has at most one command in flight here: a newer command
//! replaces an older one, whose answer is then dropped.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::component::Start;
use kv_ports::ids::{ClientId, GroupId, NodeId};
use kv_ports::kv::{KvCommand, KvError, KvPort, KvReply, KvResult, RequestId};
use kv_ports::membership::{Epoch, SlotMap};
use kv_ports::network::{NetIndication, NetRequest, NetworkPort, Topic};
use kv_ports::port::{ConnectionId, Ind, ProvidedPort, Req, RequiredPort};

use super::core::{RouteError, Router};
use super::wire::OverlayMsg;
use crate::wire::{decode, encode};

/// How many times one command is routed again (after a `NotLeader`, an unattached local
/// group or a dropped connection) before its front end gets the `NotLeader` and backs off.
pub const MAX_REROUTES: u32 = 3;

/// How to start an [`Overlay`].
#[derive(Clone, Debug)]
pub struct OverlayArgs {
    /// This node.
    pub me: NodeId,
    /// The replication degree of the empty map held until the first [`InstallMap`].
    pub replication: u32,
}

/// A command that came in at one of this node's front ends and has no answer yet.
#[derive(Clone, Debug)]
struct Pending {
    /// The command, resent unchanged (same request id) on every reroute.
    cmd: KvCommand,
    /// The front-end connection to answer.
    front: ConnectionId,
    /// The group of the latest attempt.
    group: GroupId,
    /// The node of the latest attempt (this node for a local replica).
    at: NodeId,
    /// How many times the command was routed again.
    reroutes: u32,
}

/// A command another node forwarded here, waiting at a local replica.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Serving {
    /// The client's sequence number of the command.
    seq: u64,
    /// The local group running it.
    group: GroupId,
    /// The node to answer.
    origin: NodeId,
}

/// The router of one node.
pub struct Overlay {
    me: NodeId,
    router: Router,
    /// Front ends: the native endpoint, the gateways.
    front: ProvidedPort<KvPort>,
    /// This node's replicas, one connection per group (see [`AttachGroup`]).
    replicas: RequiredPort<KvPort>,
    net: RequiredPort<NetworkPort>,
    /// The connection to each local group's replica.
    local: BTreeMap<GroupId, ConnectionId>,
    /// Commands from this node's front ends, by client (at most one each).
    pending: HashMap<ClientId, Pending>,
    /// Commands forwarded here, by client (at most one each).
    serving: HashMap<ClientId, Serving>,
    /// The newest epoch another node said it routes by, when newer than this node's map.
    newer_heard: Option<Epoch>,
}

impl Actor for Overlay {
    type Args = OverlayArgs;
    type Error = Infallible;

    async fn on_start(args: OverlayArgs, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Overlay {
            me: args.me,
            router: Router::new(args.replication),
            front: ProvidedPort::default(),
            replicas: RequiredPort::default(),
            net: RequiredPort::default(),
            local: BTreeMap::new(),
            pending: HashMap::new(),
            serving: HashMap::new(),
            newer_heard: None,
        })
    }
}

kv_ports::component!(Overlay);

kv_ports::provides!(Overlay: KvPort = front);
kv_ports::requires!(Overlay: KvPort = replicas, NetworkPort = net);

impl Message<Start> for Overlay {
    type Reply = ();

    async fn handle(&mut self, _: Start, _: &mut Context<Self, ()>) {
        self.net.trigger(NetRequest::Subscribe(Topic::Overlay));
    }
}

/// Route by `map` from now on, unless the map held is as new or newer.
#[derive(Clone, Debug)]
pub struct InstallMap(pub SlotMap);

impl Message<InstallMap> for Overlay {
    type Reply = ();

    async fn handle(&mut self, InstallMap(map): InstallMap, _: &mut Context<Self, ()>) {
        let epoch = map.epoch;
        if self.router.install(map) {
            tracing::debug!(node = %self.me, %epoch, "overlay routes by a new map");
            if self.newer_heard.is_some_and(|heard| heard <= epoch) {
                self.newer_heard = None;
            }
        }
    }
}

/// This node runs a replica of `group`, reached through `conn` (what
/// `connect::<KvPort, ReplicaComponent, Overlay>` returned).
#[derive(Copy, Clone, Debug)]
pub struct AttachGroup {
    /// The group.
    pub group: GroupId,
    /// The overlay's connection to the group's local replica.
    pub conn: ConnectionId,
}

impl Message<AttachGroup> for Overlay {
    type Reply = ();

    async fn handle(&mut self, attach: AttachGroup, _: &mut Context<Self, ()>) {
        if let Some(old) = self.local.insert(attach.group, attach.conn) {
            tracing::warn!(node = %self.me, group = %attach.group, ?old, "group attached again");
        }
    }
}

/// This node no longer runs a replica of the group: commands waiting at it are routed again
/// (from this node's front ends) or refused (forwarded by other nodes).
#[derive(Copy, Clone, Debug)]
pub struct DetachGroup(pub GroupId);

impl Message<DetachGroup> for Overlay {
    type Reply = ();

    async fn handle(&mut self, DetachGroup(group): DetachGroup, _: &mut Context<Self, ()>) {
        if self.local.remove(&group).is_none() {
            return;
        }
        let served: Vec<ClientId> = self
            .serving
            .iter()
            .filter(|(_, s)| s.group == group)
            .map(|(c, _)| *c)
            .collect();
        for client in served {
            let serving = self.serving.remove(&client).expect("listed just now");
            self.refuse_forward(client, serving);
        }
        let me = self.me;
        let waiting = self.pending_where(|p| p.at == me && p.group == group);
        for client in waiting {
            self.redirect(client, me, None);
        }
    }
}

/// Asks an [`Overlay`] for its state (for status pages and tests).
#[derive(Copy, Clone, Debug)]
pub struct QueryOverlay;

/// What an overlay holds.
#[derive(Clone, Debug, PartialEq, Eq, kameo::Reply)]
pub struct OverlayStatus {
    /// The epoch of the map routed by.
    pub epoch: Epoch,
    /// The groups with a local replica.
    pub local_groups: Vec<GroupId>,
    /// The cached leader of each group that has one.
    pub leaders: BTreeMap<GroupId, NodeId>,
    /// Commands from this node's front ends without an answer yet.
    pub pending: usize,
    /// Commands forwarded by other nodes, waiting at a local replica.
    pub serving: usize,
    /// A newer epoch another node routes by, if any (the map should be refreshed).
    pub newer_heard: Option<Epoch>,
}

impl Message<QueryOverlay> for Overlay {
    type Reply = OverlayStatus;

    async fn handle(
        &mut self,
        _: QueryOverlay,
        _: &mut Context<Self, OverlayStatus>,
    ) -> OverlayStatus {
        let map = self.router.map();
        let leaders = map
            .groups
            .iter()
            .filter_map(|g| self.router.leader(g.id).map(|n| (g.id, n)))
            .collect();
        OverlayStatus {
            epoch: map.epoch,
            local_groups: self.local.keys().copied().collect(),
            leaders,
            pending: self.pending.len(),
            serving: self.serving.len(),
            newer_heard: self.newer_heard,
        }
    }
}

/// A command from a front end.
impl Message<Req<KvPort>> for Overlay {
    type Reply = ();

    async fn handle(&mut self, req: Req<KvPort>, _: &mut Context<Self, ()>) {
        let client = req.event.id.client;
        let pending = Pending {
            cmd: req.event,
            front: req.from,
            // Placeholders: `dispatch` sets both from the route before anything is sent.
            group: GroupId(0),
            at: self.me,
            reroutes: 0,
        };
        // A retry of a command still waiting here means the front end gave up on the last
        // attempt: the node tried may be cut off without the link noticing yet, so the
        // router stops trusting it as the group's leader and the retry goes elsewhere.
        if let Some(stale) = self.pending.get(&client) {
            if stale.cmd.id == pending.cmd.id {
                self.router.on_not_leader(stale.group, None);
            }
        }
        // A newer command (or a retry) replaces the client's older one.
        self.pending.insert(client, pending);
        self.dispatch(client);
    }
}

/// An answer from a local replica.
impl Message<Ind<KvPort>> for Overlay {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<KvPort>, _: &mut Context<Self, ()>) {
        let KvReply { id, result } = ind.event;
        let served = self
            .serving
            .get(&id.client)
            .is_some_and(|s| s.seq == id.seq);
        if served {
            let serving = self.serving.remove(&id.client).expect("checked");
            self.answer_forward(id.client, serving, result.clone());
        }
        let me = self.me;
        self.answered(me, KvReply { id, result });
    }
}

impl Message<Ind<NetworkPort>> for Overlay {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<NetworkPort>, _: &mut Context<Self, ()>) {
        match ind.event {
            NetIndication::Deliver {
                from,
                topic: Topic::Overlay,
                payload,
            } => {
                if let Some(msg) = decode::<OverlayMsg>(&payload) {
                    self.on_message(from, msg);
                }
            }
            NetIndication::Deliver { .. } => {}
            NetIndication::PeerDown(node) => self.peer_down(node),
            NetIndication::PeerUp(node) => self.router.on_reachable(node),
        }
    }
}

impl Overlay {
    /// Routes the pending command of `client` and sends it; an attempt refused on the spot (no
    /// local replica, a stopped one) counts as a `NotLeader` from this node.
    fn dispatch(&mut self, client: ClientId) {
        let route = {
            let pending = self
                .pending
                .get(&client)
                .expect("dispatching a pending command");
            match pending.cmd.op.key() {
                Some(key) => self.router.route(key),
                None => Err(RouteError::NoMap),
            }
        };
        let route = match route {
            Ok(route) => route,
            Err(RouteError::NoMap) => {
                let refused = Err(KvError::NotLeader { hint: None });
                return self.give_up(client, refused);
            }
        };
        assert!(
            self.router
                .map()
                .members_of(route.group)
                .contains(&route.target),
            "the router targets a member of the key's group"
        );
        let pending = self.pending.get_mut(&client).expect("still pending");
        pending.group = route.group;
        pending.at = route.target;
        let cmd = pending.cmd.clone();
        if route.target != self.me {
            let forward = OverlayMsg::Forward {
                group: route.group,
                epoch: route.epoch,
                cmd,
            };
            self.send(route.target, &forward);
            return;
        }
        if !self.hand_to_local(route.group, cmd) {
            let me = self.me;
            self.redirect(client, me, None);
        }
    }

    /// Hands `cmd` to the local replica of `group`; false when there is none (or it stopped).
    fn hand_to_local(&mut self, group: GroupId, cmd: KvCommand) -> bool {
        let Some(&conn) = self.local.get(&group) else {
            return false;
        };
        if self.replicas.trigger_on(conn, cmd) {
            return true;
        }
        tracing::warn!(node = %self.me, %group, "local replica stopped; detaching it");
        self.local.remove(&group);
        false
    }

    /// An answer for a command of this node's front ends came from `node` (this node for a
    /// local replica). Answers for replaced commands are dropped; a `NotLeader` only counts
    /// when it answers the latest attempt, since an earlier attempt's may arrive late.
    fn answered(&mut self, node: NodeId, reply: KvReply) {
        let Some(pending) = self.pending.get(&reply.id.client) else {
            return;
        };
        if pending.cmd.id != reply.id {
            return;
        }
        match reply.result {
            Err(KvError::NotLeader { hint }) => {
                if pending.at == node {
                    self.redirect(reply.id.client, node, hint);
                }
            }
            Ok(result) => {
                self.router.on_leader(pending.group, node);
                self.finish(reply.id.client, Ok(result));
            }
            Err(other) => self.finish(reply.id.client, Err(other)),
        }
    }

    /// `node` could not take the pending command of `client` (`hint`: its leader guess): teach
    /// the router and route again, or give up after [`MAX_REROUTES`].
    fn redirect(&mut self, client: ClientId, node: NodeId, hint: Option<NodeId>) {
        let pending = self
            .pending
            .get_mut(&client)
            .expect("redirecting a pending command");
        assert_eq!(pending.at, node, "only the latest attempt is redirected");
        let group = pending.group;
        self.router.on_not_leader(group, hint);
        self.reroute(client, Err(KvError::NotLeader { hint }));
    }

    /// Routes the pending command of `client` again, or, once it was rerouted
    /// [`MAX_REROUTES`] times, answers its front end with `last` (the latest refusal).
    fn reroute(&mut self, client: ClientId, last: Result<KvResult, KvError>) {
        let pending = self
            .pending
            .get_mut(&client)
            .expect("rerouting a pending command");
        assert!(pending.reroutes <= MAX_REROUTES);
        if pending.reroutes == MAX_REROUTES {
            return self.give_up(client, last);
        }
        pending.reroutes += 1;
        self.dispatch(client);
    }

    /// Answers the front end with a refusal; the client retries later, maybe elsewhere.
    fn give_up(&mut self, client: ClientId, refused: Result<KvResult, KvError>) {
        assert!(refused.is_err(), "only refusals end a command unanswered");
        self.finish(client, refused);
    }

    /// Answers the front end of the pending command of `client` and forgets the command.
    fn finish(&mut self, client: ClientId, result: Result<KvResult, KvError>) {
        let pending = self
            .pending
            .remove(&client)
            .expect("finishing a pending command");
        let reply = KvReply {
            id: pending.cmd.id,
            result,
        };
        if !self.front.answer(pending.front, reply) {
            tracing::debug!(node = %self.me, %client, "front end gone before its answer");
        }
    }

    /// Commands of this node's front ends whose latest attempt matches `at`.
    fn pending_where(&self, at: impl Fn(&Pending) -> bool) -> Vec<ClientId> {
        let mut clients: Vec<ClientId> = self
            .pending
            .iter()
            .filter(|(_, p)| at(p))
            .map(|(c, _)| *c)
            .collect();
        // Reroute in a fixed order, so runs are reproducible.
        clients.sort();
        clients
    }

    /// The connection to `node` dropped: stop preferring it and reroute what waits at it.
    fn peer_down(&mut self, node: NodeId) {
        if node == self.me {
            tracing::warn!(node = %self.me, "link reported this node itself down; ignored");
            return;
        }
        self.router.on_unreachable(node);
        for client in self.pending_where(|p| p.at == node) {
            let hint = None;
            self.reroute(client, Err(KvError::NotLeader { hint }));
        }
        // Answers owed to it would be lost with the connection; its own reroutes cover them.
        self.serving.retain(|_, s| s.origin != node);
    }

    /// A message from another node's overlay.
    fn on_message(&mut self, from: NodeId, msg: OverlayMsg) {
        match msg {
            OverlayMsg::Forward { group, epoch, cmd } => self.serve(from, group, epoch, cmd),
            OverlayMsg::Answer {
                group,
                id,
                result,
                epoch,
            } => {
                self.heard_epoch(from, epoch);
                tracing::trace!(node = %self.me, %from, %group, ?id, "forward answered");
                self.answered(from, KvReply { id, result });
            }
        }
    }

    /// Runs a command forwarded by `origin` on the local replica of `group`, or refuses it.
    fn serve(&mut self, origin: NodeId, group: GroupId, epoch: Epoch, cmd: KvCommand) {
        let client = cmd.id.client;
        let serving = Serving {
            seq: cmd.id.seq,
            group,
            origin,
        };
        if epoch > self.router.map().epoch {
            self.heard_epoch(origin, epoch);
        }
        if self.hand_to_local(group, cmd) {
            // A newer command (or a retry) replaces the client's older one.
            self.serving.insert(client, serving);
        } else {
            self.refuse_forward(client, serving);
        }
    }

    /// Answers a forwarded command with `NotLeader`: this node has no replica of its group.
    fn refuse_forward(&mut self, client: ClientId, serving: Serving) {
        let refused = Err(KvError::NotLeader { hint: None });
        self.answer_forward(client, serving, refused);
    }

    /// Sends the outcome of a forwarded command back to the node it came from.
    fn answer_forward(
        &mut self,
        client: ClientId,
        serving: Serving,
        result: Result<KvResult, KvError>,
    ) {
        let answer = OverlayMsg::Answer {
            group: serving.group,
            id: RequestId {
                client,
                seq: serving.seq,
            },
            result,
            epoch: self.router.map().epoch,
        };
        self.send(serving.origin, &answer);
    }

    /// `from` routes by a map of `epoch`: note it when it is newer than this node's.
    fn heard_epoch(&mut self, from: NodeId, epoch: Epoch) {
        if let Some(refresh) = self.router.on_stale_epoch(epoch) {
            // No refresh channel yet: the node's map follower brings the new map.
            tracing::info!(node = %self.me, %from, have = %refresh.have, want = %refresh.want,
                "overlay map is stale");
            self.newer_heard = Some(refresh.want);
        }
    }

    /// Sends one overlay message to another node.
    fn send(&mut self, to: NodeId, msg: &OverlayMsg) {
        assert_ne!(to, self.me, "local commands go to the local replica");
        let sent = self.net.trigger(NetRequest::Send {
            to,
            topic: Topic::Overlay,
            payload: encode(msg),
        });
        if !sent {
            tracing::error!(node = %self.me, "overlay has no network");
        }
    }
}
