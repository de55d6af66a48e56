//! The seam between front ends and the cluster.
//!
//! Front ends (native, RESP, HTTP) turn what a client sent into [`KvOp`]s and hand them to a
//! [`KvService`]; they never see routing, leaders or Paxos. The cluster client implements it
//! for real; [`MemoryService`] implements it on one map, for front-end tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use kv_components::replica::KvStore;
use kv_ports::kv::{KvOp, KvResult};

/// Why an operation has no result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The operation may or may not have taken effect (a timeout): the client cannot know.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The operation definitely did not take effect (no leader, no quorum, shutting down).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The operation was refused as invalid (oversized key or value, bad argument).
    #[error("rejected: {0}")]
    Rejected(String),
}

/// A boxed future of one operation's outcome.
pub type Pending<'a> = Pin<Box<dyn Future<Output = Result<KvResult, ServiceError>> + Send + 'a>>;

/// Executes key-value operations with linearizable semantics: each takes effect once, at some
/// instant between its call and its return, or (on error) as the error says.
pub trait KvService: Send + Sync + 'static {
    /// Executes one operation.
    fn execute(&self, op: KvOp) -> Pending<'_>;
}

/// A single in-memory store (the replicas' own state machine, without replication):
/// linearizable trivially, for testing front ends in isolation.
#[derive(Clone, Default)]
pub struct MemoryService {
    store: Arc<Mutex<KvStore>>,
}

impl MemoryService {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn apply(&self, op: KvOp) -> KvResult {
        // A panic elsewhere cannot leave the store half-updated: every update is one call.
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.apply(&op)
    }
}

impl KvService for MemoryService {
    fn execute(&self, op: KvOp) -> Pending<'_> {
        let result = self.apply(op);
        Box::pin(async move { Ok(result) })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn key(k: &str) -> Bytes {
        Bytes::copy_from_slice(k.as_bytes())
    }

    #[tokio::test]
    async fn memory_service_follows_the_kv_model() {
        let s = MemoryService::new();
        let get = || KvOp::Get { key: key("k") };
        assert_eq!(s.execute(get()).await, Ok(KvResult::Value(None)));
        let cas_absent = KvOp::Cas {
            key: key("k"),
            expected: None,
            new: key("1"),
        };
        assert_eq!(
            s.execute(cas_absent.clone()).await,
            Ok(KvResult::Swapped(true))
        );
        assert_eq!(s.execute(cas_absent).await, Ok(KvResult::Swapped(false)));
        let put = KvOp::Put {
            key: key("k"),
            value: key("2"),
        };
        assert_eq!(s.execute(put).await, Ok(KvResult::Written));
        assert_eq!(s.execute(get()).await, Ok(KvResult::Value(Some(key("2")))));
        let del = || KvOp::Delete { key: key("k") };
        assert_eq!(s.execute(del()).await, Ok(KvResult::Deleted(true)));
        assert_eq!(s.execute(del()).await, Ok(KvResult::Deleted(false)));
    }
}
