//! [`LocalView`]: what a node answers about itself on its client endpoint — the map it routes
//! by, and its status as its own components see it.

use std::time::Duration;

use futures::future::BoxFuture;
use kv_components::sequence_paxos::component::QueryStatus;
use kv_ports::ids::NodeId;
use kv_ports::membership::{Epoch, SlotMap};
use tokio::sync::watch;

use super::groups::{self, LocalGroups};
use super::membership::{self, SuspectSet};
use crate::native::{MemberStatus, NodeStatus, NodeView, StatusReport};

/// How long a status answer waits for one group member before leaving it out.
const MEMBER_TIMEOUT: Duration = Duration::from_millis(300);

/// See the module documentation.
pub struct LocalView {
    /// This node.
    pub me: NodeId,
    /// The newest map applied or being applied.
    pub maps: watch::Receiver<SlotMap>,
    /// The groups this node is a member of.
    pub groups: LocalGroups,
    /// Nodes its failure detector suspects.
    pub suspects: SuspectSet,
}

impl NodeView for LocalView {
    fn map(&self, have: Epoch) -> Option<SlotMap> {
        let map = self.maps.borrow();
        (map.is_formed() && map.epoch > have).then(|| map.clone())
    }

    fn status(&self) -> BoxFuture<'static, StatusReport> {
        let members: Vec<_> = groups::lock(&self.groups)
            .iter()
            .map(|(g, m)| (*g, m.paxos.clone()))
            .collect();
        let id = self.me;
        let epoch = self.maps.borrow().epoch;
        let suspected = membership::lock(&self.suspects).iter().copied().collect();
        Box::pin(async move {
            let mut groups = Vec::new();
            for (group, paxos) in members {
                let asked = tokio::time::timeout(MEMBER_TIMEOUT, paxos.ask(QueryStatus)).await;
                if let Ok(Ok(s)) = asked {
                    groups.push(MemberStatus {
                        group,
                        leader: s.leader,
                        decided: s.decided,
                    });
                }
            }
            StatusReport::Node(NodeStatus {
                id,
                epoch,
                groups,
                suspected,
            })
        })
    }
}
