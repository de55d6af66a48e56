//! [`Membership`]: the node's agent for its peers. It tells the link where every other node
//! listens (and forgets the ones that left), tells the failure detector to watch them, keeps
//! the detector's suspicions where the node's status answer can read them, and reports every
//! suspicion and restoration to the coordinator on the node's session.
//!
//! The peers are the nodes of the newest map plus the ones the coordinator's directives named
//! since ([`AddPeers`]): new members of a group talk to each other before any published map
//! names them. A directive's peers are kept until a newer map is applied (the map published
//! after the change names every node that still belongs).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::fd::{FailureDetectorPort, FdIndication, FdRequest};
use kv_ports::ids::NodeId;
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};
use kv_ports::network::{NetIndication, NetRequest, NetworkPort};
use kv_ports::port::{Ind, RequiredPort};
use tokio::sync::mpsc::UnboundedSender;

use crate::native::ClientFrame;

/// The suspicion set shared with the node's status answer.
pub type SuspectSet = Arc<Mutex<BTreeSet<NodeId>>>;

/// See the module documentation.
pub struct Membership {
    me: NodeId,
    net: RequiredPort<NetworkPort>,
    fd: RequiredPort<FailureDetectorPort>,
    /// The peers the link and the failure detector were told about.
    peers: BTreeMap<NodeId, SocketAddr>,
    /// The newest map's other nodes, and its epoch.
    mapped: BTreeMap<NodeId, SocketAddr>,
    epoch: Epoch,
    /// Peers named by directives, with the map epoch current when they were named.
    extras: BTreeMap<NodeId, (SocketAddr, Epoch)>,
    suspects: SuspectSet,
    /// The node's session to the coordinator (suspicion reports), if it has one.
    session: Option<UnboundedSender<ClientFrame>>,
}

/// What a [`Membership`] starts from.
pub struct MembershipArgs {
    /// This node.
    pub me: NodeId,
    /// Where suspicions are kept for the status answer.
    pub suspects: SuspectSet,
    /// Where suspicion reports to the coordinator go (`None`: no coordinator).
    pub session: Option<UnboundedSender<ClientFrame>>,
}

impl Actor for Membership {
    type Args = MembershipArgs;
    type Error = Infallible;

    async fn on_start(args: MembershipArgs, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Membership {
            me: args.me,
            net: RequiredPort::default(),
            fd: RequiredPort::default(),
            peers: BTreeMap::new(),
            mapped: BTreeMap::new(),
            epoch: Epoch(0),
            extras: BTreeMap::new(),
            suspects: args.suspects,
            session: args.session,
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
        if map.epoch < self.epoch {
            return;
        }
        self.mapped = map
            .nodes
            .iter()
            .filter(|n| n.id != self.me)
            .map(|n| (n.id, n.link))
            .collect();
        self.epoch = map.epoch;
        let epoch = self.epoch;
        self.extras.retain(|_, (_, named)| *named >= epoch);
        self.update();
    }
}

/// Talk to these nodes too (a directive names them): answered once the link and the failure
/// detector have been told, so whatever is sent after the answer can reach them.
pub struct AddPeers(pub Vec<NodeInfo>);

impl Message<AddPeers> for Membership {
    type Reply = ();

    async fn handle(&mut self, AddPeers(nodes): AddPeers, _: &mut Context<Self, ()>) {
        for n in nodes.into_iter().filter(|n| n.id != self.me) {
            self.extras.insert(n.id, (n.link, self.epoch));
        }
        self.update();
    }
}

impl Membership {
    /// Tells the link and the failure detector about the peers wanted now.
    fn update(&mut self) {
        let mut wanted = self.mapped.clone();
        for (&node, &(addr, _)) in &self.extras {
            wanted.entry(node).or_insert(addr);
        }
        for gone in self.peers.keys().filter(|n| !wanted.contains_key(n)) {
            self.net.trigger(NetRequest::RemovePeer(*gone));
        }
        for (&node, &addr) in &wanted {
            if self.peers.get(&node) != Some(&addr) {
                self.net.trigger(NetRequest::AddPeer { node, addr });
            }
        }
        let dropped: Vec<NodeId> = {
            let mut suspects = lock(&self.suspects);
            let dropped = suspects
                .iter()
                .filter(|n| !wanted.contains_key(n))
                .copied()
                .collect();
            suspects.retain(|n| wanted.contains_key(n));
            dropped
        };
        for node in dropped {
            self.report(node, false);
        }
        self.fd
            .trigger(FdRequest::Monitor(wanted.keys().copied().collect()));
        self.peers = wanted;
    }

    /// Tells the coordinator (if any) about a suspicion or a restoration.
    fn report(&self, node: NodeId, suspected: bool) {
        if let Some(session) = &self.session {
            let _ = session.send(ClientFrame::Suspicion { node, suspected });
        }
    }
}

impl Message<Ind<FailureDetectorPort>> for Membership {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<FailureDetectorPort>, _: &mut Context<Self, ()>) {
        match ind.event {
            FdIndication::Suspect(node) => {
                tracing::warn!(%node, "failure detector suspects node");
                if lock(&self.suspects).insert(node) {
                    self.report(node, true);
                }
            }
            FdIndication::Restore(node) => {
                tracing::info!(%node, "failure detector restores node");
                if lock(&self.suspects).remove(&node) {
                    self.report(node, false);
                }
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
