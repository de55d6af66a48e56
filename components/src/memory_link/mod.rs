//! An in-process network: a stand-in for the perfect link when several nodes share a process.
//!
//! Each node gets a [`MemoryLink`] component providing the same [`NetworkPort`] as the TCP
//! perfect link, so a component tested on it is wired exactly as in production. The shared
//! [`MemoryNetwork`] routes messages between them (exactly once, FIFO, as the real link) and
//! lets a test cut links, isolate nodes and heal them; traffic across a cut is lost.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use kameo::actor::{ActorRef, WeakActorRef};
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::component::spawn;
use kv_ports::ids::NodeId;
use kv_ports::network::{NetIndication, NetRequest, NetworkPort, Topic};
use kv_ports::port::{ConnectionId, ProvidedPort, Req};

/// The shared switch all [`MemoryLink`]s of one test plug into.
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<Switch>>,
}

#[derive(Default)]
struct Switch {
    links: HashMap<NodeId, WeakActorRef<MemoryLink>>,
    /// Cut pairs, stored with the smaller id first; a cut is always two-way.
    cuts: HashSet<(NodeId, NodeId)>,
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl MemoryNetwork {
    /// A network with no nodes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plugs in node `me` and returns its link component.
    pub fn join(&self, me: NodeId) -> ActorRef<MemoryLink> {
        let link = spawn::<MemoryLink>((me, self.clone()));
        self.switch().links.insert(me, link.downgrade());
        link
    }

    /// Cuts the link between `a` and `b` in both directions.
    pub fn cut(&self, a: NodeId, b: NodeId) {
        if self.switch().cuts.insert(pair(a, b)) {
            self.notify(a, NetIndication::PeerDown(b));
            self.notify(b, NetIndication::PeerDown(a));
        }
    }

    /// Restores the link between `a` and `b`.
    pub fn heal(&self, a: NodeId, b: NodeId) {
        if self.switch().cuts.remove(&pair(a, b)) {
            self.notify(a, NetIndication::PeerUp(b));
            self.notify(b, NetIndication::PeerUp(a));
        }
    }

    /// Cuts `node` off from every other node.
    pub fn isolate(&self, node: NodeId) {
        for other in self.nodes() {
            if other != node {
                self.cut(node, other);
            }
        }
    }

    /// Restores every link of `node`.
    pub fn reconnect(&self, node: NodeId) {
        for other in self.nodes() {
            if other != node {
                self.heal(node, other);
            }
        }
    }

    fn nodes(&self) -> Vec<NodeId> {
        self.switch().links.keys().copied().collect()
    }

    fn switch(&self) -> MutexGuard<'_, Switch> {
        // A panic while holding the lock poisons it; the switch holds no invariant it could break.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn route(&self, from: NodeId, to: NodeId, topic: Topic, payload: Bytes) {
        let target = {
            let switch = self.switch();
            if switch.cuts.contains(&pair(from, to)) {
                return;
            }
            switch.links.get(&to).and_then(WeakActorRef::upgrade)
        };
        if let Some(target) = target {
            let _ = target
                .tell(Arrive {
                    from,
                    topic,
                    payload,
                })
                .try_send();
        }
    }

    fn notify(&self, node: NodeId, event: NetIndication) {
        let target = self
            .switch()
            .links
            .get(&node)
            .and_then(WeakActorRef::upgrade);
        if let Some(target) = target {
            let _ = target.tell(Notify(event)).try_send();
        }
    }
}

/// One node's plug into a [`MemoryNetwork`]; provides [`NetworkPort`].
pub struct MemoryLink {
    me: NodeId,
    network: MemoryNetwork,
    port: ProvidedPort<NetworkPort>,
    subscribers: HashMap<Topic, Vec<ConnectionId>>,
}

impl Actor for MemoryLink {
    type Args = (NodeId, MemoryNetwork);
    type Error = Infallible;

    async fn on_start((me, network): Self::Args, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(MemoryLink {
            me,
            network,
            port: ProvidedPort::default(),
            subscribers: HashMap::new(),
        })
    }
}

kv_ports::component!(MemoryLink);

kv_ports::provides!(MemoryLink: NetworkPort = port);

impl Message<Req<NetworkPort>> for MemoryLink {
    type Reply = ();

    async fn handle(&mut self, req: Req<NetworkPort>, _: &mut Context<Self, ()>) {
        match req.event {
            NetRequest::Send { to, topic, payload } => {
                self.network.route(self.me, to, topic, payload)
            }
            NetRequest::Subscribe(topic) => {
                self.subscribers.entry(topic).or_default().push(req.from)
            }
            NetRequest::Block(node) => self.network.cut(self.me, node),
            NetRequest::Unblock(node) => self.network.heal(self.me, node),
            // Every node of the switch is reachable by its id.
            NetRequest::AddPeer { .. } | NetRequest::RemovePeer(_) => {}
        }
    }
}

/// A message arriving from another node's link.
struct Arrive {
    from: NodeId,
    topic: Topic,
    payload: Bytes,
}

impl Message<Arrive> for MemoryLink {
    type Reply = ();

    async fn handle(&mut self, msg: Arrive, _: &mut Context<Self, ()>) {
        let Some(subscribers) = self.subscribers.get(&msg.topic) else {
            return;
        };
        for &conn in subscribers {
            let event = NetIndication::Deliver {
                from: msg.from,
                topic: msg.topic,
                payload: msg.payload.clone(),
            };
            self.port.answer(conn, event);
        }
    }
}

/// A connectivity change to pass on to the requirers.
struct Notify(NetIndication);

impl Message<Notify> for MemoryLink {
    type Reply = ();

    async fn handle(&mut self, Notify(event): Notify, _: &mut Context<Self, ()>) {
        self.port.trigger(event);
    }
}
