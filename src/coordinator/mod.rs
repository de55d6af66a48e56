//! The bootstrap coordinator process and the data node's session to it.
//!
//! The coordinator keeps no data: it collects check-ins, forms the epoch-1 slot map once
//! enough nodes arrived, and pushes every later map to the nodes. All of its decisions are
//! made by the pure [`CoordinatorCore`](kv_components::bootstrap::core::CoordinatorCore); this
//! module is the I/O shell around it, speaking the native protocol:
//!
//! - [`serve`] runs the coordinator on a listener: one loop owns the core, connection tasks
//!   feed it decoded frames through a channel and write what it queues for them;
//!   [`serve_handed`] runs it on connections a data node's multiplexer hands over (seed 001:
//!   the coordinator inside the node at `VIEW[0]`, reached with [`PREAMBLE`]);
//! - [`start_session`] is the node's side: it checks in, re-reports its map after every
//!   reconnect (how a restarted coordinator recovers the cluster's truth) and publishes each
//!   newer map it hears into a `watch` channel the node routes by;
//! - [`fetch_map`] and [`fetch_status`] ask one question over a short-lived connection, of
//!   the coordinator or of any data node (both answer `GetMap` and `GetStatus`).

mod admin;
mod ask;
mod backoff;
mod conn;
mod dial;
pub mod executor;
pub mod reconcile;
mod recovery;
pub mod server;
pub mod session;
mod state;

pub use ask::{admin, fetch_map, fetch_status, AskError};
pub use backoff::Backoff;
pub use dial::{CoordinatorAddr, PREAMBLE};
pub use kv_components::bootstrap::core::CoordinatorConfig;
pub use server::{serve, serve_handed, HandedConn};
pub use session::start as start_session;
