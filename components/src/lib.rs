//! The kv components: one module per component, each a pure core plus its actor shell.
//!
//! Cores know nothing of kameo, tokio, sockets or wall-clock time: inputs in, outputs out, and
//! `tick()` for time. Shells feed them from ports and timers.
#![deny(missing_docs)]

pub mod beb;
pub mod ble;
pub mod bootstrap;
pub mod epfd;
pub mod group;
pub mod memory_link;
pub mod overlay;
pub mod perfect_link;
pub mod quorum;
pub mod reconfig;
pub mod replica;
pub mod sequence_paxos;
pub mod task;
pub mod timer;
pub mod wire;
