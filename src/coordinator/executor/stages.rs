//! A plan cut into stages of steps, and what each step waits for. The executor routes the
//! directives; this module decides which directives a step needs and when it is finished.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use kv_components::bootstrap::actions::Action;
use kv_components::bootstrap::planner::Plan;
use kv_components::quorum::majority;
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::kv::SlotData;
use kv_ports::membership::{Epoch, Slot, SlotMap};

use crate::native::{Directive, DirectiveOutcome};

/// A directive a step wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Issue {
    /// What to send.
    pub directive: Directive,
    /// Where.
    pub to: Target,
    /// The step of the current stage waiting for it; `None`: nothing waits (background).
    pub step: Option<usize>,
}

/// Where an [`Issue`] goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// This node, which does its own part.
    Node(NodeId),
    /// Any one of these members (in this order of preference).
    Any(Vec<NodeId>),
}

/// One action (or one batch of slot moves) before it starts.
#[derive(Clone, Debug)]
enum Spec {
    Create {
        group: GroupId,
        members: Vec<NodeId>,
    },
    Change {
        group: GroupId,
        from_config: u32,
        new_config: u32,
        members: Vec<NodeId>,
    },
    Move {
        from: GroupId,
        to: GroupId,
        slots: Vec<Slot>,
    },
    Dissolve {
        group: GroupId,
    },
}

/// What a started step still waits for.
#[derive(Clone, Debug)]
enum StepState {
    /// A new group: `needed` members must have started it.
    Create {
        needed: usize,
        started: BTreeSet<NodeId>,
    },
    /// A membership change: the StopSign decided, and these new members' answers.
    Change {
        sealed: bool,
        joining: BTreeSet<NodeId>,
    },
    /// Slots moving `from → to`: the batch in flight (and its transfer once frozen), then
    /// the rest.
    Move {
        from: GroupId,
        to: GroupId,
        batch: Vec<Slot>,
        transfer: Option<Transfer>,
        rest: VecDeque<Vec<Slot>>,
    },
    Finished,
}

/// A frozen batch on its way: its pairs go page by page (read from the source, staged at the
/// destination) until the last page, which travels with the install.
#[derive(Clone, Debug)]
struct Transfer {
    /// The freeze's answer without its pairs: the sessions and sizes the install carries.
    summary: SlotData,
    /// Where pages are read: the member that answered the freeze (it applied it), then the
    /// source's other members.
    readers: Vec<NodeId>,
    /// The last key handed to the destination; the next page starts after it.
    after: Option<Bytes>,
    /// Pages staged so far (for the log).
    parts: u64,
}

/// A plan being carried out.
#[derive(Debug)]
pub(super) struct Running {
    /// The epoch of the plan's target map.
    pub epoch: Epoch,
    before: SlotMap,
    target: SlotMap,
    batch_slots: usize,
    page_bytes: u32,
    stages: VecDeque<Vec<Spec>>,
    steps: Vec<StepState>,
}

impl Running {
    /// `plan`, leading from `before`, cut into stages: runs of actions of one kind, in the
    /// plan's order. Slot moves are grouped per `(from, to)` pair, cut in batches of
    /// `batch_slots` slots whose pairs are read in pages of about `page_bytes`.
    pub fn new(plan: &Plan, before: &SlotMap, batch_slots: usize, page_bytes: u32) -> Running {
        let mut stages: VecDeque<Vec<Spec>> = VecDeque::new();
        let mut last_kind = None;
        let mut moves: BTreeMap<(GroupId, GroupId), Vec<Slot>> = BTreeMap::new();
        for action in &plan.actions {
            let Some(kind) = kind(action) else {
                continue;
            };
            if last_kind != Some(kind) {
                flush_moves(&mut stages, &mut moves);
                stages.push_back(Vec::new());
                last_kind = Some(kind);
            }
            let stage = stages.back_mut().expect("pushed above");
            match action.clone() {
                Action::CreateGroup { group, members } => {
                    stage.push(Spec::Create { group, members })
                }
                Action::ChangeMembers {
                    group,
                    from_config,
                    new_config,
                    members,
                } => stage.push(Spec::Change {
                    group,
                    from_config,
                    new_config,
                    members,
                }),
                Action::MoveSlot { slot, from, to } => {
                    moves.entry((from, to)).or_default().push(slot)
                }
                Action::DissolveGroup { group } => stage.push(Spec::Dissolve { group }),
                Action::StandbyAdded(_) | Action::StandbyRemoved(_) => unreachable!("no kind"),
            }
        }
        flush_moves(&mut stages, &mut moves);
        Running {
            epoch: plan.target.epoch,
            before: before.clone(),
            target: plan.target.clone(),
            batch_slots,
            page_bytes,
            stages,
            steps: Vec::new(),
        }
    }

    /// Whether every step of the current stage is finished.
    pub fn stage_finished(&self) -> bool {
        self.steps.iter().all(|s| matches!(s, StepState::Finished))
    }

    /// Whether step `step` is finished.
    pub fn finished(&self, step: usize) -> bool {
        matches!(self.steps.get(step), Some(StepState::Finished) | None)
    }

    /// Starts the next stage; returns what it sends, or `None` when no stage is left.
    /// `failed` nodes are neither sent to nor waited for.
    pub fn next_stage(&mut self, failed: &BTreeSet<NodeId>) -> Option<Vec<Issue>> {
        let specs = self.stages.pop_front()?;
        self.steps.clear();
        let mut issues = Vec::new();
        for spec in specs {
            let step = self.steps.len();
            let state = self.start(spec, step, failed, &mut issues);
            self.steps.push(state);
        }
        Some(issues)
    }

    /// Step `step` got a successful `outcome` from `from` for `directive`; returns a
    /// follow-up to send (the next half of a slot move).
    pub fn progress(
        &mut self,
        step: usize,
        directive: &Directive,
        from: NodeId,
        outcome: DirectiveOutcome,
    ) -> Option<Issue> {
        let epoch = self.epoch;
        let state = self.steps.get_mut(step)?;
        let mut follow_up = None;
        match (state, directive, outcome) {
            (StepState::Create { needed, started }, Directive::StartGroup { .. }, _) => {
                started.insert(from);
                if started.len() < *needed {
                    return None;
                }
            }
            (StepState::Change { sealed, .. }, Directive::ChangeMembers { .. }, _) => {
                *sealed = true
            }
            (StepState::Change { joining, .. }, Directive::JoinGroup { .. }, _) => {
                joining.remove(&from);
            }
            (
                StepState::Move {
                    from: source,
                    to,
                    batch,
                    transfer,
                    ..
                },
                Directive::Freeze { .. },
                DirectiveOutcome::Frozen(mut summary),
            ) => {
                let pairs = std::mem::take(&mut summary.pairs);
                let more = std::mem::replace(&mut summary.more, false);
                let mut readers = vec![from];
                let others = members_of(&self.target, &self.before, *source);
                readers.extend(others.into_iter().filter(|m| *m != from));
                let t = transfer.insert(Transfer {
                    summary,
                    readers,
                    after: None,
                    parts: 0,
                });
                let to_members = self.target.members_of(*to).to_vec();
                let hand = hand_over(t, *to, batch, epoch, pairs, more);
                follow_up = Some(Issue {
                    directive: hand,
                    to: Target::Any(to_members),
                    step: Some(step),
                });
            }
            (
                StepState::Move {
                    to,
                    batch,
                    transfer: Some(t),
                    ..
                },
                Directive::ReadFrozen { .. },
                DirectiveOutcome::Page(page),
            ) => {
                let to_members = self.target.members_of(*to).to_vec();
                let hand = hand_over(t, *to, batch, epoch, page.pairs, page.more);
                follow_up = Some(Issue {
                    directive: hand,
                    to: Target::Any(to_members),
                    step: Some(step),
                });
            }
            (
                StepState::Move {
                    from: source,
                    batch,
                    transfer: Some(t),
                    ..
                },
                Directive::InstallPart { .. },
                _,
            ) => {
                follow_up = Some(Issue {
                    directive: Directive::ReadFrozen {
                        group: *source,
                        slots: batch.clone(),
                        epoch,
                        after: t.after.clone(),
                        max_bytes: self.page_bytes,
                    },
                    to: Target::Any(t.readers.clone()),
                    step: Some(step),
                });
            }
            (
                StepState::Move {
                    from: source,
                    batch,
                    transfer,
                    rest,
                    ..
                },
                Directive::Install { .. },
                _,
            ) => {
                if let Some(t) = transfer.take() {
                    tracing::info!(%epoch, slots = batch.len(), pairs = t.summary.count,
                        bytes = t.summary.bytes, parts = t.parts, "slot batch moved");
                }
                match rest.pop_front() {
                    Some(next) => {
                        *batch = next;
                        let members = members_of(&self.target, &self.before, *source);
                        follow_up = Some(freeze(*source, batch.clone(), epoch, members, step));
                    }
                    None => self.steps[step] = StepState::Finished,
                }
            }
            (state, directive, _) => {
                debug_assert!(false, "{directive:?} does not belong to {state:?}");
                return None;
            }
        }
        if follow_up.is_none() {
            self.settle(step);
        }
        follow_up
    }

    /// Step `step` stops waiting for `node`, declared failed.
    pub fn gave_up(&mut self, step: usize, directive: &Directive, node: NodeId) {
        if let (Some(StepState::Change { joining, .. }), Directive::JoinGroup { .. }) =
            (self.steps.get_mut(step), directive)
        {
            joining.remove(&node);
        }
        self.settle(step);
    }

    /// Marks step `step` finished if it waits for nothing more.
    fn settle(&mut self, step: usize) {
        let Some(state) = self.steps.get_mut(step) else {
            return;
        };
        let done = match state {
            StepState::Create { needed, started } => started.len() >= *needed,
            StepState::Change { sealed, joining } => *sealed && joining.is_empty(),
            // A move finishes on its last install, in `progress`.
            StepState::Move { .. } => false,
            StepState::Finished => true,
        };
        if done {
            *state = StepState::Finished;
        }
    }

    /// The state of a step starting now, pushing what it sends.
    fn start(
        &self,
        spec: Spec,
        step: usize,
        failed: &BTreeSet<NodeId>,
        issues: &mut Vec<Issue>,
    ) -> StepState {
        let alive = |n: &NodeId| !failed.contains(n);
        match spec {
            Spec::Create { group, members } => {
                let config = self.target.group(group).map_or(1, |g| g.config);
                for &m in members.iter().filter(|m| alive(m)) {
                    issues.push(Issue {
                        directive: Directive::StartGroup {
                            group,
                            config,
                            members: members.clone(),
                            slots: Vec::new(),
                        },
                        to: Target::Node(m),
                        step: Some(step),
                    });
                }
                StepState::Create {
                    needed: majority(members.len()),
                    started: BTreeSet::new(),
                }
            }
            Spec::Change {
                group,
                from_config,
                new_config,
                members,
            } => {
                let old = self.before.members_of(group);
                let mut sources: Vec<NodeId> = old.to_vec();
                sources.extend(members.iter().filter(|m| !old.contains(m)));
                let joining: BTreeSet<NodeId> = members
                    .iter()
                    .copied()
                    .filter(|m| !old.contains(m) && alive(m))
                    .collect();
                for &n in &joining {
                    issues.push(Issue {
                        directive: Directive::JoinGroup {
                            group,
                            after: from_config,
                            next: new_config,
                            sources: sources.clone(),
                        },
                        to: Target::Node(n),
                        step: Some(step),
                    });
                }
                issues.push(Issue {
                    directive: Directive::ChangeMembers {
                        group,
                        from_config,
                        new_config,
                        members,
                    },
                    to: Target::Any(sources),
                    step: Some(step),
                });
                StepState::Change {
                    sealed: false,
                    joining,
                }
            }
            Spec::Move { from, to, slots } => {
                let mut rest: VecDeque<Vec<Slot>> = slots
                    .chunks(self.batch_slots)
                    .map(<[Slot]>::to_vec)
                    .collect();
                let batch = rest.pop_front().expect("a move has slots");
                let members = members_of(&self.target, &self.before, from);
                issues.push(freeze(from, batch.clone(), self.epoch, members, step));
                StepState::Move {
                    from,
                    to,
                    batch,
                    transfer: None,
                    rest,
                }
            }
            Spec::Dissolve { group } => {
                for &m in self.before.members_of(group).iter().filter(|m| alive(m)) {
                    issues.push(Issue {
                        directive: Directive::StopGroup { group },
                        to: Target::Node(m),
                        step: None,
                    });
                }
                StepState::Finished
            }
        }
    }
}

/// The members of `group` to ask for a freeze: the target's (after any member change), or
/// the current map's for a group being dissolved.
fn members_of(target: &SlotMap, before: &SlotMap, group: GroupId) -> Vec<NodeId> {
    match target.group(group) {
        Some(g) => g.members.clone(),
        None => before.members_of(group).to_vec(),
    }
}

/// What to send the destination with a page read from the source: a part to stage while
/// more pages follow, else the install, carrying this last page and the freeze's summary.
fn hand_over(
    t: &mut Transfer,
    to: GroupId,
    batch: &[Slot],
    epoch: Epoch,
    pairs: Vec<(Bytes, Bytes)>,
    more: bool,
) -> Directive {
    if !more {
        let data = SlotData {
            pairs,
            ..t.summary.clone()
        };
        return Directive::Install {
            group: to,
            slots: batch.to_vec(),
            epoch,
            data,
        };
    }
    debug_assert!(!pairs.is_empty(), "a page followed by more holds a pair");
    if let Some((k, _)) = pairs.last() {
        t.after = Some(k.clone());
    }
    t.parts += 1;
    Directive::InstallPart {
        group: to,
        slots: batch.to_vec(),
        epoch,
        pairs,
    }
}

fn freeze(
    group: GroupId,
    slots: Vec<Slot>,
    epoch: Epoch,
    members: Vec<NodeId>,
    step: usize,
) -> Issue {
    Issue {
        directive: Directive::Freeze {
            group,
            slots,
            epoch,
        },
        to: Target::Any(members),
        step: Some(step),
    }
}

/// Actions of one kind run in one stage; standby changes need no work.
fn kind(action: &Action) -> Option<u8> {
    match action {
        Action::CreateGroup { .. } => Some(0),
        Action::ChangeMembers { .. } => Some(1),
        Action::MoveSlot { .. } => Some(2),
        Action::DissolveGroup { .. } => Some(3),
        Action::StandbyAdded(_) | Action::StandbyRemoved(_) => None,
    }
}

/// Turns the slot moves gathered so far into the last stage's steps, one per pair.
fn flush_moves(
    stages: &mut VecDeque<Vec<Spec>>,
    moves: &mut BTreeMap<(GroupId, GroupId), Vec<Slot>>,
) {
    if moves.is_empty() {
        return;
    }
    let stage = stages.back_mut().expect("moves belong to a stage");
    for ((from, to), slots) in std::mem::take(moves) {
        stage.push(Spec::Move { from, to, slots });
    }
}
