//! The state of one client session and its retry loop.
//!
//! Each command is tried at the target [`Routing`] picks. A failure teaches the routing
//! something (a leader hint, an unreachable node, a seed that keeps no data) and the command
//! is retried under the same id: at once if the new target has not been tried since the last
//! pause, else after a doubling backoff, so an election in progress is given time instead of
//! being hammered, while a redirect or a fail-over to a fresh node costs no wait.

use std::net::SocketAddr;
use std::time::Duration;

use kv_ports::ids::{ClientId, NodeId};
use kv_ports::kv::{KvCommand, KvError, KvOp, KvResult, RequestId};
use kv_ports::membership::{Epoch, SlotMap};
use tokio::time::Instant;

use super::connection::CallError;
use super::maps::{self, MapCell};
use super::pool::Pool;
use super::routing::{Routing, Target};
use super::ClientConfig;
use crate::service::ServiceError;

/// The shortest time between two map refreshes asked for by a routing failure, so a burst of
/// failures costs one round of map questions, not one each.
const FORCED_REFRESH_GAP: Duration = Duration::from_millis(100);

/// Why one attempt had no final answer.
enum Failure {
    /// Nothing could be sent (connecting failed).
    Unreachable(String),
    /// The command was sent but the connection failed, or no answer came in time.
    Lost(String),
    /// The node is not the group's leader.
    NotLeader(Option<NodeId>),
    /// The group's configuration is sealed; a newer map names who serves the key.
    Sealed(u32),
    /// The key's slot moved to another group; a map of at least this epoch names it.
    Moved(Epoch),
    /// The seed refused the command: it keeps no data (the coordinator).
    NoData(String),
}

/// When the session last asked for a map and whether a routing failure wants a new one.
#[derive(Default)]
struct RefreshClock {
    last: Option<Instant>,
    wanted: bool,
}

impl RefreshClock {
    /// Whether to ask now: after a routing failure asked for it (at most every
    /// [`FORCED_REFRESH_GAP`]), or every `period` while commands keep failing.
    fn due(&self, now: Instant, period: Duration) -> bool {
        match self.last {
            None => true,
            Some(t) => {
                let since = now.saturating_duration_since(t);
                (self.wanted && since >= FORCED_REFRESH_GAP) || since >= period
            }
        }
    }
}

/// One session: its id, its sequence counter, where it sends and its open connections.
pub(crate) struct Session {
    id: ClientId,
    seq: u64,
    routing: Routing,
    pool: Pool,
    clock: RefreshClock,
    /// Addresses tried for the current command since the last pause (kept to reuse its
    /// allocation).
    tried: Vec<SocketAddr>,
    config: ClientConfig,
}

impl Session {
    pub(crate) fn new(seeds: Vec<SocketAddr>, config: ClientConfig) -> Self {
        Session {
            id: ClientId::random(),
            seq: 0,
            routing: Routing::new(seeds),
            pool: Pool::default(),
            clock: RefreshClock::default(),
            tried: Vec::new(),
            config,
        }
    }

    pub(crate) fn id(&self) -> ClientId {
        self.id
    }

    /// Runs `op` as the session's next command, retrying it under the same id until an
    /// answer or the deadline. `shared` is the client's map cell: maps learned elsewhere are
    /// adopted from it, maps learned here are published to it.
    pub(crate) async fn execute(
        &mut self,
        op: KvOp,
        shared: &MapCell,
    ) -> Result<KvResult, ServiceError> {
        let Some(key) = op.key().cloned() else {
            return Err(ServiceError::Rejected(
                "slot moves are the coordinator's, not a client's".into(),
            ));
        };
        self.seq += 1;
        let cmd = KvCommand {
            id: RequestId {
                client: self.id,
                seq: self.seq,
            },
            op,
        };
        let deadline = Instant::now() + self.config.deadline;
        self.adopt(shared);
        if self.clock.last.is_none() && !self.routing.map().is_formed() {
            self.refresh(shared, deadline).await;
        }
        let mut backoff = self.config.backoff_initial;
        self.tried.clear();
        let mut reached = false;
        let mut last = String::from("deadline too short for any attempt");
        while Instant::now() < deadline {
            let target = match self.routing.target(&key) {
                Some(t) if !self.tried.contains(&t.addr()) => t,
                found => {
                    if found.is_none() {
                        last = "no known endpoint takes commands (no slot map yet)".into();
                        self.clock.wanted = true;
                    }
                    pause(backoff, deadline).await;
                    backoff = (backoff * 2).min(self.config.backoff_max);
                    self.tried.clear();
                    self.maybe_refresh(shared, deadline).await;
                    continue;
                }
            };
            self.tried.push(target.addr());
            let left = deadline.saturating_duration_since(Instant::now());
            let limit = self.config.attempt_timeout.min(left);
            let mut sent = false;
            let outcome = tokio::time::timeout(limit, self.attempt(&cmd, &target, &mut sent)).await;
            reached |= sent;
            let failure = match outcome {
                Ok(Ok(result)) => {
                    if !matches!(result, Err(ServiceError::Rejected(_))) {
                        self.routing.on_success(&target);
                    }
                    return result;
                }
                Ok(Err(failure)) => failure,
                Err(_) => {
                    self.pool.drop_conn(target.addr());
                    Failure::Lost(format!("no answer from {} within {limit:?}", target.addr()))
                }
            };
            last = self.learn(&target, failure);
            tracing::debug!(id = ?cmd.id, reason = %last, "retrying");
            self.maybe_refresh(shared, deadline).await;
        }
        Err(if reached {
            ServiceError::Unknown(last)
        } else {
            ServiceError::Unavailable(last)
        })
    }

    /// Feeds a failure to the routing; returns its description.
    fn learn(&mut self, target: &Target, failure: Failure) -> String {
        let addr = target.addr();
        match failure {
            Failure::Unreachable(why) | Failure::Lost(why) => {
                if self.routing.on_unreachable(target) {
                    self.clock.wanted = true;
                }
                why
            }
            Failure::NotLeader(hint) => {
                if self.routing.on_not_leader(target, hint) {
                    self.clock.wanted = true;
                }
                KvError::NotLeader { hint }.to_string()
            }
            Failure::Sealed(next_config) => {
                self.routing.on_sealed(target);
                self.clock.wanted = true;
                KvError::Sealed { next_config }.to_string()
            }
            Failure::Moved(epoch) => {
                self.routing.on_sealed(target);
                self.clock.wanted = true;
                KvError::Moved { epoch }.to_string()
            }
            Failure::NoData(message) => {
                self.routing.on_no_data(addr);
                self.pool.drop_conn(addr);
                self.clock.wanted = true;
                format!("{addr}: {message}")
            }
        }
    }

    /// One try at `target`; `sent` becomes true once the command may have reached a replica.
    async fn attempt(
        &mut self,
        cmd: &KvCommand,
        target: &Target,
        sent: &mut bool,
    ) -> Result<Result<KvResult, ServiceError>, Failure> {
        let addr = target.addr();
        let conn = match self.pool.get(addr, self.config.connect_timeout).await {
            Ok(conn) => conn,
            Err(e) => return Err(Failure::Unreachable(format!("{addr}: {e}"))),
        };
        *sent = true;
        match conn.call(cmd).await {
            Ok(Ok(result)) => Ok(Ok(result)),
            Ok(Err(KvError::Superseded)) => Ok(Err(ServiceError::Unknown(
                "answer lost: superseded by a newer command of this session".into(),
            ))),
            Ok(Err(KvError::NotLeader { hint })) => Err(Failure::NotLeader(hint)),
            Ok(Err(KvError::Sealed { next_config })) => Err(Failure::Sealed(next_config)),
            Ok(Err(KvError::Moved { epoch })) => Err(Failure::Moved(epoch)),
            // Sizes were checked before sending, so a seed refusing a command is one that keeps
            // no data; a map member's refusal is its verdict on the command.
            Err(CallError::Rejected(message)) => match target {
                Target::Seed { .. } => {
                    *sent = false;
                    Err(Failure::NoData(message))
                }
                Target::Member { .. } => Ok(Err(ServiceError::Rejected(message))),
            },
            Err(e) => {
                self.pool.drop_conn(addr);
                Err(Failure::Lost(format!("{addr}: {e}")))
            }
        }
    }

    async fn maybe_refresh(&mut self, shared: &MapCell, deadline: Instant) {
        self.adopt(shared);
        if self.clock.due(Instant::now(), self.config.map_refresh) {
            self.refresh(shared, deadline).await;
        }
    }

    /// Asks the seeds and some known nodes for a newer map, within the connect timeout and
    /// the deadline.
    async fn refresh(&mut self, shared: &MapCell, deadline: Instant) {
        let now = Instant::now();
        self.clock = RefreshClock {
            last: Some(now),
            wanted: false,
        };
        let limit = self
            .config
            .connect_timeout
            .min(deadline.saturating_duration_since(now));
        if limit.is_zero() {
            return;
        }
        let map = self.routing.map();
        let held = map.is_formed().then_some(map);
        let sources = maps::sources(self.routing.seeds(), held);
        let fetched = maps::fetch_newest(&sources, self.routing.epoch(), limit).await;
        tracing::debug!(
            answered = fetched.answered,
            epoch = ?fetched.map.as_ref().map(|m| m.epoch),
            errors = ?fetched.errors,
            "slot map refresh"
        );
        if let Some(map) = fetched.map {
            shared.offer(&map);
            self.install(map);
        }
    }

    /// Takes a newer map the client learned outside this session.
    fn adopt(&mut self, shared: &MapCell) {
        if shared.epoch() > self.routing.epoch() {
            if let Some(map) = shared.get() {
                self.install(map);
            }
        }
    }

    fn install(&mut self, map: SlotMap) {
        if self.routing.install(map) {
            let map = self.routing.map();
            let seeds = self.routing.seeds();
            tracing::debug!(epoch = %map.epoch, "routing by a new slot map");
            self.pool
                .retain(|a| seeds.contains(a) || map.nodes.iter().any(|n| n.client == *a));
        }
    }
}

/// Sleeps `backoff`, or until the deadline if that comes first.
async fn pause(backoff: Duration, deadline: Instant) {
    let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
    tokio::time::sleep(pause).await;
}
