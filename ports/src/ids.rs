//! Identities shared by every layer: nodes, replication groups and clients.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A data node (or the coordinator) of one cluster.
///
/// Node ids are handed out once and never reused: a crashed process that comes back is a new
/// node, because an acceptor that forgot its promises must not vote under its old name.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A replication group: δ nodes running one Sequence Paxos log over a share of the slots.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupId(pub u32);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

/// A client session. Together with a per-client sequence number it makes every command unique,
/// which is what lets a retried command be applied at most once.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub Uuid);

impl ClientId {
    /// A fresh random client id.
    pub fn random() -> Self {
        ClientId(Uuid::new_v4())
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
