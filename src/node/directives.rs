//! The coordinator's directives, carried out on this node: start, join, change, freeze,
//! read frozen pages, install (in parts) and stop groups (see [`Directive`]).
//!
//! Each directive runs in a task of its own, so a slow one (a freeze waits for its decision)
//! never holds up the session's reading loop or the other directives; its answer goes out on
//! the session as [`ClientFrame::DirectiveDone`], whenever it comes. Before acting, the node
//! adds the directive's peers to its link and failure detector. Directives are idempotent and
//! the coordinator re-sends unanswered ones: a re-sent directive still running here is left to
//! its task, and one already done is answered `Done` again without doing it twice (a group that
//! was started, retired and stopped must not be started again by an old directive).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kameo::actor::ActorRef;
use kv_components::reconfig::component::{
    ChangeMembers, ChangeOutcome, GroupComponent, ReadFrozen, Submit,
};
use kv_components::reconfig::{ChangeError, GroupNode};
use kv_components::sequence_paxos::{ProposeError, StopSign};
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::kv::{KvError, KvOp, KvResult, SlotPage};
use kv_ports::membership::{Epoch, NodeInfo, Slot};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::groups::GroupHost;
use super::membership::{self, AddPeers, Membership, SuspectSet};
use crate::coordinator::session::SessionAgent;
use crate::native::{ClientFrame, Directive, DirectiveId, DirectiveOutcome};

/// The longest a directive may run here before it is answered `Failed` (the group's own
/// answers are bounded well below this; this only guards against a lost one).
const DIRECTIVE_LIMIT: Duration = Duration::from_secs(10);

/// How many finished directives are remembered to answer re-sends.
const REMEMBERED: usize = 4096;

/// Carries out directives for one node; see the module documentation.
pub struct Directives {
    host: GroupHost,
    membership: ActorRef<Membership>,
    suspects: SuspectSet,
    answers: UnboundedSender<ClientFrame>,
    table: Arc<Mutex<Table>>,
    /// The running directives' tasks: aborted when the node's session (which owns this) ends.
    tasks: Mutex<JoinSet<()>>,
}

/// Which directives run now and which are done.
#[derive(Default)]
struct Table {
    running: BTreeSet<DirectiveId>,
    done: BTreeSet<DirectiveId>,
}

impl Directives {
    /// Directives run on `host`'s groups, peers added through `membership`, answers sent to
    /// `answers` (the node's session).
    pub fn new(
        host: GroupHost,
        membership: ActorRef<Membership>,
        suspects: SuspectSet,
        answers: UnboundedSender<ClientFrame>,
    ) -> Directives {
        Directives {
            host,
            membership,
            suspects,
            answers,
            table: Arc::default(),
            tasks: Mutex::new(JoinSet::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SessionAgent for Directives {
    fn directive(&self, id: DirectiveId, peers: Vec<NodeInfo>, directive: Directive) {
        {
            let mut table = lock(&self.table);
            if table.done.contains(&id) {
                let outcome = DirectiveOutcome::Done;
                let _ = self
                    .answers
                    .send(ClientFrame::DirectiveDone { id, outcome });
                return;
            }
            if !table.running.insert(id) {
                tracing::debug!(?id, "directive re-sent while it runs; its task answers");
                return;
            }
        }
        tracing::info!(?id, ?directive, peers = peers.len(), "directive");
        let run = Run {
            host: self.host.clone(),
            membership: self.membership.clone(),
        };
        let (table, answers) = (self.table.clone(), self.answers.clone());
        let mut tasks = lock(&self.tasks);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            // Answers that carry data are not remembered: a re-sent one is done again.
            let remember = !matches!(
                directive,
                Directive::Freeze { .. } | Directive::ReadFrozen { .. }
            );
            let outcome = tokio::time::timeout(DIRECTIVE_LIMIT, run.carry_out(peers, directive))
                .await
                .unwrap_or_else(|_| DirectiveOutcome::Failed("timed out on the node".into()));
            tracing::info!(?id, ?outcome, "directive answered");
            {
                let mut table = lock(&table);
                table.running.remove(&id);
                // A freeze's answer is its data: a re-sent one is frozen again (idempotent),
                // a re-sent read reads the same page.
                if remember && outcome == DirectiveOutcome::Done {
                    table.done.insert(id);
                    if table.done.len() > REMEMBERED {
                        table.done.pop_first();
                    }
                }
            }
            let _ = answers.send(ClientFrame::DirectiveDone { id, outcome });
        });
    }

    fn suspected(&self) -> Vec<NodeId> {
        membership::lock(&self.suspects).iter().copied().collect()
    }
}

/// What one directive's task needs.
struct Run {
    host: GroupHost,
    membership: ActorRef<Membership>,
}

impl Run {
    async fn carry_out(self, peers: Vec<NodeInfo>, directive: Directive) -> DirectiveOutcome {
        // Asked, not told: once answered, the link knows the peers, so the group members
        // started or asked below can reach them.
        if !peers.is_empty() && self.membership.ask(AddPeers(peers)).await.is_err() {
            return DirectiveOutcome::Failed("the node is stopping".into());
        }
        let me = self.host.me();
        match directive {
            Directive::StartGroup {
                group,
                config,
                members,
                slots,
            } => {
                if !members.contains(&me) {
                    return failed(format!("{me} is not a member of {group}'s configuration"));
                }
                let started = self
                    .host
                    .start(group, |cfg| {
                        GroupNode::with_slots(cfg, config, members, slots)
                    })
                    .await;
                self.started(group, started)
            }
            Directive::JoinGroup {
                group,
                after,
                next,
                sources,
            } => {
                if next <= after {
                    return failed(format!("configuration {next} cannot follow {after}"));
                }
                let started = self
                    .host
                    .start(group, |cfg| GroupNode::joining(cfg, after, next, sources))
                    .await;
                self.started(group, started)
            }
            Directive::ChangeMembers {
                group,
                from_config,
                new_config,
                members,
            } => {
                let stopsign = StopSign {
                    next_config: new_config,
                    members,
                    metadata: Vec::new(),
                };
                self.change(group, from_config, stopsign).await
            }
            Directive::Freeze {
                group,
                slots,
                epoch,
            } => match self.submit(group, KvOp::Freeze { slots, epoch }).await {
                Ok(KvResult::Frozen(data)) => DirectiveOutcome::Frozen(data),
                other => outcome_of(group, other),
            },
            Directive::ReadFrozen {
                group,
                slots,
                epoch,
                after,
                max_bytes,
            } => match self
                .read_frozen(group, slots, epoch, after, max_bytes)
                .await
            {
                Ok(page) => DirectiveOutcome::Page(page),
                Err(e) => outcome_of(group, Err(e)),
            },
            Directive::InstallPart {
                group,
                slots,
                epoch,
                pairs,
            } => {
                let op = KvOp::InstallPart {
                    slots,
                    epoch,
                    pairs,
                };
                match self.submit(group, op).await {
                    Ok(KvResult::Installed) => DirectiveOutcome::Done,
                    other => outcome_of(group, other),
                }
            }
            Directive::Install {
                group,
                slots,
                epoch,
                data,
            } => {
                let op = KvOp::Install { slots, epoch, data };
                match self.submit(group, op).await {
                    Ok(KvResult::Installed) => DirectiveOutcome::Done,
                    other => outcome_of(group, other),
                }
            }
            Directive::StopGroup { group } => {
                self.host.stop(group).await;
                DirectiveOutcome::Done
            }
        }
    }

    fn started(
        &self,
        group: GroupId,
        started: Result<bool, kv_ports::component::ConnectError>,
    ) -> DirectiveOutcome {
        match started {
            Ok(true) => DirectiveOutcome::Done,
            Ok(false) => {
                tracing::debug!(%group, "group already runs here");
                DirectiveOutcome::Done
            }
            Err(e) => failed(format!("cannot start {group}: {e}")),
        }
    }

    /// The local member of `group`, or why there is none.
    async fn member(&self, group: GroupId) -> Result<ActorRef<GroupComponent>, DirectiveOutcome> {
        match self.host.get(group).await {
            Some(member) => Ok(member),
            None => Err(failed(format!(
                "no member of {group} runs on {}",
                self.host.me()
            ))),
        }
    }

    async fn change(&self, group: GroupId, from_config: u32, ss: StopSign) -> DirectiveOutcome {
        if ss.next_config <= from_config || ss.members.is_empty() {
            return failed(format!(
                "configuration {} with {} members cannot follow {from_config}",
                ss.next_config,
                ss.members.len()
            ));
        }
        let Some(member) = self.host.get(group).await else {
            // A member that retired from the group left a sealed configuration behind.
            if self.host.left(group).await >= Some(from_config) {
                return DirectiveOutcome::Done;
            }
            return failed(format!("no member of {group} runs on {}", self.host.me()));
        };
        let (done, answer) = oneshot::channel();
        let change = ChangeMembers {
            from_config,
            stopsign: ss,
            done,
        };
        if member.tell(change).try_send().is_err() {
            return failed(format!("the member of {group} stopped"));
        }
        let me = self.host.me();
        match answer.await {
            Ok(ChangeOutcome::Sealed) => DirectiveOutcome::Done,
            Ok(ChangeOutcome::Refused { error, leader }) => match error {
                ChangeError::WrongConfig { asked, current } if current > asked => {
                    DirectiveOutcome::Done
                }
                ChangeError::Refused(ProposeError::NoLeader) => DirectiveOutcome::NotLeader {
                    hint: leader.filter(|&l| l != me),
                },
                error => failed(format!("{group}: {error}")),
            },
            // Not sealed in time: the leader it knows (itself too, if it leads) is the best bet,
            // but a leader that could not seal it will not do better on a retry.
            Ok(ChangeOutcome::Waiting { leader }) => DirectiveOutcome::NotLeader {
                hint: leader.filter(|&l| l != me),
            },
            Err(_) => failed(format!("the member of {group} stopped")),
        }
    }

    /// Runs a slot-move command through the local member's log.
    async fn submit(&self, group: GroupId, op: KvOp) -> Result<KvResult, SubmitError> {
        let member = self.member(group).await.map_err(SubmitError::Outcome)?;
        let (done, answer) = oneshot::channel();
        if member.tell(Submit { op, done }).try_send().is_err() {
            return Err(SubmitError::Outcome(failed(format!(
                "the member of {group} stopped"
            ))));
        }
        match answer.await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(SubmitError::Kv(e)),
            Err(_) => Err(SubmitError::Outcome(failed(format!(
                "the member of {group} stopped"
            )))),
        }
    }
}

impl Run {
    /// Reads a page of frozen pairs from the local member's replica (no log involved).
    async fn read_frozen(
        &self,
        group: GroupId,
        slots: Vec<Slot>,
        epoch: Epoch,
        after: Option<bytes::Bytes>,
        max_bytes: u32,
    ) -> Result<SlotPage, SubmitError> {
        let member = self.member(group).await.map_err(SubmitError::Outcome)?;
        let (done, answer) = oneshot::channel();
        let read = ReadFrozen {
            slots,
            epoch,
            after,
            max_bytes: max_bytes as usize,
            done,
        };
        let stopped = || SubmitError::Outcome(failed(format!("the member of {group} stopped")));
        if member.tell(read).try_send().is_err() {
            return Err(stopped());
        }
        match answer.await {
            Ok(page) => page.map_err(SubmitError::Kv),
            Err(_) => Err(stopped()),
        }
    }
}

/// Why a slot-move command has no result.
enum SubmitError {
    /// The directive's outcome is decided already (no member here, it stopped).
    Outcome(DirectiveOutcome),
    /// The group refused it.
    Kv(KvError),
}

/// The outcome of a slot-move command that did not give the expected result.
fn outcome_of(group: GroupId, result: Result<KvResult, SubmitError>) -> DirectiveOutcome {
    match result {
        Ok(other) => failed(format!("{group} answered {other:?}")),
        Err(SubmitError::Outcome(outcome)) => outcome,
        Err(SubmitError::Kv(KvError::NotLeader { hint })) => DirectiveOutcome::NotLeader { hint },
        // The configuration here ended: the next one's members take it (retrying is safe, a
        // repeated freeze answers the same pairs and a repeated install changes nothing).
        Err(SubmitError::Kv(KvError::Sealed { .. })) => DirectiveOutcome::NotLeader { hint: None },
        // A stale, misdirected or malformed move.
        Err(SubmitError::Kv(e)) => failed(format!("{group}: {e}")),
    }
}

fn failed(why: String) -> DirectiveOutcome {
    tracing::warn!(%why, "directive failed");
    DirectiveOutcome::Failed(why)
}
