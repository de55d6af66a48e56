//! The cluster view shared by every node, the coordinator and clients: hash slots, replication
//! groups, standbys and node addresses, versioned by an epoch.
//!
//! These types cross ports and the wire (postcard) and are shown by `/status` (JSON), so every
//! collection is a `Vec` kept sorted by id rather than a map with a newtype key: both formats
//! handle that shape, and the order makes equal views serialise to equal bytes.

mod hash;
mod map;
mod validate;

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, NodeId};

pub use self::hash::{crc16_xmodem, slot_of};
pub use self::validate::MapError;

/// How many hash slots the key space is cut into. Fixed for the life of a cluster: a key's slot
/// never changes, only the slot's group does, so rebalancing moves whole slots.
pub const SLOTS: usize = 1024;

/// One hash slot, `0..SLOTS`. The unit of ownership and of data movement between groups.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Slot(pub u16);

impl Slot {
    /// The slot as an index into [`SlotMap::slots`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// The version of a [`SlotMap`]. Every change publishes a strictly higher epoch, so a node or
/// client can tell which of two views is newer and refuse to go back.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch after this one.
    pub fn next(self) -> Epoch {
        Epoch(self.0 + 1)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

/// Where to reach one data node: the addresses a peer or client needs to talk to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's identity.
    pub id: NodeId,
    /// Node-to-node perfect-link address.
    pub link: SocketAddr,
    /// Native client protocol address.
    pub client: SocketAddr,
    /// RESP frontend address, if the node serves one.
    pub resp: Option<SocketAddr>,
    /// HTTP frontend address, if the node serves one.
    pub http: Option<SocketAddr>,
}

impl NodeInfo {
    /// A node reached at one address for both its link and its native clients (a node
    /// multiplexes the two on its `--listen` port), with no RESP or HTTP front end.
    pub fn at(id: NodeId, addr: SocketAddr) -> NodeInfo {
        NodeInfo {
            id,
            link: addr,
            client: addr,
            resp: None,
            http: None,
        }
    }
}

/// One replication group as the map describes it: which configuration of its log is current
/// and who its members are.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The group's identity (seed 001's partition id). Never reused after dissolution.
    pub id: GroupId,
    /// The configuration of the group's Sequence Paxos log; bumped by every membership change
    /// (each change is a StopSign naming the next configuration).
    pub config: u32,
    /// The members, in the order they were placed. Fewer than the replication degree means the
    /// group is under-replicated.
    pub members: Vec<NodeId>,
}

/// The whole cluster view: which group owns each slot, who is in each group, who waits as a
/// standby, and where every node listens.
///
/// Invariants (checked by [`SlotMap::validate`]): once any group exists, every slot belongs to
/// exactly one existing group; no node is in two groups or both in a group and a standby; every
/// node named anywhere has a [`NodeInfo`]; groups hold between 1 and `replication` members.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotMap {
    /// The version of this view.
    pub epoch: Epoch,
    /// The target number of members per group (δ, seed 001's K).
    pub replication: u32,
    /// Owner of each slot, indexed by slot; empty while no group exists.
    pub slots: Vec<GroupId>,
    /// The groups, sorted by id.
    pub groups: Vec<GroupInfo>,
    /// Nodes in no group, in the order they became standbys; they act as proxies.
    pub standbys: Vec<NodeId>,
    /// Every live node of the cluster, sorted by id.
    pub nodes: Vec<NodeInfo>,
    /// The id the next new group will get; only ever grows, so ids are never reused.
    pub next_group: GroupId,
}
