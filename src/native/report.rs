//! What a data node tells its coordinator about the group members it runs, when asked
//! ([`super::ServerFrame::QueryGroups`]): a restarted coordinator reconciles the map it
//! adopted with these (see `coordinator::reconcile`), since a plan cut short by the restart
//! may have changed a group's members or moved slots that no published map shows yet.

use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{Epoch, Slot};
use serde::{Deserialize, Serialize};

/// One node's member of one group, as its replica sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The group.
    pub group: GroupId,
    /// The newest configuration the member runs, joins or belonged to.
    pub config: u32,
    /// Whether it runs `config` (its replica state below is meaningful); false while it joins
    /// or after it left.
    pub active: bool,
    /// The members of `config` (empty when not active).
    pub members: Vec<NodeId>,
    /// Whether it leads `config`.
    pub leading: bool,
    /// Log entries of `config` its replica applied (which report is freshest).
    pub applied: u64,
    /// The slots its replica serves.
    pub owned: Vec<Slot>,
    /// The last slot move its replica applied, per slot that ever moved.
    pub moves: Vec<SlotRecord>,
}

/// The last move a replica applied for one slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    /// The slot.
    pub slot: Slot,
    /// True: the slot arrived (an install); false: it left (a freeze).
    pub installed: bool,
    /// The map epoch of that move.
    pub epoch: Epoch,
}
