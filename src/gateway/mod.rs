//! The in-process gateway: a [`KvService`] backed by a node's own [`KvPort`](kv_ports::kv::KvPort).
//!
//! A front end on a data node (RESP now, HTTP later) could reach the cluster through the
//! native client like any remote program, but that costs a TCP hop, an encode and a decode per
//! command to talk to a router in the same process. The gateway instead hands commands to the
//! node's router (the overlay, or a replica directly) through the port, and keeps the client
//! side of the contract the native [`Client`](crate::client::Client) keeps:
//!
//! * **Sessions.** Every command runs under a [`RequestId`](kv_ports::kv::RequestId) of a
//!   session leased from a pool. The replicas keep one outstanding command per client id, so
//!   concurrent commands take distinct sessions; sessions are reused afterwards so the
//!   replicas' session tables stay as small as the peak concurrency.
//! * **Retries.** `NotLeader`, `Sealed` and attempts that get no answer in time are retried
//!   with the *same* request id, with doubling backoff, until an overall deadline; the session
//!   tables apply such a command at most once.
//! * **Honest failures.** At the deadline, a command that reached the router ends
//!   [`ServiceError::Unknown`] (it may still take effect); one that never left the gateway
//!   (no router connected) ends [`ServiceError::Unavailable`]. Oversized keys and values are
//!   [`ServiceError::Rejected`] before anything is sent.
//!
//! ```text
//!   RESP / HTTP connections ──execute──▶ GatewayService ──Submit (tell)──▶ Gateway actor
//!                                             ▲                              │ KvPort
//!                                             └──── oneshot ◀── KvReply ─── router
//! ```
//!
//! Wiring: [`Gateway::start`] spawns the component and returns the service; connect the
//! component's `KvPort` to the router with
//! `kv_ports::component::connect::<KvPort, _, _>(&router, &gateway)`.

mod component;
mod pool;

use std::sync::Arc;
use std::time::Duration;

use kameo::actor::ActorRef;
use kv_ports::kv::{KvCommand, KvError, KvOp, KvResult};
use tokio::sync::oneshot;
use tokio::time::Instant;

pub use component::Gateway;

use crate::native::frame::check_sizes;
use crate::service::{KvService, Pending, ServiceError};
use component::{Outcome, Submit};
use pool::SessionPool;

/// Timeouts and backoff of a [`GatewayService`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// How long one operation may take in all, retries included, before its outcome is
    /// reported unknown (or unavailable, if it never reached a router).
    pub deadline: Duration,
    /// How long one attempt may wait for the router's answer before the command is submitted
    /// again (a lost message between groups must not stall the caller until the deadline).
    pub attempt_timeout: Duration,
    /// The first pause before a retry; it doubles up to `backoff_max`, giving an election
    /// time to finish without flooding the router with resubmissions.
    pub backoff_initial: Duration,
    /// The longest pause before a retry.
    pub backoff_max: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            deadline: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
        }
    }
}

impl Gateway {
    /// Spawns the gateway component (with an unbounded mailbox, like every component) and
    /// returns it with the [`GatewayService`] that front ends call.
    ///
    /// Not async, but it must run inside a Tokio runtime (the actor is a task). Connect the
    /// component's [`KvPort`](kv_ports::kv::KvPort) to the router next; until then every
    /// operation is retried until its deadline and ends `Unavailable`.
    ///
    /// The service holds the component, so it runs as long as some front end holds the
    /// service; stopping it explicitly (`stop_gracefully`) makes later operations fail
    /// `Unavailable` and in-flight ones `Unknown`.
    pub fn start(config: GatewayConfig) -> (ActorRef<Gateway>, Arc<GatewayService>) {
        let gateway = kv_ports::component::spawn::<Gateway>(Gateway::default());
        let service = GatewayService {
            gateway: gateway.clone(),
            sessions: SessionPool::default(),
            config,
        };
        (gateway, Arc::new(service))
    }
}

/// The [`KvService`] side of the gateway: runs each operation through the [`Gateway`]
/// component under a session of its own, with retries; see the [module documentation](self).
///
/// Any number of operations may run at once (RESP connections pipeline); each takes its own
/// session for the duration.
pub struct GatewayService {
    gateway: ActorRef<Gateway>,
    sessions: SessionPool,
    config: GatewayConfig,
}

impl GatewayService {
    /// How many sessions are idle in the pool. The pool grows to the highest number of
    /// operations that ran at once and no further, so this also bounds how many client ids
    /// the gateway has introduced to the replicas' session tables.
    pub fn idle_sessions(&self) -> usize {
        self.sessions.idle()
    }

    /// The timeouts and backoff in use.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Runs `op` as a fresh command of a leased session, resubmitting it under the same id
    /// until it is answered or the deadline passes.
    async fn run(&self, op: KvOp) -> Result<KvResult, ServiceError> {
        check_sizes(&op).map_err(|e| ServiceError::Rejected(e.to_string()))?;
        // Held until the end (or until this future is dropped), then back in the pool.
        let lease = self.sessions.lease();
        let cmd = KvCommand {
            id: lease.request_id(),
            op,
        };
        let deadline = Instant::now() + self.config.deadline;
        let mut backoff = self.config.backoff_initial;
        // Whether some attempt may have reached a replica; decides Unknown vs Unavailable.
        let mut handed = false;
        let mut last = String::from("deadline too short for any attempt");
        while Instant::now() < deadline {
            let limit = self
                .config
                .attempt_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let (reply, answer) = oneshot::channel();
            let submit = Submit {
                cmd: cmd.clone(),
                reply,
            };
            if self.gateway.tell(submit).try_send().is_err() {
                last = String::from("the gateway component has stopped");
                break;
            }
            last = match tokio::time::timeout(limit, answer).await {
                Ok(Ok(Outcome::Answered(result))) => {
                    handed = true;
                    match judge(result) {
                        Ok(done) => return done,
                        Err(why) => why,
                    }
                }
                Ok(Ok(Outcome::NotConnected)) => String::from("no router connected"),
                Ok(Err(_)) => {
                    // The component dropped the request: it stopped, perhaps after
                    // triggering it.
                    handed = true;
                    String::from("the gateway component dropped the request")
                }
                Err(_) => {
                    // The command may have been triggered and be on its way.
                    handed = true;
                    format!("no answer within {limit:?}")
                }
            };
            tracing::debug!(id = ?cmd.id, reason = %last, "gateway retrying");
            let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
        Err(if handed {
            ServiceError::Unknown(last)
        } else {
            ServiceError::Unavailable(last)
        })
    }
}

impl KvService for GatewayService {
    fn execute(&self, op: KvOp) -> Pending<'_> {
        Box::pin(async move {
            let (kind, started) = (crate::metrics::OpKind::of(&op), std::time::Instant::now());
            let result = self.run(op).await;
            let outcome = crate::metrics::Outcome::of_service(&result);
            crate::metrics::record_op(
                crate::metrics::Frontend::Gateway,
                kind,
                outcome,
                started.elapsed(),
            );
            result
        })
    }
}

/// Turns the router's answer into the caller's result (`Ok`) or a reason to retry (`Err`).
fn judge(result: Result<KvResult, KvError>) -> Result<Result<KvResult, ServiceError>, String> {
    match result {
        Ok(result) => Ok(Ok(result)),
        // The replicas answered a newer command of this session; this one's answer is gone.
        // The pool never runs two commands of a session at once, so this means a stale
        // duplicate, and whether it took effect cannot be told.
        Err(KvError::Superseded) => Ok(Err(ServiceError::Unknown(
            "answer lost: superseded by a newer command of this session".into(),
        ))),
        Err(e @ (KvError::NotLeader { .. } | KvError::Sealed { .. } | KvError::Moved { .. })) => {
            Err(e.to_string())
        }
    }
}
