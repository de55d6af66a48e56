//! The cluster as the REPL's `status` shows it, assembled from the slot map and what each node
//! says about itself.
//!
//! No single process knows who leads every group: a node knows its own groups, the coordinator
//! knows none. So the client asks every node and takes, per group, the leader most of its
//! answering members report. Assembly is a pure function of the map and the answers
//! ([`ClusterStatus::assemble`]), so it is tested without sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::net::SocketAddr;

use kv_ports::ids::{GroupId, NodeId};
use kv_ports::membership::{Epoch, SlotMap};

use crate::native::{CoordinatorStatus, StatusReport};

/// A node as status shows it: its id and its native client address.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeRef {
    /// The node.
    pub id: NodeId,
    /// Its native client address.
    pub addr: SocketAddr,
}

impl fmt::Display for NodeRef {
    /// The address first (what a user types to reach the node), then a short id: node ids are
    /// random 64-bit numbers, too long to read in a table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.addr, short_id(self.id))
    }
}

/// A node id shortened for display: `n` and its low 16 bits in hex. Enough to tell the nodes
/// of one cluster apart at a glance; the full id is in the logs.
pub fn short_id(id: NodeId) -> String {
    format!("n{:04x}", id.0 & 0xffff)
}

/// One replication group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    /// The group.
    pub id: GroupId,
    /// Its members, in the map's order.
    pub members: Vec<NodeRef>,
    /// The leader most answering members report, if that node answered too; `None` while
    /// the group elects (or while its members cannot be reached).
    pub leader: Option<NodeId>,
    /// How many hash slots the group owns.
    pub slots: usize,
}

/// A cluster that has no slot map yet, as its coordinator describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forming {
    /// Check-ins the coordinator still needs before it forms the groups.
    pub waiting_for: u32,
    /// Nodes checked in now.
    pub checked_in: usize,
}

/// A reconfiguration under way, as the coordinator reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reconfiguring {
    /// The epoch of the map it leads to.
    pub epoch: Epoch,
    /// Membership changes waiting behind it.
    pub queued: u32,
}

/// The whole cluster at one moment; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The epoch of the slot map (0: none yet).
    pub epoch: Epoch,
    /// The replication degree the map asks for.
    pub replication: u32,
    /// The groups, by id.
    pub groups: Vec<GroupView>,
    /// Nodes in no group.
    pub standbys: Vec<NodeRef>,
    /// Every node the map names, by id.
    pub nodes: Vec<NodeRef>,
    /// Nodes of the map that did not answer (or answered as another node).
    pub unreachable: Vec<NodeId>,
    /// Nodes some node (or the coordinator) suspects, by id.
    pub suspected: Vec<NodeId>,
    /// Answering nodes that still route by an older map.
    pub behind: Vec<NodeId>,
    /// Groups with fewer members than the replication degree, or (the coordinator says) with
    /// a failed member they have no majority left to replace.
    pub under_replicated: Vec<GroupId>,
    /// The reconfiguration under way, if a coordinator answered and one is.
    pub reconfiguring: Option<Reconfiguring>,
    /// Set when no map exists yet and a coordinator answered.
    pub forming: Option<Forming>,
}

impl ClusterStatus {
    /// The status of a cluster with no map yet (`forming` from a coordinator, if one answered).
    pub fn unformed(forming: Option<Forming>, suspected: Vec<NodeId>) -> ClusterStatus {
        ClusterStatus {
            epoch: Epoch(0),
            replication: 0,
            groups: Vec::new(),
            standbys: Vec::new(),
            nodes: Vec::new(),
            unreachable: Vec::new(),
            suspected,
            behind: Vec::new(),
            under_replicated: Vec::new(),
            reconfiguring: None,
            forming,
        }
    }

    /// Puts together the status from the map and each node's answer (`None`: no answer), plus
    /// suspicions reported by others (the coordinator).
    pub fn assemble(
        map: &SlotMap,
        answers: &BTreeMap<NodeId, StatusReport>,
        coordinator: Option<&CoordinatorStatus>,
    ) -> ClusterStatus {
        let node_ref = |id: NodeId| map.node(id).map(|n| NodeRef { id, addr: n.client });
        let mut unreachable = Vec::new();
        let mut behind = Vec::new();
        let mut suspected: BTreeSet<NodeId> = coordinator
            .map(|c| c.suspected.iter().copied().collect())
            .unwrap_or_default();
        let mut reports = BTreeMap::new();
        for info in &map.nodes {
            match answers.get(&info.id) {
                Some(StatusReport::Node(s)) if s.id == info.id => {
                    suspected.extend(s.suspected.iter().copied());
                    if s.epoch < map.epoch {
                        behind.push(info.id);
                    }
                    reports.insert(info.id, s);
                }
                _ => unreachable.push(info.id),
            }
        }
        let counts = map.slot_counts();
        let groups = map
            .groups
            .iter()
            .map(|g| {
                let mut votes: BTreeMap<NodeId, usize> = BTreeMap::new();
                for member in &g.members {
                    let Some(report) = reports.get(member) else {
                        continue;
                    };
                    let seen = report.groups.iter().find(|m| m.group == g.id);
                    if let Some(leader) = seen.and_then(|m| m.leader) {
                        if g.members.contains(&leader) {
                            *votes.entry(leader).or_default() += 1;
                        }
                    }
                }
                // Most votes wins; a tie goes to the lower id, so the choice is stable.
                let leader = votes
                    .into_iter()
                    .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                    .map(|(n, _)| n)
                    .filter(|n| reports.contains_key(n));
                GroupView {
                    id: g.id,
                    members: g.members.iter().filter_map(|&m| node_ref(m)).collect(),
                    leader,
                    slots: counts.get(&g.id).copied().unwrap_or(0),
                }
            })
            .collect();
        ClusterStatus {
            epoch: map.epoch,
            replication: map.replication,
            groups,
            standbys: map.standbys.iter().filter_map(|&n| node_ref(n)).collect(),
            nodes: map
                .nodes
                .iter()
                .map(|n| NodeRef {
                    id: n.id,
                    addr: n.client,
                })
                .collect(),
            unreachable,
            suspected: suspected.into_iter().collect(),
            behind,
            under_replicated: under_replicated(map, coordinator),
            reconfiguring: coordinator.and_then(|c| {
                c.in_flight.map(|epoch| Reconfiguring {
                    epoch,
                    queued: c.queued,
                })
            }),
            forming: None,
        }
    }

    /// Whether the cluster is formed and every group has a leader: what `kv local` waits for
    /// before handing the cluster to the user.
    pub fn all_groups_led(&self) -> bool {
        !self.groups.is_empty() && self.groups.iter().all(|g| g.leader.is_some())
    }

    /// A node's label: its address and short id when the map names it, the short id alone
    /// otherwise (a suspected node already removed from the map).
    pub fn label(&self, id: NodeId) -> String {
        match self.nodes.iter().find(|n| n.id == id) {
            Some(n) => n.to_string(),
            None => short_id(id),
        }
    }

    /// The status as a readable table, without a trailing newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.groups.is_empty() {
            out.push_str("no slot map yet");
            match &self.forming {
                Some(f) => {
                    let _ = write!(
                        out,
                        ": the coordinator waits for {} more node(s), {} checked in",
                        f.waiting_for, f.checked_in
                    );
                }
                None => out.push_str(" (a single-group endpoint, or the cluster is forming)"),
            }
        } else {
            let _ = write!(
                out,
                "epoch {}  groups {}  nodes {}  replication {}",
                self.epoch.0,
                self.groups.len(),
                self.nodes.len(),
                self.replication
            );
            for g in &self.groups {
                self.render_group(&mut out, g);
            }
            let standbys: Vec<String> = self.standbys.iter().map(NodeRef::to_string).collect();
            let _ = write!(out, "\nstandbys  {}", list(&standbys));
            self.render_changes(&mut out);
        }
        let mut ids = |title: &str, ids: &[NodeId]| {
            let labels: Vec<String> = ids.iter().map(|&n| self.label(n)).collect();
            let _ = write!(out, "\n{title}  {}", list(&labels));
        };
        ids("suspected", &self.suspected);
        ids("unreachable", &self.unreachable);
        if !self.behind.is_empty() {
            ids("behind (older map)", &self.behind);
        }
        out
    }

    /// The reconfiguration under way and the groups short of members, when there are any.
    fn render_changes(&self, out: &mut String) {
        if let Some(r) = self.reconfiguring {
            let _ = write!(out, "\nreconfiguring  to epoch {}", r.epoch.0);
            match r.queued {
                0 => {}
                1 => out.push_str(", 1 more change queued"),
                n => {
                    let _ = write!(out, ", {n} more changes queued");
                }
            }
        }
        if !self.under_replicated.is_empty() {
            let groups: Vec<String> = self
                .under_replicated
                .iter()
                .map(|g| g.0.to_string())
                .collect();
            let noun = if groups.len() == 1 { "group" } else { "groups" };
            let _ = write!(out, "\nunder-replicated  {noun} {}", groups.join(", "));
        }
    }

    fn render_group(&self, out: &mut String, g: &GroupView) {
        let leader = match g.leader {
            Some(id) => self.label(id),
            None => "none (electing)".to_owned(),
        };
        let members: Vec<String> = g.members.iter().map(NodeRef::to_string).collect();
        let _ = write!(
            out,
            "\ngroup {}  slots {}  leader {}  members {}",
            g.id.0,
            g.slots,
            leader,
            members.join(", ")
        );
        if self.under_replicated.contains(&g.id) {
            if g.members.len() < self.replication as usize {
                let _ = write!(
                    out,
                    "  (under-replicated: {} of {})",
                    g.members.len(),
                    self.replication
                );
            } else {
                out.push_str(
                    "  (under-replicated: a member failed and no majority is left to replace it)",
                );
            }
        }
    }
}

/// The map's groups below δ members, plus those the coordinator reports (a failed member
/// that cannot be replaced), sorted and without duplicates.
fn under_replicated(map: &SlotMap, coordinator: Option<&CoordinatorStatus>) -> Vec<GroupId> {
    let mut groups: BTreeSet<GroupId> = map.under_replicated().into_iter().collect();
    if let Some(c) = coordinator {
        groups.extend(
            c.under_replicated
                .iter()
                .filter(|g| map.group(**g).is_some()),
        );
    }
    groups.into_iter().collect()
}

/// Comma-separated, or `none`.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests;
