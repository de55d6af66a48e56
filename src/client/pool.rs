//! A session's open connections, one per endpoint address.
//!
//! A session runs one command at a time, so one connection per node is all it needs; keeping
//! them open means a steady workload pays for connecting once per node, not once per command.
//! A connection is dropped after any failure or timeout on it: its stream may hold a late
//! answer or be half-broken, and a fresh one is cheap next to a wrong answer.

use std::collections::hash_map::{Entry, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use super::connection::{CallError, Connection};

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Pool {
    conns: HashMap<SocketAddr, Connection>,
}

impl Pool {
    /// The open connection to `addr`, connecting first if there is none.
    pub(crate) async fn get(
        &mut self,
        addr: SocketAddr,
        connect_timeout: Duration,
    ) -> Result<&mut Connection, CallError> {
        match self.conns.entry(addr) {
            Entry::Occupied(open) => Ok(open.into_mut()),
            Entry::Vacant(slot) => Ok(slot.insert(Connection::open(addr, connect_timeout).await?)),
        }
    }

    /// Forgets the connection to `addr` (closing it).
    pub(crate) fn drop_conn(&mut self, addr: SocketAddr) {
        self.conns.remove(&addr);
    }

    /// Keeps only connections to addresses `keep` accepts (after a new map: departed nodes'
    /// sockets are closed rather than held forever).
    pub(crate) fn retain(&mut self, keep: impl Fn(&SocketAddr) -> bool) {
        self.conns.retain(|addr, _| keep(addr));
    }
}
