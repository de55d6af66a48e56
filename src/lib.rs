//! `kv`: a partitioned, linearizable, replicated key-value store.
//!
//! This crate holds the assembly and the edges: the command line, the client library, the
//! front ends and the linearizability checker. Protocols live in `kv-components`, the component
//! framework and port definitions in `kv-ports`.
#![deny(missing_docs)]

pub mod bench;
pub mod checker;
pub mod client;
pub mod coordinator;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod native;
pub mod node;
pub mod process;
pub mod repl;
pub mod resp;
pub mod seed001;
pub mod seed002;
pub mod service;
