//! The client library: one [`Client`] is one client session over the native protocol.
//!
//! **Routing.** A client starts from seed addresses: data nodes or the coordinator. On its
//! first command it asks them for the slot map ([`ClientFrame::GetMap`]); with a formed map it
//! sends each command straight to the leader of the key's group (key → slot → group → cached
//! leader, the overlay's [`Router`]), over one kept-open connection per node. `NotLeader`
//! with a hint redirects at once; a lost connection or a timeout marks the node unreachable
//! and moves to the next member. The map is asked for again only when routing fails (a hint
//! naming a node outside the group, a whole group unreachable, a sealed configuration) or
//! every [`ClientConfig::map_refresh`] while commands keep failing, never per command.
//! Without a formed map (a single-group endpoint, a cluster still forming) the client falls
//! back to trying the seeds in turn; a seed that refuses commands (the coordinator keeps no
//! data) is asked for maps only.
//!
//! **At most once, honestly.** A session has a fresh [`ClientId`] and numbers its commands; a
//! retry, wherever it goes, reuses the command's id, so the replicas' session tables apply it
//! at most once. When the deadline passes, the caller learns whether the outcome is unknown
//! (some attempt may have reached a replica) or whether the command surely did not happen (no
//! data node could even be connected to).
//!
//! `Client` implements [`KvService`], so the bench, the REPL and the RESP front end run on it
//! unchanged, and [`ReplBackend`](crate::repl::ReplBackend), whose `status` is
//! [`Client::cluster_status`] rendered.
//!
//! [`ClientFrame::GetMap`]: crate::native::ClientFrame::GetMap
//! [`Router`]: kv_components::overlay::core::Router

mod admin;
mod connection;
mod maps;
mod pool;
mod probe;
mod routing;
mod session;
mod status;

use std::net::SocketAddr;
use std::time::Duration;

use kv_ports::ids::ClientId;
use kv_ports::kv::KvOp;
use tokio::sync::Mutex;

pub use admin::{resolve_node, AdminError, ADMIN_TIMEOUT};
pub use connection::{CallError, Connection};
pub use status::{short_id, ClusterStatus, Forming, GroupView, NodeRef, Reconfiguring};

use crate::native::frame::check_sizes;
use crate::service::{KvService, Pending, ServiceError};
use maps::MapCell;
use session::Session;

/// Timeouts and backoff of a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// How long one operation may take in all, retries included, before its outcome is
    /// reported as unknown (or unavailable).
    pub deadline: Duration,
    /// How long one attempt at one node may take before the next node is tried.
    pub attempt_timeout: Duration,
    /// How long connecting to one node may take.
    pub connect_timeout: Duration,
    /// The first pause between attempts; it doubles up to `backoff_max`, giving an election
    /// time to finish without hammering the nodes.
    pub backoff_initial: Duration,
    /// The longest pause between attempts.
    pub backoff_max: Duration,
    /// While commands keep failing, how often the slot map is asked for again even when no
    /// failure pointed at a stale map (a node may have moved without anyone saying so).
    pub map_refresh: Duration,
    /// How long each node may take to answer a status question in
    /// [`Client::cluster_status`] (and a map question outside a command); a node slower than
    /// this is shown unreachable rather than holding up the whole report.
    pub status_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            deadline: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_millis(500),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(500),
            map_refresh: Duration::from_secs(2),
            status_timeout: Duration::from_millis(500),
        }
    }
}

/// Why a client could not be created.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No node address was given, so there is nowhere to send.
    #[error("no node addresses given")]
    NoAddresses,
}

/// One client session over a cluster reached through seed addresses; see the module
/// documentation.
///
/// Operations on one `Client` run one at a time (the replicas keep one outstanding command
/// per session); use several clients for concurrency. [`Client::map`] and
/// [`Client::cluster_status`] do not wait for a running operation.
pub struct Client {
    id: ClientId,
    seeds: Vec<SocketAddr>,
    config: ClientConfig,
    /// The newest map learned by the session or by a status query, shared by both.
    shared: MapCell,
    session: Mutex<Session>,
}

impl Client {
    /// A session over the cluster reached through `addrs` (data nodes or the coordinator).
    /// Connects lazily, on the first operation and after failures, so creating a client never
    /// waits and a node that is down now is simply tried later.
    pub fn connect(
        addrs: impl IntoIterator<Item = SocketAddr>,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let addrs: Vec<SocketAddr> = addrs.into_iter().collect();
        if addrs.is_empty() {
            return Err(ClientError::NoAddresses);
        }
        let session = Session::new(addrs.clone(), config.clone());
        Ok(Client {
            id: session.id(),
            seeds: addrs,
            config,
            shared: MapCell::default(),
            session: Mutex::new(session),
        })
    }

    /// This session's id, as the replicas' session tables know it.
    pub fn id(&self) -> ClientId {
        self.id
    }
}

impl KvService for Client {
    fn execute(&self, op: KvOp) -> Pending<'_> {
        Box::pin(async move {
            check_sizes(&op).map_err(|e| ServiceError::Rejected(e.to_string()))?;
            self.session.lock().await.execute(op, &self.shared).await
        })
    }
}
