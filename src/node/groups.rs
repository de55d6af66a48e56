//! Following the slot map: every new map is applied to the node's components in order —
//! peers and failure detection first, then the router, then a group member for each group
//! this node has newly joined — so no group member ever sends to a peer the link does not
//! know.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use kameo::actor::ActorRef;
use kv_components::group::{start_member, GroupMember, MemberConfig};
use kv_components::overlay::component::{AttachGroup, InstallMap, Overlay};
use kv_components::perfect_link::PerfectLink;
use kv_components::task::TaskGuard;
use kv_components::timer::Timer;
use kv_ports::component::{connect, ConnectError};
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::kv::KvPort;
use kv_ports::membership::{Epoch, SlotMap};
use kv_ports::supervisor::Supervisor;
use tokio::sync::watch;

use super::membership::{ApplyNodes, Membership};

/// The groups this node is a member of, shared with the status answer.
pub type LocalGroups = Arc<Mutex<BTreeMap<GroupId, GroupMember>>>;

/// Locks the table; entries are only ever inserted whole, so poison is ignored.
pub fn lock(groups: &LocalGroups) -> MutexGuard<'_, BTreeMap<GroupId, GroupMember>> {
    groups.lock().unwrap_or_else(|e| e.into_inner())
}

/// The node's long-lived components a map is applied to.
pub struct Wiring {
    /// This node.
    pub me: NodeId,
    /// Group members are started under it.
    pub supervisor: ActorRef<Supervisor>,
    /// The node's network.
    pub link: ActorRef<PerfectLink>,
    /// The node's timer.
    pub timer: ActorRef<Timer>,
    /// The router.
    pub overlay: ActorRef<Overlay>,
    /// Peers and failure detection.
    pub membership: ActorRef<Membership>,
    /// The groups started so far.
    pub groups: LocalGroups,
}

/// Applies every map published on `maps`, newest first wins; the task ends with the node.
pub fn follow(wiring: Wiring, mut maps: watch::Receiver<SlotMap>) -> TaskGuard {
    TaskGuard::spawn(async move {
        let mut applied = Epoch(0);
        loop {
            let map = maps.borrow_and_update().clone();
            if map.epoch > applied && map.is_formed() {
                if let Err(e) = apply(&wiring, &map).await {
                    tracing::error!(error = %e, "cannot apply the slot map; node stopping");
                    let _ = wiring.supervisor.stop_gracefully().await;
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

async fn apply(w: &Wiring, map: &SlotMap) -> Result<(), ConnectError> {
    let placed = match map.group_of_node(w.me) {
        Some(g) => format!("member of group {g}"),
        None => "standby".to_owned(),
    };
    tracing::info!(epoch = map.epoch.0, groups = map.groups.len(), %placed, "applying slot map");
    let _ = w.membership.tell(ApplyNodes(map.clone())).await;
    let _ = w.overlay.tell(InstallMap(map.clone())).await;
    for group in &map.groups {
        let started = lock(&w.groups).contains_key(&group.id);
        if started || !group.members.contains(&w.me) {
            continue;
        }
        let config = MemberConfig::new(group.id, w.me, group.members.clone());
        let member = start_member(&w.supervisor, &w.link, &w.timer, config).await?;
        let conn = connect::<KvPort, _, _>(&member.replica, &w.overlay).await?;
        let _ = w
            .overlay
            .tell(AttachGroup {
                group: group.id,
                conn,
            })
            .await;
        lock(&w.groups).insert(group.id, member);
    }
    Ok(())
}
