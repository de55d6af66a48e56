//! What a node or the coordinator says about itself when asked ([`ClientFrame::GetStatus`]).
//!
//! A node reports only what it knows first-hand (its map's epoch, the leader its own group
//! members see, the nodes its failure detector suspects); the client library asks every node
//! and assembles the cluster view the REPL's `status` prints.
//!
//! [`ClientFrame::GetStatus`]: super::frame::ClientFrame::GetStatus

use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::Epoch;
use serde::{Deserialize, Serialize};

/// The answer to a status request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusReport {
    /// From a data node.
    Node(NodeStatus),
    /// From the bootstrap coordinator.
    Coordinator(CoordinatorStatus),
}

/// One data node's own view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub id: NodeId,
    /// The epoch of the map it routes by (0: none yet).
    pub epoch: Epoch,
    /// The groups it is a member of, as its own components see them.
    pub groups: Vec<MemberStatus>,
    /// Nodes its failure detector suspects now.
    pub suspected: Vec<NodeId>,
}

/// One group as seen by one of its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// The group.
    pub group: GroupId,
    /// The leader this member follows, if it knows one.
    pub leader: Option<NodeId>,
    /// Log entries decided here (in the running configuration's log).
    pub decided: u64,
    /// The group's configuration this member runs, joins, or last belonged to.
    pub config: u32,
    /// Where the member stands in a membership change.
    pub stage: MemberStage,
}

/// Where a group member stands in its group's sequence of configurations.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberStage {
    /// Runs its configuration and serves.
    Active,
    /// Runs a configuration it knows is sealed, waiting for the state at its StopSign.
    CatchingUp,
    /// Named in a configuration it cannot run yet: fetching the previous one's final state.
    Joining,
    /// In no later configuration: serves the final state to new members, then retires.
    Leaving,
    /// Done; about to be dropped.
    Retired,
}

impl std::fmt::Display for MemberStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemberStage::Active => "active",
            MemberStage::CatchingUp => "catching up",
            MemberStage::Joining => "joining",
            MemberStage::Leaving => "leaving",
            MemberStage::Retired => "retired",
        })
    }
}

/// The coordinator's view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorStatus {
    /// The published epoch (0 before formation).
    pub epoch: Epoch,
    /// Check-ins still needed before the cluster forms (0 once formed).
    pub waiting_for: u32,
    /// Nodes checked in now (connected sessions).
    pub connected: Vec<NodeId>,
    /// Nodes suspected, not yet declared failed.
    pub suspected: Vec<NodeId>,
    /// The epoch of the reconfiguration under way, if any.
    pub in_flight: Option<Epoch>,
    /// Membership events waiting behind it.
    pub queued: u32,
    /// Groups below the replication degree, or that lost a member they cannot replace.
    pub under_replicated: Vec<GroupId>,
}
