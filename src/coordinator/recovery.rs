//! A restarted coordinator's first job: learn what the groups really hold before planning.
//!
//! When the coordinator adopts a map a node re-reports (it restarted and lost its own), it
//! holds all planning and asks every node where its group members stand
//! ([`ServerFrame::QueryGroups`](crate::native::ServerFrame::QueryGroups)). Once every node of
//! the map answered (or, after [`QUIET_TICKS`], once every group has a live member's answer,
//! or after [`GIVE_UP_TICKS`] with whatever came), it runs [`reconcile`]: moves a cut-short
//! plan left half done are finished (a repeated `Freeze` at the epoch the source saw, then an
//! `Install` at that epoch) by the executor, then the corrected map is published and planning
//! resumes from it.
//!
//! This type only keeps the books; [`super::state`] does the sending.

use std::collections::{BTreeMap, BTreeSet};

use kv_components::bootstrap::actions::Action;
use kv_components::bootstrap::planner::Plan;
use kv_ports::ids::NodeId;
use kv_ports::membership::{Epoch, NodeInfo, SlotMap};

use super::reconcile::{reconcile, Orphan, Reconciled};
use crate::native::GroupReport;

/// Ticks (100 ms) to wait for every node of the map before making do with one live member
/// per group.
pub const QUIET_TICKS: u64 = 30;

/// Ticks after which the coordinator reconciles with whatever answers it has.
pub const GIVE_UP_TICKS: u64 = 300;

/// Ticks between repeated questions to nodes that did not answer.
const ASK_EVERY: u64 = 10;

/// Where recovery stands.
#[derive(Debug, Default)]
enum Phase {
    /// Nothing adopted (a fresh coordinator that formed the cluster itself), or done.
    #[default]
    Idle,
    /// Asking the nodes.
    Gathering {
        /// Ticks since it started.
        ticks: u64,
    },
    /// Finishing orphaned moves, one epoch at a time, then publishing `map`.
    Finishing {
        /// The corrected map.
        map: SlotMap,
        /// The moves left, by epoch (ascending).
        left: Vec<(Epoch, Vec<Orphan>)>,
        /// The epoch whose moves the executor carries out now.
        running: Option<Epoch>,
    },
}

/// What the state must do next for recovery.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing now.
    Wait,
    /// Ask these nodes where their groups stand.
    Ask(Vec<NodeId>),
    /// Have the executor carry out this plan (from the map given), answer with
    /// [`Recovery::plan_done`].
    Execute(Plan, SlotMap),
    /// Publish this map and resume planning (`None`: keep the adopted map).
    Finish(Option<SlotMap>),
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Recovery {
    phase: Phase,
    /// The latest answer of each node.
    answers: BTreeMap<NodeId, Vec<GroupReport>>,
    /// Addresses of every node that checked in.
    known: BTreeMap<NodeId, NodeInfo>,
}

impl Recovery {
    /// Whether the coordinator is still reconciling (it must not plan).
    pub fn active(&self) -> bool {
        !matches!(self.phase, Phase::Idle)
    }

    /// A node checked in.
    pub fn checked_in(&mut self, node: &NodeInfo) {
        self.known.insert(node.id, node.clone());
    }

    /// A map was adopted: start asking (`connected`: the nodes to ask). Ignored once
    /// recovering.
    pub fn start(&mut self, connected: Vec<NodeId>) -> Step {
        if self.active() {
            return Step::Wait;
        }
        self.phase = Phase::Gathering { ticks: 0 };
        self.answers.clear();
        Step::Ask(connected)
    }

    /// A node answered.
    pub fn answered(&mut self, node: NodeId, groups: Vec<GroupReport>) {
        if matches!(self.phase, Phase::Gathering { .. }) {
            self.answers.insert(node, groups);
        }
    }

    /// One tick: re-asks the silent, or reconciles once enough answered against `current`
    /// (the adopted map; the newest, should several nodes have re-reported).
    pub fn tick(&mut self, current: &SlotMap, connected: &[NodeId]) -> Step {
        let Phase::Gathering { ticks } = &mut self.phase else {
            return Step::Wait;
        };
        *ticks += 1;
        let ticks = *ticks;
        if !self.ready(current, ticks) {
            if ticks % ASK_EVERY == 0 {
                let silent = connected
                    .iter()
                    .filter(|n| !self.answers.contains_key(n))
                    .copied()
                    .collect();
                return Step::Ask(silent);
            }
            return Step::Wait;
        }
        self.reconcile(current)
    }

    /// Every node of the map answered; or every group has an active member's answer and the
    /// quiet time passed; or it gave up waiting.
    fn ready(&self, current: &SlotMap, ticks: u64) -> bool {
        let all = current
            .nodes
            .iter()
            .all(|n| self.answers.contains_key(&n.id));
        let groups: BTreeSet<_> = self
            .answers
            .values()
            .flatten()
            .filter(|r| r.active)
            .map(|r| r.group)
            .collect();
        let every_group = current.groups.iter().all(|g| groups.contains(&g.id));
        all || (every_group && ticks >= QUIET_TICKS) || ticks >= GIVE_UP_TICKS
    }

    fn reconcile(&mut self, current: &SlotMap) -> Step {
        let reports: Vec<(NodeId, GroupReport)> = self
            .answers
            .iter()
            .flat_map(|(n, rs)| rs.iter().map(|r| (*n, r.clone())))
            .collect();
        let Reconciled {
            map,
            orphans,
            notes,
        } = reconcile(current, &reports, &self.known);
        for note in &notes {
            tracing::warn!(epoch = %current.epoch, "reconciling the adopted map: {note}");
        }
        let above = reports
            .iter()
            .flat_map(|(_, r)| r.moves.iter())
            .any(|m| m.epoch > current.epoch);
        if notes.is_empty() && orphans.is_empty() && !above {
            tracing::info!(epoch = %current.epoch, "the groups agree with the adopted map");
            self.phase = Phase::Idle;
            return Step::Finish(None);
        }
        let mut left: BTreeMap<Epoch, Vec<Orphan>> = BTreeMap::new();
        for o in orphans {
            left.entry(o.epoch).or_default().push(o);
        }
        self.phase = Phase::Finishing {
            map,
            left: left.into_iter().collect(),
            running: None,
        };
        self.next(current)
    }

    /// The executor finished the plan of `epoch`.
    pub fn plan_done(&mut self, epoch: Epoch, current: &SlotMap) -> Step {
        match &mut self.phase {
            Phase::Finishing { running, .. } if *running == Some(epoch) => {
                tracing::info!(%epoch, "finished the slot moves a cut-short plan left");
                *running = None;
                self.next(current)
            }
            _ => Step::Wait,
        }
    }

    /// The epoch of the moves recovery has the executor finish now, if any (for `status`).
    pub fn running(&self) -> Option<Epoch> {
        match &self.phase {
            Phase::Finishing { running, .. } => *running,
            _ => None,
        }
    }

    /// Whether `epoch` is the plan recovery runs (its "done" is not the core's).
    pub fn runs(&self, epoch: Epoch) -> bool {
        matches!(&self.phase, Phase::Finishing { running: Some(e), .. } if *e == epoch)
    }

    /// The next orphaned epoch's moves, or the corrected map once none is left.
    fn next(&mut self, current: &SlotMap) -> Step {
        let Phase::Finishing { map, left, running } = &mut self.phase else {
            return Step::Wait;
        };
        if left.is_empty() {
            let map = map.clone();
            self.phase = Phase::Idle;
            return Step::Finish(Some(map));
        }
        let (epoch, orphans) = left.remove(0);
        tracing::warn!(%epoch, slots = orphans.len(),
            "slots frozen by a cut-short plan and installed nowhere: moving them again");
        *running = Some(epoch);
        let mut target = map.clone();
        target.epoch = epoch;
        let mut before = current.clone();
        before.nodes.clone_from(&map.nodes);
        for o in &orphans {
            before.slots[o.slot.index()] = o.from;
        }
        let actions = orphans
            .iter()
            .map(|o| Action::MoveSlot {
                slot: o.slot,
                from: o.from,
                to: o.to,
            })
            .collect();
        Step::Execute(Plan { target, actions }, before)
    }
}
