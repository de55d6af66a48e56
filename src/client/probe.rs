//! What a [`Client`] can tell about the cluster rather than a key: the slot map and the
//! cluster status, and the REPL backend built on them.
//!
//! These run beside the session (they never take its lock), over short-lived connections, so
//! `status` answers promptly even while a command is retrying.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures::future::join_all;
use kv_ports::membership::SlotMap;

use super::admin::resolve_node;
use super::connection::{CallError, Connection};
use super::maps;
use super::status::{ClusterStatus, Forming};
use super::Client;
use crate::native::{AdminAnswer, AdminRequest, StatusReport};
use crate::repl::{ReplBackend, StatusPending};
use crate::service::ServiceError;

impl Client {
    /// The slot map this client routes by; when it knows none yet, asks the seeds (and stops
    /// at `None` if no formed map exists, e.g. at a single-group endpoint).
    pub async fn map(&self) -> Option<SlotMap> {
        if let Some(map) = self.shared.get() {
            return Some(map);
        }
        self.refresh_map().await;
        self.shared.get()
    }

    /// Asks the seeds and known nodes for a newer map; returns how many answered.
    async fn refresh_map(&self) -> usize {
        let held = self.shared.get();
        let have = self.shared.epoch();
        let sources = maps::sources(&self.seeds, held.as_ref());
        let fetched = maps::fetch_newest(&sources, have, self.config.status_timeout).await;
        if let Some(map) = &fetched.map {
            self.shared.offer(map);
        }
        fetched.answered
    }

    /// The cluster now: the newest map from the seeds or known nodes, and every node's own
    /// account, each asked at once and given [`ClientConfig::status_timeout`] to answer.
    /// Fails as unavailable only when no seed or node answered at all.
    ///
    /// [`ClientConfig::status_timeout`]: super::ClientConfig::status_timeout
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ServiceError> {
        let answered = self.refresh_map().await;
        let Some(map) = self.shared.get() else {
            return self.unformed_status(answered).await;
        };
        let mut addrs: Vec<SocketAddr> = map.nodes.iter().map(|n| n.client).collect();
        let extra: Vec<SocketAddr> = self
            .seeds
            .iter()
            .copied()
            .filter(|a| !addrs.contains(a))
            .collect();
        addrs.extend(&extra);
        let reports = ask_status(&addrs, self.config.status_timeout).await;
        let mut answers = BTreeMap::new();
        let mut coordinator = None;
        for report in reports.into_iter().flatten() {
            match report {
                StatusReport::Node(s) => {
                    answers.insert(s.id, StatusReport::Node(s));
                }
                StatusReport::Coordinator(c) => coordinator = Some(c),
            }
        }
        Ok(ClusterStatus::assemble(
            &map,
            &answers,
            coordinator.as_ref(),
        ))
    }

    /// The status when no formed map was found: what a coordinator seed says, if any.
    async fn unformed_status(&self, answered: usize) -> Result<ClusterStatus, ServiceError> {
        let reports = ask_status(&self.seeds, self.config.status_timeout).await;
        let reached = answered > 0 || reports.iter().any(Option::is_some);
        let coordinator = reports.into_iter().flatten().find_map(|r| match r {
            StatusReport::Coordinator(c) => Some(c),
            StatusReport::Node(_) => None,
        });
        match coordinator {
            Some(c) => {
                let forming = Forming {
                    waiting_for: c.waiting_for,
                    checked_in: c.connected.len(),
                };
                Ok(ClusterStatus::unformed(Some(forming), c.suspected))
            }
            None if reached => Ok(ClusterStatus::unformed(None, Vec::new())),
            None => Err(ServiceError::Unavailable(format!(
                "no seed answered: {}",
                self.seeds
                    .iter()
                    .map(SocketAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// Asks every address for its status at once; `None` for those that gave no answer in time.
pub(super) async fn ask_status(
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Vec<Option<StatusReport>> {
    let asks = addrs.iter().map(|&addr| async move {
        let ask = async {
            let mut conn = Connection::open(addr, timeout).await?;
            conn.fetch_status().await
        };
        let answer: Result<StatusReport, CallError> = tokio::time::timeout(timeout, ask)
            .await
            .unwrap_or(Err(CallError::Unexpected("no answer in time")));
        if let Err(e) = &answer {
            tracing::debug!(%addr, error = %e, "no status");
        }
        answer.ok()
    });
    join_all(asks).await
}

impl ReplBackend for Client {
    fn status(&self) -> StatusPending<'_> {
        Box::pin(async move { self.cluster_status().await.map(|s| s.render()) })
    }

    fn leave(&self, node: String) -> StatusPending<'_> {
        Box::pin(async move {
            let map = self.map().await;
            let target = resolve_node(&node, map.as_ref()).map_err(ServiceError::Rejected)?;
            match self.admin(AdminRequest::Remove(target)).await {
                Ok(AdminAnswer::Done(map)) => Ok(format!(
                    "removed {node}; epoch {}: {} groups, {} nodes, {} standbys",
                    map.epoch.0,
                    map.groups.len(),
                    map.nodes.len(),
                    map.standbys.len()
                )),
                Ok(AdminAnswer::Refused(reason)) => {
                    Err(ServiceError::Rejected(format!("leave refused: {reason}")))
                }
                Err(e) => Err(ServiceError::Unavailable(e.to_string())),
            }
        })
    }
}
