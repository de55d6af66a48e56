//! The client library: one [`Client`] is one client session over the native protocol.
//!
//! A session has a fresh [`ClientId`] and numbers its commands; a command that gets no
//! answer (a lost connection, a timeout, `NotLeader` during an election) is retried at the
//! next node **with the same id**, so the replicas' session tables apply it at most once.
//! When the deadline passes, the caller learns whether the outcome is unknown (some attempt
//! may have reached a replica) or whether the command surely did not happen (no node could
//! even be connected to). `Client` implements [`KvService`], so the bench, the REPL and the
//! RESP front end run on it unchanged.

mod connection;
mod session;

use std::net::SocketAddr;
use std::time::Duration;

use kv_ports::ids::ClientId;
use kv_ports::kv::KvOp;
use tokio::sync::Mutex;

pub use connection::{CallError, Connection};

use crate::native::frame::check_sizes;
use crate::service::{KvService, Pending, ServiceError};
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
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            deadline: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_millis(500),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(500),
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

/// One client session over a list of nodes; see the module documentation.
///
/// Operations on one `Client` run one at a time (the replicas keep one outstanding command
/// per session); use several clients for concurrency.
pub struct Client {
    id: ClientId,
    session: Mutex<Session>,
}

impl Client {
    /// A session over `addrs`. Connects lazily, on the first operation and after failures, so
    /// creating a client never waits and a node that is down now is simply tried later.
    pub fn connect(
        addrs: impl IntoIterator<Item = SocketAddr>,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let addrs: Vec<SocketAddr> = addrs.into_iter().collect();
        if addrs.is_empty() {
            return Err(ClientError::NoAddresses);
        }
        let session = Session::new(addrs, config);
        Ok(Client {
            id: session.id(),
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
            self.session.lock().await.execute(op).await
        })
    }
}
