//! Ballot leader election (BLE): heartbeat rounds that elect the highest ballot among
//! quorum-connected candidates, stable under partial connectivity.

pub mod ballot;
pub mod component;
pub mod core;

pub use self::ballot::Ballot;
pub use self::core::{Ble, BleConfig, BleMsg};
