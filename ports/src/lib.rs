//! The kv component framework and every port definition.
//!
//! Ports know nothing of components: this crate holds types and the small wiring layer only.
//! [`port`] defines what a port is, [`component`] how components provide, require and connect
//! them; the other modules are the ports themselves.
#![deny(missing_docs)]

pub mod broadcast;
pub mod component;
pub mod consensus;
pub mod election;
pub mod fd;
pub mod ids;
pub mod kv;
pub mod membership;
pub mod network;
pub mod port;
pub mod supervisor;
pub mod testkit;
pub mod timer;
