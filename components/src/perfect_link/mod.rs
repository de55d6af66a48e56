//! PerfectLink: exactly-once, FIFO, authenticated-by-`Hello` messaging between node processes
//! over TCP, providing [`NetworkPort`].
//!
//! # Shape
//! The actor holds only state; socket I/O runs in spawned tasks (see `connection.rs`) that
//! reach the actor through a weak reference with `try_send`, so no handler ever awaits a socket
//! and dropping the last [`ActorRef`] stops the link, which drops its task guards and so closes
//! the listener and every socket. Framing is postcard behind a 4-byte length prefix
//! (`frame.rs`); per-peer sequencing is a pure state machine (`session.rs`).
//!
//! # Connections and handshake
//! There is one connection per peer. The dialer first writes the 4-byte [`PREAMBLE`]
//! (`KVL1`), which lets a port shared with other protocols recognise link connections and
//! makes the acceptor refuse anything else before decoding a frame. Inbound connections come
//! from the link's own listener ([`PerfectLink::start`]) or, when another task owns the port
//! ([`PerfectLink::start_shared`]), are handed over with [`AdoptStream`]; both are treated
//! alike. Then each side sends `Hello { node, listen, token,
//! next_expected, expected_from }` (the dialer first, the acceptor in reply), so the acceptor
//! learns who dialed and where to dial it back, and each side resends its unacknowledged frames
//! from the peer's `next_expected`. A side sends data only after it has seen the other's
//! `Hello`. When both sides dial at once, **the connection dialed by the smaller `NodeId` is
//! kept** and the other closed; both ends apply the same rule, so they agree.
//!
//! # Delivery
//! Frames are numbered per peer and session from 1 and kept until a cumulative ack (sent after
//! [`LinkConfig::ack_every`] deliveries and every [`LinkConfig::ack_interval`]) releases them.
//! After a dropped connection the link redials with exponential backoff and resends what was
//! not acknowledged; the receiver drops duplicates. Between two processes that stay up and
//! unblocked, every `Send` is delivered exactly once and in order. A peer that restarts (new
//! incarnation in its `Hello`) gets a fresh session: frames unacknowledged by its previous
//! incarnation are dropped, and numbering restarts in both directions.
//!
//! # Fault injection: `Block(node)` / `Unblock(node)`
//! While `node` is blocked this process closes its connection to `node` (triggering `PeerDown`
//! if it was up), stops dialing it, refuses its inbound connections after reading their
//! `Hello`, and discards every `Send` to it. The cut is a *loss*, not a delay: blocking
//! discards the session with `node` (including unacknowledged frames) and bumps our session
//! epoch for it. On `Unblock` we redial; our `Hello` carries the new epoch, and `node`, seeing
//! a changed token, discards its own session with us, including everything it queued for us
//! during the cut. So messages sent in either direction between `Block` and the first
//! handshake after `Unblock` are lost for good; messages sent after the new connection is up
//! (`PeerUp` on both sides) are delivered exactly once, in order. Blocking is local: only the
//! process that was told filters, and `node` sees ordinary connection drops.
//!
//! `RemovePeer(node)` forgets the address and discards the session the same way (a later
//! `AddPeer` or inbound connection starts afresh). A `Send` to a node with no known address
//! waits in its session until an `AddPeer` or an inbound `Hello` from that node reveals it.
//! A payload larger than [`LinkConfig::max_frame_len`] minus a small overhead is refused at
//! `Send` (logged); an inbound frame over the maximum, undecodable, or out of protocol closes
//! its connection (logged) and never reaches a component.

mod config;
mod connection;
mod events;
mod frame;
mod session;
mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kameo::actor::{ActorRef, WeakActorRef};
use kameo::error::ActorStopReason;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::ids::NodeId;
use kv_ports::network::{NetIndication, NetRequest, NetworkPort, Topic};
use kv_ports::port::{ConnectionId, ProvidedPort, Req};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use crate::task::TaskGuard;
pub use config::LinkConfig;
pub use frame::PREAMBLE;
use frame::{Frame, Hello, Token, DATA_OVERHEAD};
use state::{Conn, ConnKey, Peer};

/// Why the link could not start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Binding or inspecting the listening socket failed.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// The actor stopped before it could answer.
    #[error("the link stopped during start-up")]
    Stopped,
    /// Neither a listener nor `LinkConfig::advertise`: peers would not know where to dial.
    #[error("a link without a listener needs an advertised address")]
    NoAddress,
}

/// What a [`PerfectLink`] starts from.
pub struct LinkArgs {
    /// This process's node id.
    pub node: NodeId,
    /// An already bound listener (see [`PerfectLink::start`] to bind one), or `None` when
    /// another task owns the port and hands inbound connections over with [`AdoptStream`]
    /// (then [`LinkConfig::advertise`] must say where peers dial; see
    /// [`PerfectLink::start_shared`]).
    pub listener: Option<TcpListener>,
    /// Tuning.
    pub config: LinkConfig,
}

/// The perfect-link component; see the module documentation for its guarantees.
pub struct PerfectLink {
    me: NodeId,
    incarnation: Uuid,
    listen: SocketAddr,
    advertise: SocketAddr,
    config: LinkConfig,
    net: ProvidedPort<NetworkPort>,
    subscribers: HashMap<Topic, Vec<ConnectionId>>,
    peers: HashMap<NodeId, Peer>,
    conns: HashMap<ConnKey, Conn>,
    next_key: u64,
    myself: WeakActorRef<PerfectLink>,
    _tasks: Vec<TaskGuard>,
}

impl PerfectLink {
    /// Binds `listen` (port 0 picks a free port), spawns the link with an unbounded mailbox and
    /// returns it with the address it actually listens on (the one to give peers in `AddPeer`).
    pub async fn start(
        node: NodeId,
        listen: SocketAddr,
        config: LinkConfig,
    ) -> Result<(ActorRef<PerfectLink>, SocketAddr), LinkError> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let link = kv_ports::component::spawn::<PerfectLink>(LinkArgs {
            node,
            listener: Some(listener),
            config,
        });
        Ok((link, addr))
    }

    /// Spawns a link without a listener of its own, for a port shared with other protocols:
    /// whoever accepts on it hands link connections (those starting with [`PREAMBLE`],
    /// left unread) over with [`AdoptStream`]. `advertise` is that port's address as peers
    /// should dial it; it overrides `config.advertise`.
    pub fn start_shared(
        node: NodeId,
        advertise: SocketAddr,
        config: LinkConfig,
    ) -> ActorRef<PerfectLink> {
        let config = LinkConfig {
            advertise: Some(advertise),
            ..config
        };
        kv_ports::component::spawn::<PerfectLink>(LinkArgs {
            node,
            listener: None,
            config,
        })
    }
}

impl Actor for PerfectLink {
    type Args = LinkArgs;
    type Error = LinkError;

    async fn on_start(args: LinkArgs, me: ActorRef<Self>) -> Result<Self, LinkError> {
        let bound = args
            .listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let advertise = args
            .config
            .advertise
            .or(bound)
            .ok_or(LinkError::NoAddress)?;
        let listen = bound.unwrap_or(advertise);
        let myself = me.downgrade();
        let mut tasks = vec![connection::tick(args.config.ack_interval, myself.clone())];
        if let Some(listener) = args.listener {
            tasks.push(connection::listen(listener, myself.clone()));
        }
        if advertise.ip().is_unspecified() {
            tracing::warn!(%advertise, "advertising an unspecified address; set `advertise`");
        }
        match bound {
            Some(_) => {
                tracing::info!(node = %args.node, %listen, %advertise, "perfect link listening")
            }
            None => tracing::info!(node = %args.node, %advertise, "perfect link on a shared port"),
        }
        Ok(PerfectLink {
            me: args.node,
            incarnation: Uuid::new_v4(),
            listen,
            advertise,
            config: args.config,
            net: ProvidedPort::default(),
            subscribers: HashMap::new(),
            peers: HashMap::new(),
            conns: HashMap::new(),
            next_key: 0,
            myself,
            _tasks: tasks,
        })
    }

    async fn on_stop(
        &mut self,
        _: WeakActorRef<Self>,
        reason: ActorStopReason,
    ) -> Result<(), LinkError> {
        tracing::debug!(node = %self.me, ?reason, "perfect link stopping");
        self.conns.clear();
        self.peers.clear();
        self._tasks.clear();
        Ok(())
    }
}

kv_ports::component!(PerfectLink);

kv_ports::provides!(PerfectLink: NetworkPort = net);

impl Message<Req<NetworkPort>> for PerfectLink {
    type Reply = ();

    async fn handle(&mut self, req: Req<NetworkPort>, _: &mut Context<Self, ()>) {
        match req.event {
            NetRequest::Send { to, topic, payload } => self.send(to, topic, payload),
            NetRequest::Subscribe(topic) => self.subscribe(req.from, topic),
            NetRequest::AddPeer { node, addr } => self.add_peer(node, addr),
            NetRequest::RemovePeer(node) => self.remove_peer(node),
            NetRequest::Block(node) => self.block(node),
            NetRequest::Unblock(node) => self.unblock(node),
        }
    }
}

/// Admin/test message (not part of the port): forcibly closes every socket, as if the network
/// dropped them all mid-stream. Peers are redialed with backoff and unacked frames resent.
#[derive(Debug, Clone, Copy)]
pub struct DropConnections;

impl Message<DropConnections> for PerfectLink {
    type Reply = ();

    async fn handle(&mut self, _: DropConnections, _: &mut Context<Self, ()>) {
        let keys: Vec<ConnKey> = self.conns.keys().copied().collect();
        for key in keys {
            self.close_and_redial(key);
        }
    }
}

/// Another acceptor's inbound connection, handed to a link started with
/// [`PerfectLink::start_shared`]: treated exactly like one the link accepted itself, so the
/// stream must still begin with the dialer's [`PREAMBLE`] (peek at it, don't read it), and a
/// stream that does not is closed.
pub struct AdoptStream {
    /// The accepted socket, nothing read from it.
    pub stream: TcpStream,
    /// The remote address (for logs).
    pub from: SocketAddr,
}

impl Message<AdoptStream> for PerfectLink {
    type Reply = ();

    async fn handle(&mut self, msg: AdoptStream, _: &mut Context<Self, ()>) {
        let key = self.open(msg.stream, None, None);
        tracing::debug!(me = %self.me, from = %msg.from, ?key, "adopted connection");
    }
}

/// Admin ask: the address the link's socket is bound to (for a link on a shared port, the
/// advertised address).
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr;

/// The reply to [`LocalAddr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, kameo::Reply)]
pub struct BoundAddr(pub SocketAddr);

impl Message<LocalAddr> for PerfectLink {
    type Reply = BoundAddr;

    async fn handle(&mut self, _: LocalAddr, _: &mut Context<Self, BoundAddr>) -> BoundAddr {
        BoundAddr(self.listen)
    }
}

/// Admin ask: how many frames to `node` wait for an acknowledgement (0 for unknown nodes).
#[derive(Debug, Clone, Copy)]
pub struct Unacked(pub NodeId);

impl Message<Unacked> for PerfectLink {
    type Reply = usize;

    async fn handle(&mut self, Unacked(node): Unacked, _: &mut Context<Self, usize>) -> usize {
        self.peers.get(&node).map_or(0, |p| p.session.unacked_len())
    }
}

impl PerfectLink {
    fn send(&mut self, to: NodeId, topic: Topic, payload: Bytes) {
        if payload.len() + DATA_OVERHEAD > self.config.max_frame_len {
            tracing::error!(%to, ?topic, len = payload.len(), "payload exceeds max frame; dropped");
            return;
        }
        if to == self.me {
            self.deliver(to, topic, payload);
            return;
        }
        let peer = self.peers.entry(to).or_default();
        if peer.blocked {
            tracing::trace!(%to, "dropping send to blocked peer");
            return;
        }
        let frame = peer.session.push(topic, payload);
        if let Some(conn) = peer.conn.and_then(|k| self.conns.get(&k)) {
            if conn.established {
                conn.send(frame);
            }
        }
    }

    fn subscribe(&mut self, from: ConnectionId, topic: Topic) {
        let subs = self.subscribers.entry(topic).or_default();
        if !subs.contains(&from) {
            subs.push(from);
        }
    }

    fn add_peer(&mut self, node: NodeId, addr: SocketAddr) {
        if node == self.me {
            return;
        }
        let peer = self.peers.entry(node).or_default();
        peer.addr = Some(addr);
        peer.addr_explicit = true;
        self.ensure_dial(node, Duration::ZERO);
    }

    fn remove_peer(&mut self, node: NodeId) {
        let Some(peer) = self.peers.get_mut(&node) else {
            return;
        };
        peer.addr = None;
        peer.addr_explicit = false;
        peer.dial = None;
        peer.new_epoch();
        if let Some(key) = peer.conn {
            self.close(key);
        }
    }

    fn block(&mut self, node: NodeId) {
        let peer = self.peers.entry(node).or_default();
        if peer.blocked {
            return;
        }
        tracing::info!(me = %self.me, %node, "blocking peer");
        peer.blocked = true;
        peer.dial = None;
        peer.new_epoch();
        if let Some(key) = peer.conn {
            self.close(key);
        }
    }

    fn unblock(&mut self, node: NodeId) {
        let Some(peer) = self.peers.get_mut(&node) else {
            return;
        };
        if !peer.blocked {
            return;
        }
        tracing::info!(me = %self.me, %node, "unblocking peer");
        peer.blocked = false;
        peer.backoff = Duration::ZERO;
        self.ensure_dial(node, Duration::ZERO);
    }

    /// Hands a payload to the subscribers of its topic, forgetting the ones that stopped.
    fn deliver(&mut self, from: NodeId, topic: Topic, payload: Bytes) {
        let Some(subs) = self.subscribers.get_mut(&topic) else {
            tracing::debug!(%from, ?topic, "no subscriber; payload dropped");
            return;
        };
        let net = &mut self.net;
        subs.retain(|sub| {
            let event = NetIndication::Deliver {
                from,
                topic,
                payload: payload.clone(),
            };
            net.answer(*sub, event)
        });
    }

    /// Our `Hello` for `node`, reflecting our current session with it.
    fn hello(&self, node: NodeId) -> Frame {
        let peer = self.peers.get(&node);
        Frame::Hello(Hello {
            node: self.me,
            listen: self.advertise,
            token: Token {
                incarnation: self.incarnation,
                epoch: peer.map_or(0, |p| p.epoch),
            },
            next_expected: peer.map_or(1, |p| p.session.next_expected()),
            expected_from: peer.and_then(|p| p.token),
        })
    }

    /// Starts dialing `node` after `delay` unless it is blocked, connected, being dialed, or
    /// has no known address.
    fn ensure_dial(&mut self, node: NodeId, delay: Duration) {
        let Some(peer) = self.peers.get_mut(&node) else {
            return;
        };
        if peer.blocked || peer.conn.is_some() || peer.dial.is_some() {
            return;
        }
        let Some(addr) = peer.addr else {
            return;
        };
        self.next_key += 1;
        let attempt = self.next_key;
        let task = connection::dial(
            node,
            attempt,
            addr,
            delay,
            &self.config,
            self.myself.clone(),
        );
        peer.dial = Some((attempt, task));
    }
}
