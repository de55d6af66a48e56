//! [`LocalView`]: what a node answers about itself on its client endpoint — the map it routes
//! by and its status as its own components see it — and where it relays operators' requests
//! (to its coordinator, if it has one).

use std::time::Duration;

use futures::future::BoxFuture;
use kv_components::reconfig::component::GroupStatus;
use kv_components::reconfig::StageKind;
use kv_ports::ids::NodeId;
use kv_ports::membership::{Epoch, SlotMap};
use tokio::sync::watch;

use super::groups::GroupHost;
use super::membership::{self, SuspectSet};
use crate::coordinator::CoordinatorAddr;
use crate::native::{
    AdminAnswer, AdminRequest, MemberStage, MemberStatus, NodeStatus, NodeView, StatusReport,
};

/// How long a status answer waits for one group member before leaving it out.
const MEMBER_TIMEOUT: Duration = Duration::from_millis(300);

/// How long a relayed operator's request may take: a reconfiguration moves groups and slots.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

/// What a node without a coordinator answers operators.
pub const NO_COORDINATOR: &str =
    "this node serves a static map without a coordinator: its cluster cannot be changed";

/// See the module documentation.
pub struct LocalView {
    /// This node.
    pub me: NodeId,
    /// The newest map applied or being applied.
    pub maps: watch::Receiver<SlotMap>,
    /// The groups this node is a member of.
    pub groups: GroupHost,
    /// Nodes its failure detector suspects.
    pub suspects: SuspectSet,
    /// Its coordinator (`None`: a static map).
    pub coordinator: Option<CoordinatorAddr>,
}

impl NodeView for LocalView {
    fn map(&self, have: Epoch) -> Option<SlotMap> {
        let map = self.maps.borrow();
        (map.is_formed() && map.epoch > have).then(|| map.clone())
    }

    fn status(&self) -> BoxFuture<'static, StatusReport> {
        let host = self.groups.clone();
        let id = self.me;
        let epoch = self.maps.borrow().epoch;
        let suspected = membership::lock(&self.suspects).iter().copied().collect();
        Box::pin(async move {
            let groups = host
                .status(MEMBER_TIMEOUT)
                .await
                .into_iter()
                .map(member_status)
                .collect();
            StatusReport::Node(NodeStatus {
                id,
                epoch,
                groups,
                suspected,
            })
        })
    }

    fn admin(&self, request: AdminRequest) -> BoxFuture<'static, AdminAnswer> {
        let coordinator = self.coordinator;
        Box::pin(relay(coordinator, request))
    }
}

/// Sends an operator's request to the coordinator and passes its answer on.
pub async fn relay(coordinator: Option<CoordinatorAddr>, request: AdminRequest) -> AdminAnswer {
    let Some(addr) = coordinator else {
        return AdminAnswer::Refused(NO_COORDINATOR.into());
    };
    tracing::info!(?request, %addr, "relaying an operator's request to the coordinator");
    match crate::coordinator::admin(addr, request, ADMIN_TIMEOUT).await {
        Ok(answer) => answer,
        Err(e) => AdminAnswer::Refused(format!("the coordinator did not answer: {e}")),
    }
}

/// A group member's status as the native protocol shows it.
fn member_status(s: GroupStatus) -> MemberStatus {
    let stage = match s.stage {
        StageKind::Active if s.catching_up => MemberStage::CatchingUp,
        StageKind::Active => MemberStage::Active,
        StageKind::Joining => MemberStage::Joining,
        StageKind::Leaving => MemberStage::Leaving,
        StageKind::Retired => MemberStage::Retired,
    };
    MemberStatus {
        group: s.group,
        leader: s.leader,
        decided: s.decided,
        config: s.config,
        stage,
    }
}
