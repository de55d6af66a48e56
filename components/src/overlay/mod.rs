//! The overlay: key → slot → group → leader routing over the latest slot map. The logic is the
//! pure [`core::Router`]; [`component::Overlay`] is its actor shell, which serves the node's
//! front ends by handing commands to a local replica or forwarding them to the node that runs
//! the key's group.

pub mod component;
pub mod core;
pub mod leaders;
mod wire;
