//! The overlay: key → slot → group → leader routing over the latest slot map. The logic is the
//! pure [`core::Router`]; the actor shell (forwarding over the link, map refresh) comes later.

pub mod core;
pub mod leaders;
