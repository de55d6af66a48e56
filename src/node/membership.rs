//! [`Membership`]: the node's agent for the slot map's node list. When a map is applied it
//! tells the link where every other node listens (and forgets the ones that left), tells the
//! failure detector to watch them, and keeps the detector's suspicions where the node's status
//! answer can read them.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::fd::{FailureDetectorPort, FdIndication, FdRequest};
use kv_ports::ids::NodeId;
use kv_ports::membership::SlotMap;
use kv_ports::network::{NetIndication, NetRequest, NetworkPort};
use kv_ports::port::{Ind, RequiredPort};

/// The suspicion set shared with the node's status answer.
pub type SuspectSet = Arc<Mutex<BTreeSet<NodeId>>>;

/// See the module documentation.
pub struct Membership {
    me: NodeId,
    net: RequiredPort<NetworkPort>,
    fd: RequiredPort<FailureDetectorPort>,
    peers: BTreeMap<NodeId, SocketAddr>,
    suspects: SuspectSet,
}

impl Actor for Membership {
    type Args = (NodeId, SuspectSet);
    type Error = Infallible;

    async fn on_start((me, suspects): Self::Args, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Membership {
            me,
            net: RequiredPort::default(),
            fd: RequiredPort::default(),
            peers: BTreeMap::new(),
            suspects,
        })
    }
}

kv_ports::component!(Membership);
kv_ports::requires!(Membership: NetworkPort = net, FailureDetectorPort = fd);

/// Adopt this map's node list.
pub struct ApplyNodes(pub SlotMap);

impl Message<ApplyNodes> for Membership {
    type Reply = ();

    async fn handle(&mut self, ApplyNodes(map): ApplyNodes, _: &mut Context<Self, ()>) {
        let wanted: BTreeMap<NodeId, SocketAddr> = map
            .nodes
            .iter()
            .filter(|n| n.id != self.me)
            .map(|n| (n.id, n.link))
            .collect();
        for gone in self.peers.keys().filter(|n| !wanted.contains_key(n)) {
            self.net.trigger(NetRequest::RemovePeer(*gone));
        }
        for (&node, &addr) in &wanted {
            if self.peers.get(&node) != Some(&addr) {
                self.net.trigger(NetRequest::AddPeer { node, addr });
            }
        }
        lock(&self.suspects).retain(|n| wanted.contains_key(n));
        self.fd
            .trigger(FdRequest::Monitor(wanted.keys().copied().collect()));
        self.peers = wanted;
    }
}

impl Message<Ind<FailureDetectorPort>> for Membership {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<FailureDetectorPort>, _: &mut Context<Self, ()>) {
        match ind.event {
            FdIndication::Suspect(node) => {
                tracing::warn!(%node, "failure detector suspects node");
                lock(&self.suspects).insert(node);
            }
            FdIndication::Restore(node) => {
                tracing::info!(%node, "failure detector restores node");
                lock(&self.suspects).remove(&node);
            }
        }
    }
}

impl Message<Ind<NetworkPort>> for Membership {
    type Reply = ();

    /// Connection events are the failure detector's and the router's business; this agent
    /// subscribes to no topic, so nothing else arrives.
    async fn handle(&mut self, ind: Ind<NetworkPort>, _: &mut Context<Self, ()>) {
        if let NetIndication::PeerDown(node) = ind.event {
            tracing::debug!(%node, "link to peer down");
        }
    }
}

/// Locks the set; no update can be left half-done by a panic, so poison is ignored.
pub fn lock(set: &SuspectSet) -> MutexGuard<'_, BTreeSet<NodeId>> {
    set.lock().unwrap_or_else(|e| e.into_inner())
}
