//! Seed 002's start-up mode: `kv --config_path FILE` (or `kvstore2pcsystem --config_path
//! FILE`) runs as the coordinator or as a participant, as the file says.
//!
//! The seed asks for a coordinator that keeps no data and speaks a RESP dialect to clients,
//! and participants that hold the data. Here the participants are data nodes forming ONE
//! replication group of all of them (Sequence Paxos: a write is committed once a majority
//! has it, so the group serves while a majority lives), and the coordinator is two things
//! behind its one address ([`front`] tells their connections apart):
//!
//! - the bootstrap coordinator ([`crate::coordinator::serve`]) with `min_nodes` and the
//!   replication degree both equal to the number of participants its file lists, so the
//!   epoch-1 map is one group of every participant; participants check in with it at
//!   `coordinator_info`, the only coordinator address their files give, and wait there until
//!   all have arrived, whichever of them or the coordinator starts first;
//! - the seed's RESP front end ([`crate::resp::serve`] in [`Dialect::Seed002`]) over a pool of
//!   [`Client`] sessions to the participants' addresses, which learn the map from the
//!   participants and route to the group's leader.
//!
//! The coordinator may be killed and restarted at any time: the participants hold the map and
//! re-report it to the restarted coordinator (which adopts it instead of forming anew), and
//! the data never passed through it.
//!
//! [`Dialect::Seed002`]: crate::resp::Dialect::Seed002
//! [`Client`]: crate::client::Client

mod config;
pub mod coordinator;
mod entry;
mod front;
pub mod participant;
mod pool;

use std::future::Future;
use std::net::SocketAddr;

pub use config::{Config, ConfigError, LoadError};
pub use entry::main;

use crate::node::NodeError;

/// Why a seed 002 process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Seed002Error {
    /// An address could not be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The participant's node could not start.
    #[error("participant: {0}")]
    Node(#[from] NodeError),
    /// A component of the participant's node failed while serving.
    #[error("a component of the participant failed; see the log")]
    NodeFailed,
    /// One of the coordinator's servers failed.
    #[error("{what}: {source}")]
    Serve {
        /// Which server.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// More participants than one group can hold.
    #[error("{0} participants are more than one group can hold")]
    TooManyParticipants(usize),
}

/// Runs the process `config` describes until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Seed002Error> {
    match config {
        Config::Coordinator {
            address,
            participants,
        } => coordinator::run(address, participants, shutdown).await,
        Config::Participant {
            address,
            coordinator,
        } => participant::run(address, coordinator, shutdown).await,
    }
}
