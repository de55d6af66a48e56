//! The free list of client sessions a [`GatewayService`](super::GatewayService) runs commands
//! under.
//!
//! The replicas keep one outstanding command per [`ClientId`]: a second concurrent command of
//! the same client would replace the first, which would then never be answered. So every
//! command in flight needs a session of its own. Sessions are reused rather than minted per
//! command, because each client id costs an entry in every replica's session table; the pool
//! only grows to the highest concurrency seen.

use std::sync::{Mutex, MutexGuard};

use kv_ports::ids::ClientId;
use kv_ports::kv::RequestId;

/// One session: a client id and the last sequence number it used.
#[derive(Copy, Clone, Debug)]
struct Session {
    client: ClientId,
    seq: u64,
}

/// Idle sessions, most recently used last (reused first, so a steady load keeps touching the
/// same few ids).
#[derive(Debug, Default)]
pub(crate) struct SessionPool {
    idle: Mutex<Vec<Session>>,
}

impl SessionPool {
    /// Takes an idle session (or starts a new one) and numbers its next command.
    ///
    /// The sequence number is advanced here, before the command can reach anyone, and the
    /// session goes back to the pool with it when the lease drops — whatever the outcome, and
    /// even if the caller abandons the operation. So a session never issues a sequence number
    /// twice: a command whose outcome was unknown is superseded by the next one on that id,
    /// never confused with it.
    pub(crate) fn lease(&self) -> Lease<'_> {
        let taken = self.lock().pop();
        let mut session = taken.unwrap_or(Session {
            client: ClientId::random(),
            seq: 0,
        });
        session.seq += 1;
        Lease {
            pool: self,
            session,
        }
    }

    /// How many sessions are idle.
    pub(crate) fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Session>> {
        // Every critical section is one push or pop, so a poisoned list is still consistent.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A session in use by one command; returns to the pool when dropped.
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    pool: &'a SessionPool,
    session: Session,
}

impl Lease<'_> {
    /// The id of the command this lease was taken for; every retry of it reuses the id.
    pub(crate) fn request_id(&self) -> RequestId {
        RequestId {
            client: self.session.client,
            seq: self.session.seq,
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pool.lock().push(self.session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_leases_get_distinct_clients_and_reuse_them_with_higher_seqs() {
        let pool = SessionPool::default();
        let a = pool.lease();
        let b = pool.lease();
        let (ida, idb) = (a.request_id(), b.request_id());
        assert_ne!(ida.client, idb.client);
        assert_eq!((ida.seq, idb.seq), (1, 1));
        drop(a);
        drop(b);
        assert_eq!(pool.idle(), 2);
        let c = pool.lease();
        assert_eq!(c.request_id().client, idb.client);
        assert_eq!(c.request_id().seq, 2);
        assert_eq!(pool.idle(), 1);
    }
}
