//! [`ClientEndpoint`]: the node-side end of the native protocol.
//!
//! It requires [`KvPort`] (the local replica, or later the overlay router: both provide it)
//! and owns a TCP listener, or, on a port shared with other protocols, is handed the client
//! connections another task accepted ([`AdoptClient`]). Connection tasks decode requests and
//! hand them to the actor, which triggers them on its required port and remembers which
//! connection waits for which client's command; each [`KvReply`] goes back to that
//! connection's writer. Like the replica, it keeps one outstanding command per client: a newer
//! one (or a retry on another connection) replaces the older. A malformed frame closes only
//! its own connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use kameo::actor::{ActorRef, WeakActorRef};
use kameo::error::ActorStopReason;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::component::Requires;
use kv_ports::ids::{ClientId, NodeId};
use kv_ports::kv::{KvCommand, KvError, KvPort, KvReply};
use kv_ports::membership::{Epoch, SlotMap};
use kv_ports::port::{Ind, RequiredPort};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::directive::{AdminAnswer, AdminRequest};
use super::frame::{check_sizes, ServerFrame};
use super::status::{NodeStatus, StatusReport};
use super::tasks;
use crate::metrics::{self, Frontend, OpKind, Outcome};
use kv_components::task::TaskGuard;

/// How the endpoint serves clients.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Most client connections served at once; further ones wait in the accept backlog, so
    /// a flood of clients cannot exhaust the node's sockets and memory.
    pub max_connections: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            max_connections: 1024,
        }
    }
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Binding or inspecting the listening socket failed.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// What a [`ClientEndpoint`] starts from.
pub struct EndpointArgs {
    /// An already bound listener (see [`ClientEndpoint::start`] to bind one), or `None` when
    /// another task owns the port and hands client connections over with [`AdoptClient`]
    /// (see [`ClientEndpoint::start_shared`]).
    pub listener: Option<TcpListener>,
    /// Tuning.
    pub config: EndpointConfig,
    /// Answers map and status questions about the node.
    pub view: Arc<dyn NodeView>,
}

/// What the endpoint answers about the node itself, outside the `KvPort`: the slot map it
/// routes by, its status, and operators' requests it relays. All are read by connection
/// tasks, never by the endpoint actor, so a slow status query cannot hold up commands.
pub trait NodeView: Send + Sync + 'static {
    /// The node's map, if it is newer than `have`.
    fn map(&self, have: Epoch) -> Option<SlotMap>;
    /// The node's status.
    fn status(&self) -> BoxFuture<'static, StatusReport>;
    /// An operator's request: a node with a coordinator relays it there; by default it is
    /// refused.
    fn admin(&self, request: AdminRequest) -> BoxFuture<'static, AdminAnswer> {
        let _ = request;
        Box::pin(async { AdminAnswer::Refused("ask the coordinator".into()) })
    }
}

/// The view of an endpoint serving one group without a slot map (tests, single-group
/// set-ups): no map, and a status naming no groups.
pub struct NoMapView;

impl NodeView for NoMapView {
    fn map(&self, _: Epoch) -> Option<SlotMap> {
        None
    }

    fn status(&self) -> BoxFuture<'static, StatusReport> {
        Box::pin(async {
            StatusReport::Node(NodeStatus {
                id: NodeId(0),
                epoch: Epoch(0),
                groups: Vec::new(),
                suspected: Vec::new(),
            })
        })
    }
}

/// Names one client connection within an endpoint.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey(u64);

/// One served connection: its writer's queue and the tasks and permit it owns.
struct Conn {
    out: UnboundedSender<ServerFrame>,
    _tasks: [TaskGuard; 2],
    _permit: OwnedSemaphorePermit,
}

/// The native client endpoint component; see the module documentation.
pub struct ClientEndpoint {
    kv: RequiredPort<KvPort>,
    conns: HashMap<ConnKey, Conn>,
    /// Each client's outstanding command: its seq and the connection waiting for it (and, for
    /// the metrics, its kind and when it arrived).
    waiting: HashMap<ClientId, (u64, ConnKey, Instant, OpKind)>,
    next_key: u64,
    view: Arc<dyn NodeView>,
    /// One permit per served connection, shared with the listener task if there is one.
    limit: Arc<Semaphore>,
    myself: WeakActorRef<ClientEndpoint>,
    _listener: Option<TaskGuard>,
}

impl ClientEndpoint {
    /// Binds `listen` (port 0 picks a free port), spawns the endpoint with an unbounded
    /// mailbox and returns it with the address it listens on. Connect its [`KvPort`] next;
    /// until then every request is answered `NotLeader`, which clients retry elsewhere.
    pub async fn start(
        listen: SocketAddr,
        config: EndpointConfig,
    ) -> Result<(ActorRef<ClientEndpoint>, SocketAddr), EndpointError> {
        Self::start_with_view(listen, config, Arc::new(NoMapView)).await
    }

    /// [`start`](Self::start), answering map and status questions from `view`.
    pub async fn start_with_view(
        listen: SocketAddr,
        config: EndpointConfig,
        view: Arc<dyn NodeView>,
    ) -> Result<(ActorRef<ClientEndpoint>, SocketAddr), EndpointError> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let args = EndpointArgs {
            listener: Some(listener),
            config,
            view,
        };
        let endpoint = kv_ports::component::spawn::<ClientEndpoint>(args);
        Ok((endpoint, addr))
    }

    /// Spawns an endpoint without a listener of its own, for a port shared with other
    /// protocols: whoever accepts on it hands client connections over with [`AdoptClient`].
    pub fn start_shared(config: EndpointConfig, view: Arc<dyn NodeView>) -> ActorRef<Self> {
        let args = EndpointArgs {
            listener: None,
            config,
            view,
        };
        kv_ports::component::spawn::<ClientEndpoint>(args)
    }
}

impl Actor for ClientEndpoint {
    type Args = EndpointArgs;
    type Error = EndpointError;

    async fn on_start(args: EndpointArgs, me: ActorRef<Self>) -> Result<Self, EndpointError> {
        let myself = me.downgrade();
        let limit = Arc::new(Semaphore::new(args.config.max_connections.max(1)));
        let listener = match args.listener {
            Some(listener) => {
                let listen = listener.local_addr()?;
                tracing::info!(%listen, "native client endpoint listening");
                Some(tasks::listen(listener, limit.clone(), myself.clone()))
            }
            None => {
                tracing::info!("native client endpoint on a shared port");
                None
            }
        };
        Ok(ClientEndpoint {
            kv: RequiredPort::default(),
            conns: HashMap::new(),
            waiting: HashMap::new(),
            next_key: 0,
            view: args.view,
            limit,
            _listener: listener,
            myself,
        })
    }

    async fn on_stop(
        &mut self,
        _: WeakActorRef<Self>,
        reason: ActorStopReason,
    ) -> Result<(), EndpointError> {
        tracing::debug!(?reason, "native client endpoint stopping");
        self.conns.clear();
        Ok(())
    }
}

kv_ports::component!(ClientEndpoint);

impl Requires<KvPort> for ClientEndpoint {
    fn required(&mut self) -> &mut RequiredPort<KvPort> {
        &mut self.kv
    }
}

/// From the listener: a client connected.
pub(crate) struct Accepted {
    pub stream: TcpStream,
    pub from: SocketAddr,
    pub permit: OwnedSemaphorePermit,
}

/// Another acceptor's client connection, handed to an endpoint started with
/// [`ClientEndpoint::start_shared`], nothing read from it. It is served like one the endpoint
/// accepted itself, under the same connection limit: with every permit taken it is closed at
/// once (the acceptor must not wait on the endpoint, and the client retries elsewhere).
pub struct AdoptClient {
    /// The accepted socket.
    pub stream: TcpStream,
    /// The remote address (for logs).
    pub from: SocketAddr,
}

/// From a reader: a decoded request.
pub(crate) struct Inbound {
    pub conn: ConnKey,
    pub cmd: KvCommand,
}

/// From a reader or writer: the connection is finished.
pub(crate) struct Closed {
    pub conn: ConnKey,
}

impl Message<Accepted> for ClientEndpoint {
    type Reply = ();

    async fn handle(&mut self, msg: Accepted, _: &mut Context<Self, ()>) {
        self.serve(msg.stream, msg.from, msg.permit);
    }
}

impl Message<AdoptClient> for ClientEndpoint {
    type Reply = ();

    async fn handle(&mut self, msg: AdoptClient, _: &mut Context<Self, ()>) {
        match self.limit.clone().try_acquire_owned() {
            Ok(permit) => self.serve(msg.stream, msg.from, permit),
            Err(_) => tracing::warn!(from = %msg.from, "too many clients; connection closed"),
        }
    }
}

impl ClientEndpoint {
    /// Starts a connection's reader and writer; the permit is returned when it closes.
    fn serve(&mut self, stream: TcpStream, from: SocketAddr, permit: OwnedSemaphorePermit) {
        let _ = stream.set_nodelay(true);
        self.next_key += 1;
        let key = ConnKey(self.next_key);
        tracing::debug!(conn = ?key, %from, "client connected");
        let (reader, writer) = stream.into_split();
        let (out, queue) = mpsc::unbounded_channel();
        let tasks = [
            tasks::read(
                reader,
                key,
                out.clone(),
                self.myself.clone(),
                self.view.clone(),
            ),
            tasks::write(writer, key, queue, self.myself.clone()),
        ];
        let conn = Conn {
            out,
            _tasks: tasks,
            _permit: permit,
        };
        self.conns.insert(key, conn);
    }
}

impl Message<Inbound> for ClientEndpoint {
    type Reply = ();

    async fn handle(&mut self, msg: Inbound, _: &mut Context<Self, ()>) {
        let Inbound { conn, cmd } = msg;
        let id = cmd.id;
        if !self.conns.contains_key(&conn) {
            return;
        }
        let (kind, started) = (OpKind::of(&cmd.op), Instant::now());
        if let Err(e) = check_sizes(&cmd.op) {
            metrics::record_op(Frontend::Native, kind, Outcome::Rejected, started.elapsed());
            let message = e.to_string();
            self.send(conn, ServerFrame::Rejected { id, message });
            return;
        }
        self.waiting
            .insert(id.client, (id.seq, conn, started, kind));
        if !self.kv.trigger(cmd) {
            self.waiting.remove(&id.client);
            metrics::record_op(
                Frontend::Native,
                kind,
                Outcome::NotLeader,
                started.elapsed(),
            );
            let result = Err(KvError::NotLeader { hint: None });
            self.send(conn, ServerFrame::Reply { id, result });
        }
    }
}

impl Message<Closed> for ClientEndpoint {
    type Reply = ();

    async fn handle(&mut self, msg: Closed, _: &mut Context<Self, ()>) {
        if self.conns.remove(&msg.conn).is_some() {
            tracing::debug!(conn = ?msg.conn, "client disconnected");
        }
        self.waiting.retain(|_, (_, conn, ..)| *conn != msg.conn);
    }
}

impl Message<Ind<KvPort>> for ClientEndpoint {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<KvPort>, _: &mut Context<Self, ()>) {
        let KvReply { id, result } = ind.event;
        let Some(&(seq, conn, started, kind)) = self.waiting.get(&id.client) else {
            return;
        };
        if seq == id.seq {
            self.waiting.remove(&id.client);
            let outcome = Outcome::of_reply(&result);
            metrics::record_op(Frontend::Native, kind, outcome, started.elapsed());
            self.send(conn, ServerFrame::Reply { id, result });
        }
    }
}

impl ClientEndpoint {
    /// Queues `frame` for the connection's writer; a closed connection just drops it (the
    /// client retries elsewhere with the same request id).
    fn send(&self, conn: ConnKey, frame: ServerFrame) {
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.out.send(frame);
        }
    }
}
