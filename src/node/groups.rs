//! The node's replication-group members: one [`GroupComponent`] per group this node serves,
//! started and stopped by the coordinator's directives (or, for a node serving a static map,
//! from that map), each wired to the node's link, timer and router.
//!
//! The map itself is applied by [`follow`]: peers and failure detection first, then the
//! router. Groups are never started from a coordinator's map: the coordinator sends
//! `StartGroup` before the map that names the group.

use std::collections::BTreeMap;
use std::sync::Arc;

use kameo::actor::ActorRef;
use kv_components::overlay::component::{AttachGroup, DetachGroup, InstallMap, Overlay};
use kv_components::perfect_link::PerfectLink;
use kv_components::reconfig::component::{
    shell_config, GroupArgs, GroupComponent, GroupStopped, QueryGroup,
};
use kv_components::reconfig::GroupNode;
use kv_components::task::TaskGuard;
use kv_components::timer::Timer;
use kv_ports::component::{connect, ConnectError, Start};
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::kv::KvPort;
use kv_ports::membership::{Epoch, SlotMap};
use kv_ports::network::NetworkPort;
use kv_ports::supervisor::{spawn_child, Supervisor};
use kv_ports::timer::TimerPort;
use tokio::sync::{mpsc, watch, Mutex};

use super::membership::{ApplyNodes, Membership};
use crate::coordinator::session::GroupReporter;
use crate::native::{GroupReport, SlotRecord};
use futures::future::BoxFuture;
use kv_components::replica::MoveKind;

/// The node's long-lived components groups are wired to, and the groups running now.
#[derive(Clone)]
pub struct GroupHost {
    inner: Arc<Inner>,
}

struct Inner {
    me: NodeId,
    supervisor: ActorRef<Supervisor>,
    link: ActorRef<PerfectLink>,
    timer: ActorRef<Timer>,
    overlay: ActorRef<Overlay>,
    /// Held while a group starts or stops, so two directives for one group never race.
    groups: Mutex<Table>,
    stopped: mpsc::UnboundedSender<GroupStopped>,
}

impl GroupHost {
    /// The host of node `me`'s groups, and the receiver of their retirement notices (hand it
    /// to [`GroupHost::detach_retired`]).
    pub fn new(
        me: NodeId,
        supervisor: ActorRef<Supervisor>,
        link: ActorRef<PerfectLink>,
        timer: ActorRef<Timer>,
        overlay: ActorRef<Overlay>,
    ) -> (GroupHost, mpsc::UnboundedReceiver<GroupStopped>) {
        let (stopped, notices) = mpsc::unbounded_channel();
        let inner = Inner {
            me,
            supervisor,
            link,
            timer,
            overlay,
            groups: Mutex::new(Table::default()),
            stopped,
        };
        let host = GroupHost {
            inner: Arc::new(inner),
        };
        (host, notices)
    }

    /// This node.
    pub fn me(&self) -> NodeId {
        self.inner.me
    }

    /// Starts a member of `group` running `node` (built by `make` with this node's settings),
    /// wires it and attaches it to the router. False when a member of the group already runs
    /// here (nothing changes).
    pub async fn start(
        &self,
        group: GroupId,
        make: impl FnOnce(kv_components::reconfig::GroupNodeConfig) -> GroupNode,
    ) -> Result<bool, ConnectError> {
        let w = &self.inner;
        let mut table = w.groups.lock().await;
        if table.running.get(&group).is_some_and(|g| g.is_alive()) {
            return Ok(false);
        }
        let node = make(shell_config(w.me));
        let mut args = GroupArgs::new(group, node);
        args.stopped = Some(w.stopped.clone());
        let member = spawn_child::<GroupComponent>(&w.supervisor, args).await;
        connect::<NetworkPort, _, _>(&w.link, &member).await?;
        connect::<TimerPort, _, _>(&w.timer, &member).await?;
        let conn = connect::<KvPort, _, _>(&member, &w.overlay).await?;
        member
            .tell(Start)
            .await
            .map_err(|_| ConnectError::Stopped {
                port: "Start",
                component: "group member",
            })?;
        // Replaces a stopped member's attachment, if any.
        let _ = w.overlay.tell(DetachGroup(group)).await;
        let _ = w.overlay.tell(AttachGroup { group, conn }).await;
        table.running.insert(group, member);
        Ok(true)
    }

    /// Stops this node's member of `group` and detaches it from the router; false if none ran.
    pub async fn stop(&self, group: GroupId) -> bool {
        let w = &self.inner;
        let mut table = w.groups.lock().await;
        let Some(member) = table.running.remove(&group) else {
            return false;
        };
        let _ = w.overlay.tell(DetachGroup(group)).await;
        let _ = member.stop_gracefully().await;
        tracing::info!(%group, node = %w.me, "group member stopped");
        true
    }

    /// The running member of `group`, if any.
    pub async fn get(&self, group: GroupId) -> Option<ActorRef<GroupComponent>> {
        let table = self.inner.groups.lock().await;
        table.running.get(&group).filter(|g| g.is_alive()).cloned()
    }

    /// The newest configuration of `group` known sealed by this node's member that retired
    /// from it, if one did.
    pub async fn left(&self, group: GroupId) -> Option<u32> {
        self.inner.groups.lock().await.left.get(&group).copied()
    }

    /// Every running member, by group.
    pub async fn all(&self) -> Vec<(GroupId, ActorRef<GroupComponent>)> {
        let table = self.inner.groups.lock().await;
        let running = table.running.iter();
        running.map(|(g, a)| (*g, a.clone())).collect()
    }

    /// Detaches every member that retired (and stopped itself), as its notices come; the task
    /// ends with the node.
    pub fn detach_retired(&self, mut notices: mpsc::UnboundedReceiver<GroupStopped>) -> TaskGuard {
        let host = self.clone();
        TaskGuard::spawn(async move {
            while let Some(notice) = notices.recv().await {
                let w = &host.inner;
                let mut table = w.groups.lock().await;
                if let Some(sealed) = notice.sealed {
                    let left = table.left.entry(notice.group).or_insert(sealed);
                    *left = (*left).max(sealed);
                }
                let same = table
                    .running
                    .get(&notice.group)
                    .is_some_and(|g| g.id() == notice.actor);
                if same {
                    table.running.remove(&notice.group);
                    let _ = w.overlay.tell(DetachGroup(notice.group)).await;
                    tracing::info!(group = %notice.group, node = %w.me, "retired group member detached");
                }
            }
        })
    }

    /// Where each running member stands (members that do not answer in time are left out).
    pub async fn status(
        &self,
        within: std::time::Duration,
    ) -> Vec<kv_components::reconfig::component::GroupStatus> {
        let mut out = Vec::new();
        for (_, member) in self.all().await {
            if let Ok(Ok(s)) = tokio::time::timeout(within, member.ask(QueryGroup)).await {
                out.push(s);
            }
        }
        out
    }
}

/// How long a group query waits for one member before leaving it out.
const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

impl GroupReporter for GroupHost {
    fn report(&self) -> BoxFuture<'static, Vec<GroupReport>> {
        let host = self.clone();
        Box::pin(async move {
            let statuses = host.status(REPORT_TIMEOUT).await;
            statuses.into_iter().map(report_of).collect()
        })
    }
}

/// The wire form of one member's status.
fn report_of(s: kv_components::reconfig::component::GroupStatus) -> GroupReport {
    let (owned, moves) = match &s.ownership {
        Some(o) => {
            let owned = o.owned();
            let moves = (0..kv_ports::membership::SLOTS as u16)
                .map(kv_ports::membership::Slot)
                .filter_map(|slot| {
                    o.last_move(slot).map(|m| SlotRecord {
                        slot,
                        installed: m.kind == MoveKind::Install,
                        epoch: m.epoch,
                    })
                })
                .collect();
            (owned, moves)
        }
        None => (Vec::new(), Vec::new()),
    };
    GroupReport {
        group: s.group,
        config: s.config,
        active: s.ownership.is_some(),
        members: s.members,
        leading: s.leading,
        applied: s.applied,
        owned,
        moves,
    }
}

/// The running members, and the configurations retired members left.
#[derive(Default)]
struct Table {
    running: BTreeMap<GroupId, ActorRef<GroupComponent>>,
    /// For each group whose member here retired: the newest configuration it knew sealed.
    left: BTreeMap<GroupId, u32>,
}

/// Applies every map published on `maps` to the node's peers and router, newest first wins;
/// with `start_groups` (a node serving a static map, without coordinator), it also starts a
/// member of every group the map names this node in. The task ends with the node.
pub fn follow(
    host: GroupHost,
    membership: ActorRef<Membership>,
    mut maps: watch::Receiver<SlotMap>,
    start_groups: bool,
) -> TaskGuard {
    TaskGuard::spawn(async move {
        let mut applied = Epoch(0);
        loop {
            let map = maps.borrow_and_update().clone();
            if map.epoch > applied && map.is_formed() {
                if let Err(e) = apply(&host, &membership, &map, start_groups).await {
                    tracing::error!(error = %e, "cannot apply the slot map; node stopping");
                    let _ = host.inner.supervisor.stop_gracefully().await;
                    return;
                }
                applied = map.epoch;
            }
            if maps.changed().await.is_err() {
                return;
            }
        }
    })
}

async fn apply(
    host: &GroupHost,
    membership: &ActorRef<Membership>,
    map: &SlotMap,
    start_groups: bool,
) -> Result<(), ConnectError> {
    let me = host.me();
    let placed = match map.group_of_node(me) {
        Some(g) => format!("member of group {g}"),
        None => "standby".to_owned(),
    };
    tracing::info!(epoch = map.epoch.0, groups = map.groups.len(), %placed, "applying slot map");
    // Asked, not told: the link knows the peers before any group member starts sending.
    let _ = membership.ask(ApplyNodes(map.clone())).await;
    let _ = host.inner.overlay.tell(InstallMap(map.clone())).await;
    if !start_groups {
        return Ok(());
    }
    for group in map.groups.iter().filter(|g| g.members.contains(&me)) {
        let (config, members) = (group.config, group.members.clone());
        let slots = map.slots_of(group.id);
        host.start(group.id, |cfg| {
            GroupNode::with_slots(cfg, config, members, slots)
        })
        .await?;
    }
    Ok(())
}
