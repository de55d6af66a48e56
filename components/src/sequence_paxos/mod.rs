//! Sequence Paxos: a replicated log of commands, decided by a majority in the leader's ballot.
//!
//! The protocol follows Sequence Paxos as in OmniPaxos (Ng, Haridi, Carbone): a leader elected by
//! BLE prepares its ballot, adopts the best log among a majority of promises, synchronises every
//! follower with one `AcceptSync`, then replicates batches with `AcceptDecide`. The core is pure
//! (see [`SequencePaxos`]); a shell feeds it messages, BLE indications and ticks, and drains
//! its outputs.

pub mod component;
mod core;
mod follower;
mod leader;
pub mod log;
pub mod messages;
#[cfg(test)]
mod tests;

pub use self::core::{Phase, ProposeError, Role, SequencePaxos, SpConfig};
pub use self::messages::{Entry, PaxosMsg, StopSign};
