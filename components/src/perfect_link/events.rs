//! What the socket tasks tell the link, and how the link reacts: handshake, data, acks, drops.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kameo::message::{Context, Message};
use kv_ports::ids::NodeId;
use kv_ports::network::{NetIndication, Topic};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::connection;
use super::frame::{Frame, Hello, Token};
use super::session::{Receipt, SessionError};
use super::state::{candidate_wins, Conn, ConnKey};
use super::PerfectLink;

/// The listener accepted a socket.
pub struct Accepted {
    pub stream: TcpStream,
    pub from: SocketAddr,
}

/// A dial task connected.
pub struct Dialed {
    pub peer: NodeId,
    pub attempt: u64,
    pub stream: TcpStream,
}

/// A reader task decoded frames.
pub struct Inbound {
    pub conn: ConnKey,
    pub frames: Vec<Frame>,
}

/// A socket ended (EOF, I/O error, bad frame).
pub struct Closed {
    pub conn: ConnKey,
}

/// Time to flush pending acks.
pub struct Tick;

/// A peer broke the protocol on a connection; the connection is closed.
#[derive(Debug, thiserror::Error)]
enum ProtocolError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("unexpected {frame} frame (handshake done: {established})")]
    Unexpected {
        frame: &'static str,
        established: bool,
    },
    #[error("dialed {expected} but {got} answered")]
    WrongPeer { expected: NodeId, got: NodeId },
    #[error("connected to myself")]
    SelfConnection,
}

impl Message<Accepted> for PerfectLink {
    type Reply = ();

    async fn handle(&mut self, msg: Accepted, _: &mut Context<Self, ()>) {
        let key = self.open(msg.stream, None, None);
        tracing::debug!(me = %self.me, from = %msg.from, ?key, "accepted connection");
    }
}

impl Message<Dialed> for PerfectLink {
    type Reply = ();

    async fn handle(&mut self, msg: Dialed, _: &mut Context<Self, ()>) {
        let Some(peer) = self.peers.get_mut(&msg.peer) else {
            return;
        };
        if peer.dial.as_ref().map(|d| d.0) != Some(msg.attempt) {
            return; // a cancelled dial: drop the socket
        }
        peer.dial = None;
        if peer.blocked || peer.conn.is_some() {
            return;
        }
        let key = self.open(msg.stream, Some(msg.peer), Some(self.me));
        if let Some(peer) = self.peers.get_mut(&msg.peer) {
            peer.conn = Some(key);
        }
        let hello = self.hello(msg.peer);
        if let Some(conn) = self.conns.get(&key) {
            conn.send(hello);
        }
    }
}

impl Message<Inbound> for PerfectLink {
    type Reply = ();

    async fn handle(&mut self, msg: Inbound, _: &mut Context<Self, ()>) {
        for frame in msg.frames {
            if !self.conns.contains_key(&msg.conn) {
                return; // closed by an earlier frame of the batch, or already gone
            }
            if let Err(e) = self.on_frame(msg.conn, frame) {
                tracing::warn!(me = %self.me, conn = ?msg.conn, error = %e, "closing connection");
                self.close_and_redial(msg.conn);
                return;
            }
        }
    }
}

impl Message<Closed> for PerfectLink {
    type Reply = ();

    async fn handle(&mut self, msg: Closed, _: &mut Context<Self, ()>) {
        self.close_and_redial(msg.conn);
    }
}

impl Message<Tick> for PerfectLink {
    type Reply = ();

    /// Flushes pending acks (on idle connections the repeated ack doubles as a keepalive that
    /// surfaces sockets the peer has closed) and closes sockets stuck in the handshake.
    async fn handle(&mut self, _: Tick, _: &mut Context<Self, ()>) {
        self.expire_handshakes();
        for peer in self.peers.values_mut() {
            let Some(conn) = peer.conn.and_then(|k| self.conns.get(&k)) else {
                continue;
            };
            if conn.established {
                let next_expected = peer.session.next_expected();
                let ack = peer.session.take_ack();
                conn.send(ack.unwrap_or(Frame::Ack { next_expected }));
            }
        }
    }
}

impl PerfectLink {
    /// Closes the sockets whose handshake has taken longer than the configured timeout.
    fn expire_handshakes(&mut self) {
        let timeout = self.config.handshake_timeout;
        let stuck: Vec<ConnKey> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.established && c.opened.elapsed() > timeout)
            .map(|(k, _)| *k)
            .collect();
        for key in stuck {
            tracing::warn!(me = %self.me, conn = ?key, "closing connection: handshake timed out");
            self.close_and_redial(key);
        }
    }

    /// Registers a socket and starts its reader and writer (an inbound socket must begin with
    /// the preamble; on one we dialed, we write it).
    pub(super) fn open(
        &mut self,
        stream: TcpStream,
        peer: Option<NodeId>,
        dialer: Option<NodeId>,
    ) -> ConnKey {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        self.next_key += 1;
        let key = ConnKey(self.next_key);
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let max = self.config.max_frame_len;
        let outbound = dialer == Some(self.me);
        let tasks = [
            connection::read(read, key, max, !outbound, self.myself.clone()),
            connection::write(write, key, max, outbound, rx, self.myself.clone()),
        ];
        let conn = Conn {
            peer,
            dialer,
            established: false,
            opened: Instant::now(),
            tx,
            _tasks: tasks,
        };
        self.conns.insert(key, conn);
        key
    }

    /// Closes a socket; if it was a peer's current one, reports `PeerDown` (when it was up)
    /// and returns that peer.
    pub(super) fn close(&mut self, key: ConnKey) -> Option<NodeId> {
        let conn = self.conns.remove(&key)?;
        let node = conn.peer?;
        let peer = self.peers.get_mut(&node)?;
        if peer.conn != Some(key) {
            return None;
        }
        peer.conn = None;
        if peer.up {
            peer.up = false;
            tracing::info!(me = %self.me, peer = %node, "peer down");
            self.net.trigger(NetIndication::PeerDown(node));
            metrics::counter!("kv_peer_down_total").increment(1);
        }
        Some(node)
    }

    /// Closes a socket and, if it was a peer's current one, redials with backoff.
    pub(super) fn close_and_redial(&mut self, key: ConnKey) {
        let Some(node) = self.close(key) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&node) else {
            return;
        };
        let delay = peer.backoff;
        peer.backoff = self.config.next_backoff(delay);
        self.ensure_dial(node, delay);
        metrics::counter!("kv_link_reconnects_total").increment(1);
    }

    fn on_frame(&mut self, key: ConnKey, frame: Frame) -> Result<(), ProtocolError> {
        let established = self.conns.get(&key).is_some_and(|c| c.established);
        match (established, frame) {
            (false, Frame::Hello(hello)) => self.on_hello(key, hello),
            (
                true,
                Frame::Data {
                    seq,
                    topic,
                    payload,
                },
            ) => self.on_data(key, seq, topic, payload),
            (true, Frame::Ack { next_expected }) => self.on_ack(key, next_expected),
            (established, frame) => Err(ProtocolError::Unexpected {
                frame: kind(&frame),
                established,
            }),
        }
    }

    /// The peer of an established connection.
    fn peer_of(&self, key: ConnKey) -> Option<NodeId> {
        self.conns.get(&key).and_then(|c| c.peer)
    }

    fn on_data(
        &mut self,
        key: ConnKey,
        seq: u64,
        topic: Topic,
        payload: Bytes,
    ) -> Result<(), ProtocolError> {
        let Some(node) = self.peer_of(key) else {
            return Ok(());
        };
        let Some(peer) = self.peers.get_mut(&node) else {
            return Ok(());
        };
        if peer.session.receive(seq)? == Receipt::Duplicate {
            return Ok(());
        }
        if peer.session.pending_acks() >= self.config.ack_every {
            if let (Some(ack), Some(conn)) = (peer.session.take_ack(), self.conns.get(&key)) {
                conn.send(ack);
            }
        }
        self.deliver(node, topic, payload);
        Ok(())
    }

    fn on_ack(&mut self, key: ConnKey, next_expected: u64) -> Result<(), ProtocolError> {
        let Some(node) = self.peer_of(key) else {
            return Ok(());
        };
        if let Some(peer) = self.peers.get_mut(&node) {
            peer.session.ack(next_expected)?;
        }
        Ok(())
    }

    /// Learns who is on the other end, settles duplicate connections, resets the session for
    /// a new peer token, answers an inbound `Hello`, resends the unacked suffix, `PeerUp`.
    fn on_hello(&mut self, key: ConnKey, hello: Hello) -> Result<(), ProtocolError> {
        let node = hello.node;
        if node == self.me {
            return Err(ProtocolError::SelfConnection);
        }
        let Some(conn) = self.conns.get_mut(&key) else {
            return Ok(());
        };
        let inbound = conn.peer.is_none();
        if let Some(expected) = conn.peer.filter(|p| *p != node) {
            return Err(ProtocolError::WrongPeer {
                expected,
                got: node,
            });
        }
        conn.peer = Some(node);
        conn.dialer.get_or_insert(node);
        let peer = self.peers.entry(node).or_default();
        if peer.blocked {
            tracing::debug!(me = %self.me, peer = %node, "refusing blocked peer");
            self.conns.remove(&key);
            return Ok(());
        }
        if !peer.addr_explicit {
            peer.addr = Some(hello.listen);
        }
        let fresh = peer.token.is_some_and(|t| t != hello.token);
        if inbound && !self.adopt_inbound(key, node, fresh) {
            return Ok(());
        }
        self.establish(key, inbound, fresh, &hello)
    }

    /// Decides between an inbound socket and the peer's current one; false if the inbound
    /// one was closed. A changed peer token means the current socket belongs to a dead
    /// session, so the newcomer always wins then.
    fn adopt_inbound(&mut self, key: ConnKey, node: NodeId, fresh: bool) -> bool {
        let current = self.peers.get(&node).and_then(|p| p.conn);
        let Some(current) = current.filter(|c| *c != key) else {
            return true;
        };
        let current_dialer = self.conns.get(&current).and_then(|c| c.dialer);
        let keep_new =
            fresh || current_dialer.is_none_or(|d| candidate_wins(self.me, node, d, node));
        if keep_new {
            tracing::debug!(me = %self.me, peer = %node, "replacing connection");
            self.close(current);
        } else {
            tracing::debug!(me = %self.me, peer = %node, "keeping connection dialed by smaller id");
            self.conns.remove(&key);
        }
        keep_new
    }

    /// Completes the handshake on `key` for the peer that sent `hello`.
    fn establish(
        &mut self,
        key: ConnKey,
        inbound: bool,
        fresh: bool,
        hello: &Hello,
    ) -> Result<(), ProtocolError> {
        let node = hello.node;
        let Some(peer) = self.peers.get_mut(&node) else {
            return Ok(());
        };
        if fresh {
            tracing::info!(me = %self.me, peer = %node, "peer started a new session; resetting");
            peer.session.reset();
        }
        peer.token = Some(hello.token);
        let ours = Token {
            incarnation: self.incarnation,
            epoch: peer.epoch,
        };
        let resume = if hello.expected_from == Some(ours) {
            hello.next_expected
        } else {
            1
        };
        let resend = peer.session.resume_from(resume)?;
        peer.conn = Some(key);
        peer.dial = None;
        peer.backoff = Duration::ZERO;
        let was_up = std::mem::replace(&mut peer.up, true);
        let reply = inbound.then(|| self.hello(node));
        let Some(conn) = self.conns.get_mut(&key) else {
            return Ok(());
        };
        conn.established = true;
        reply.into_iter().chain(resend).for_each(|f| conn.send(f));
        if !was_up {
            tracing::info!(me = %self.me, peer = %node, "peer up");
            self.net.trigger(NetIndication::PeerUp(node));
        }
        Ok(())
    }
}

fn kind(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello(_) => "Hello",
        Frame::Data { .. } => "Data",
        Frame::Ack { .. } => "Ack",
    }
}
