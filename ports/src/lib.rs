//! The kv component framework and every port definition.
//!
//! Ports know nothing of components: this crate holds types and the small wiring layer only.
#![deny(missing_docs)]

pub mod ids;
pub mod kv;
