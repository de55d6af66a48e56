//! The RESP (Redis protocol) front end, so `redis-cli` and `redis-benchmark` work unmodified.
//!
//! Layers, bottom up:
//! - [`Frame`] and [`RespCodec`]: RESP2 values and a check-then-parse codec (partial frames
//!   wait, inline commands accepted, [`Limits`] enforced from declared lengths);
//! - a connection task per client that executes pipelined requests in order and batches
//!   the replies;
//! - two command tables, chosen by [`Dialect`]: Redis's (one file per command under `cmd/`)
//!   and seed 002's (`seed002/`);
//! - [`serve`] / [`serve_with`]: the accept loop with admission control and clean shutdown.
//!
//! Every command becomes [`KvOp`](kv_ports::kv::KvOp)s run through a
//! [`KvService`](crate::service::KvService); nothing here knows about partitions or leaders.

mod cmd;
mod codec;
mod connection;
mod dialect;
mod error;
mod frame;
mod inline;
mod limits;
mod parse;
mod request;
mod seed002;
mod server;

pub use codec::RespCodec;
pub use dialect::Dialect;
pub use error::{CodecError, ProtocolError};
pub use frame::Frame;
pub use limits::Limits;
pub use server::{serve, serve_with, ServerConfig};
