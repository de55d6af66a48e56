//! Group membership change through the group's own log (pure core).
//!
//! A group runs a sequence of configurations `c, c + 1, …`, each with its own members, its own
//! leader election and its own Sequence Paxos log (indices start at 0 in every configuration).
//! The coordinator asks a member of `c` to change members; the leader proposes a StopSign naming
//! `c + 1` and its members; once the StopSign is decided and applied, every member of `c + 1`
//! starts from the state at the StopSign (store and client session table), either its own or
//! a snapshot sent by a node that has it. New members install that snapshot before they vote.
//!
//! [`GroupNode`] is one node's part in one group across configurations; [`GroupMsg`] is
//! everything such nodes say to each other (every message names its configuration).
//! The design, the invariants and how the simulator checks them: `report/reconfiguration.md`.

pub mod component;
mod messages;
mod node;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transfer_tests;

pub use self::messages::{fnv1a, ConfigEvent, GroupMsg, SnapshotId};
pub use self::node::{
    ChangeError, GroupNode, GroupNodeConfig, GroupOutput, SealedRecord, StageKind,
};
