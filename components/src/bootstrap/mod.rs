//! The bootstrap coordinator: collects nodes, forms replication groups, publishes the slot map
//! and plans every membership change. [`formation`] and [`planner`] are pure functions;
//! [`core`] is the coordinator's state machine around them. The actor shell comes later.

pub mod actions;
pub mod balance;
pub mod core;
pub mod formation;
pub mod planner;
pub mod suspicion;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
