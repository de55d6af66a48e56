//! Reconfiguration on the wire: what the coordinator tells a data node to do to its groups
//! ([`Directive`], pushed on the node's session), what the node answers ([`DirectiveOutcome`]),
//! what a node reports about its peers ([`ClientFrame::Suspicion`]), and the administrative
//! requests any client may send the coordinator ([`AdminRequest`]: remove a node, wait for a
//! node to be placed).
//!
//! Every directive is idempotent: the coordinator re-sends one that was not answered (after a
//! reconnect or a timeout), and a node that already did it answers `Done` again. A directive
//! that a follower cannot carry out is answered `NotLeader` with the leader it knows, and the
//! coordinator retries there.
//!
//! [`ClientFrame::Suspicion`]: super::frame::ClientFrame::Suspicion

use std::net::SocketAddr;

use bytes::Bytes;
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::kv::{SlotData, SlotPage};
use kv_ports::membership::{Epoch, NodeInfo, Slot, SlotMap};
use serde::{Deserialize, Serialize};

/// Identifies one directive across re-sends; the answer names it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DirectiveId(pub u64);

/// A step of a reconfiguration plan, for one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Directive {
    /// Run a member of `group` in configuration `config` with these members, owning `slots`
    /// from the start: the formation map's slots for a group formed at start-up, none for a
    /// group created by a reconfiguration (its slots move in afterwards). Done once started.
    StartGroup {
        /// The group.
        group: GroupId,
        /// Its first configuration.
        config: u32,
        /// Its members, this node included.
        members: Vec<NodeId>,
        /// The slots it owns from the start.
        slots: Vec<Slot>,
    },
    /// This node is new to `group` in configuration `next`, which follows `after`: fetch the
    /// state at `after`'s StopSign from `sources` and only then vote. Done once joining started
    /// (the state arrives later; the group does not wait for it if it has a majority).
    JoinGroup {
        /// The group.
        group: GroupId,
        /// The configuration being replaced.
        after: u32,
        /// The configuration this node is a member of.
        next: u32,
        /// Nodes that hold or will hold the state (old and new members).
        sources: Vec<NodeId>,
    },
    /// Seal configuration `from_config` of `group` with a StopSign naming `new_config` and
    /// `members`. Done once this node knows the StopSign is decided (or runs a configuration
    /// at least as new as `new_config`).
    ChangeMembers {
        /// The group.
        group: GroupId,
        /// The configuration to seal.
        from_config: u32,
        /// The configuration the StopSign names.
        new_config: u32,
        /// Its members.
        members: Vec<NodeId>,
    },
    /// Slot move, source side: decide a freeze of `slots` through `group`'s log and answer
    /// the summary of their data ([`DirectiveOutcome::Frozen`]: sessions, sizes, first page).
    Freeze {
        /// The source group.
        group: GroupId,
        /// The slots leaving it.
        slots: Vec<Slot>,
        /// The epoch of the plan's target map.
        epoch: Epoch,
    },
    /// Slot move, source side: read a page of the pairs of `slots` frozen by `epoch` from this
    /// node's member of `group` ([`DirectiveOutcome::Page`]). A read, not through the log:
    /// refused (`Failed`) when this member has not applied that freeze.
    ReadFrozen {
        /// The source group.
        group: GroupId,
        /// The frozen slots.
        slots: Vec<Slot>,
        /// The epoch of the freeze.
        epoch: Epoch,
        /// The page starts after this key (at the first key when `None`).
        after: Option<Bytes>,
        /// About how many bytes of pairs the page may hold (at least one pair).
        max_bytes: u32,
    },
    /// Slot move, destination side: decide an install part (a page of pairs, stored but not
    /// served yet) through `group`'s log. Done once applied.
    InstallPart {
        /// The destination group.
        group: GroupId,
        /// The slots arriving (the whole batch).
        slots: Vec<Slot>,
        /// The epoch of the plan's target map.
        epoch: Epoch,
        /// A page of their pairs.
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// Slot move, destination side: decide the install of `slots` through `group`'s log: the
    /// staged parts plus `data`'s last page, the source's sessions, served from then on. Done
    /// once applied.
    Install {
        /// The destination group.
        group: GroupId,
        /// The slots arriving.
        slots: Vec<Slot>,
        /// The epoch of the plan's target map.
        epoch: Epoch,
        /// The freeze's summary (sessions, sizes) with the last page of pairs.
        data: SlotData,
    },
    /// Stop this node's member of a dissolved group (all its slots have moved away). Done once
    /// stopped, or if the node runs no member of it.
    StopGroup {
        /// The group.
        group: GroupId,
    },
}

impl Directive {
    /// The group the directive is about.
    pub fn group(&self) -> GroupId {
        match self {
            Directive::StartGroup { group, .. }
            | Directive::JoinGroup { group, .. }
            | Directive::ChangeMembers { group, .. }
            | Directive::Freeze { group, .. }
            | Directive::ReadFrozen { group, .. }
            | Directive::InstallPart { group, .. }
            | Directive::Install { group, .. }
            | Directive::StopGroup { group } => *group,
        }
    }
}

/// A node's answer to a directive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectiveOutcome {
    /// Done (or had been done before).
    Done,
    /// The answer to [`Directive::Freeze`]: the frozen slots' summary and first page.
    Frozen(SlotData),
    /// The answer to [`Directive::ReadFrozen`]: a page of frozen pairs.
    Page(SlotPage),
    /// This node cannot carry it out; the group's leader it knows, if any. Retry there.
    NotLeader {
        /// The leader this node follows.
        hint: Option<NodeId>,
    },
    /// It cannot be done here now (no member of the group, a configuration mismatch); the
    /// coordinator logs why and retries later or elsewhere.
    Failed(String),
}

/// Names a node in an administrative request: by id, or by any address it serves on
/// (seed 001's `ip_port` is the HTTP address).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRef {
    /// The node's id.
    Id(NodeId),
    /// An address the node listens on (link, native, RESP or HTTP).
    Addr(SocketAddr),
}

impl NodeRef {
    /// Whether `info` is the node this names.
    pub fn names(&self, info: &NodeInfo) -> bool {
        match *self {
            NodeRef::Id(id) => info.id == id,
            NodeRef::Addr(addr) => {
                info.link == addr
                    || info.client == addr
                    || info.resp == Some(addr)
                    || info.http == Some(addr)
            }
        }
    }
}

/// What an operator (`kv leave`, seed 001's `update_view`, the REPL) asks the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Take a node out of the cluster (its group gets a standby or shrinks, slots rebalance).
    /// Answered once the change is published.
    Remove(NodeRef),
    /// Wait until the node is placed (it checks in itself when started with `--bootstrap`):
    /// answered once a map naming it is published and no change is in flight.
    AwaitNode(NodeRef),
}

/// The coordinator's answer to an [`AdminRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminAnswer {
    /// Done; the map published afterwards.
    Done(SlotMap),
    /// Refused, with the reason (unknown node, a group would lose its data, a timeout).
    Refused(String),
}
