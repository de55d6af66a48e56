//! The state of one client session and its retry loop.

use std::net::SocketAddr;

use kv_ports::ids::ClientId;
use kv_ports::kv::{KvCommand, KvError, KvOp, KvResult, RequestId};
use tokio::time::Instant;

use super::connection::{CallError, Connection};
use super::ClientConfig;
use crate::service::ServiceError;

/// What one attempt at one node came to.
enum Attempt {
    /// A final answer for the caller.
    Done(Result<KvResult, ServiceError>),
    /// Try again at the next node.
    Retry(String),
}

/// One session: its id, its sequence counter and where it currently sends.
pub(crate) struct Session {
    id: ClientId,
    seq: u64,
    addrs: Vec<SocketAddr>,
    current: usize,
    conn: Option<Connection>,
    config: ClientConfig,
}

impl Session {
    pub(crate) fn new(addrs: Vec<SocketAddr>, config: ClientConfig) -> Self {
        Session {
            id: ClientId::random(),
            seq: 0,
            addrs,
            current: 0,
            conn: None,
            config,
        }
    }

    pub(crate) fn id(&self) -> ClientId {
        self.id
    }

    /// Runs `op` as the session's next command, retrying it under the same id until an
    /// answer or the deadline.
    pub(crate) async fn execute(&mut self, op: KvOp) -> Result<KvResult, ServiceError> {
        self.seq += 1;
        let cmd = KvCommand {
            id: RequestId {
                client: self.id,
                seq: self.seq,
            },
            op,
        };
        let deadline = Instant::now() + self.config.deadline;
        let mut backoff = self.config.backoff_initial;
        let mut sent = false;
        let mut last = String::from("deadline too short for any attempt");
        while Instant::now() < deadline {
            let limit = self.config.attempt_timeout.min(deadline - Instant::now());
            let outcome = tokio::time::timeout(limit, self.attempt(&cmd, &mut sent)).await;
            last = match outcome {
                Ok(Attempt::Done(result)) => return result,
                Ok(Attempt::Retry(why)) => why,
                Err(_) => {
                    self.conn = None;
                    format!("no answer from {} within {limit:?}", self.addr())
                }
            };
            tracing::debug!(id = ?cmd.id, reason = %last, "retrying at the next node");
            self.current = (self.current + 1) % self.addrs.len();
            let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
        Err(if sent {
            ServiceError::Unknown(last)
        } else {
            ServiceError::Unavailable(last)
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addrs[self.current]
    }

    /// One try at the current node; `sent` becomes true once the command may have reached it.
    async fn attempt(&mut self, cmd: &KvCommand, sent: &mut bool) -> Attempt {
        let addr = self.addr();
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => match Connection::open(addr, self.config.connect_timeout).await {
                Ok(conn) => conn,
                Err(e) => return Attempt::Retry(format!("{addr}: {e}")),
            },
        };
        let conn = self.conn.insert(conn);
        *sent = true;
        match conn.call(cmd).await {
            Ok(result) => {
                let attempt = judge(result);
                if matches!(attempt, Attempt::Retry(_)) {
                    // Another node may know a leader sooner; a fresh connection is cheap.
                    self.conn = None;
                }
                attempt
            }
            Err(CallError::Rejected(message)) => {
                Attempt::Done(Err(ServiceError::Rejected(message)))
            }
            Err(e) => {
                self.conn = None;
                Attempt::Retry(format!("{addr}: {e}"))
            }
        }
    }
}

/// Turns the group's answer into a final result or a reason to retry elsewhere.
fn judge(result: Result<KvResult, KvError>) -> Attempt {
    match result {
        Ok(result) => Attempt::Done(Ok(result)),
        Err(KvError::Superseded) => Attempt::Done(Err(ServiceError::Unknown(
            "answer lost: superseded by a newer command of this session".into(),
        ))),
        Err(e @ (KvError::NotLeader { .. } | KvError::Sealed { .. })) => {
            Attempt::Retry(e.to_string())
        }
    }
}
