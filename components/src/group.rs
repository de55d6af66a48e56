//! Assembly of one replication-group member on one node: leader election, Sequence Paxos and
//! the replica, wired to each other and to the node's network and timer.
//!
//! A fixed-membership member, kept for the tests and benchmarks that drive the three
//! components one by one. A data node runs [`crate::reconfig::component::GroupComponent`]
//! instead: one actor per group driving the pure `GroupNode`, which changes members.
//!
//! ```text
//!            KvPort (clients, router)
//!                  │
//!            ReplicaComponent
//!                  │ ConsensusPort
//!                Paxos ── LeaderElectionPort ── LeaderElection
//!                  │                                 │
//!             NetworkPort, TimerPort           NetworkPort, TimerPort
//! ```

use std::time::Duration;

use kameo::actor::ActorRef;
use kv_ports::component::{connect, ConnectError, Provides, Start};
use kv_ports::consensus::ConsensusPort;
use kv_ports::election::LeaderElectionPort;
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::network::NetworkPort;
use kv_ports::supervisor::{spawn_child, Supervisor};
use kv_ports::timer::TimerPort;

use crate::ble::component::{LeaderElection, LeaderElectionArgs};
use crate::ble::BleConfig;
use crate::replica::component::{ReplicaArgs, ReplicaComponent};
use crate::replica::Replica;
use crate::sequence_paxos::component::{Paxos, PaxosArgs};
use crate::sequence_paxos::SpConfig;

/// What a node needs to know to run its part of a group.
#[derive(Clone, Debug)]
pub struct MemberConfig {
    /// The group.
    pub group: GroupId,
    /// This node.
    pub me: NodeId,
    /// Every member, this node included.
    pub members: Vec<NodeId>,
    /// Wall-clock length of one protocol tick.
    pub tick: Duration,
    /// Ticks per leader-election heartbeat round.
    pub election_ticks: u64,
    /// Ties between equal election rounds go to the higher priority.
    pub priority: u64,
}

impl MemberConfig {
    /// A member with timings fit for a LAN: 10 ms ticks, 100 ms election rounds.
    pub fn new(group: GroupId, me: NodeId, members: Vec<NodeId>) -> Self {
        MemberConfig {
            group,
            me,
            members,
            tick: Duration::from_millis(10),
            election_ticks: 10,
            priority: 0,
        }
    }
}

/// The running components of one group member.
#[derive(Clone)]
pub struct GroupMember {
    /// Leader election.
    pub election: ActorRef<LeaderElection>,
    /// Sequence Paxos.
    pub paxos: ActorRef<Paxos>,
    /// The replica; provides the group's `KvPort`.
    pub replica: ActorRef<ReplicaComponent>,
}

/// Starts a group member under `node`, wired to the node's `net` and `timer`, and starts it.
pub async fn start_member<N, T>(
    node: &ActorRef<Supervisor>,
    net: &ActorRef<N>,
    timer: &ActorRef<T>,
    config: MemberConfig,
) -> Result<GroupMember, ConnectError>
where
    N: Provides<NetworkPort>,
    T: Provides<TimerPort>,
{
    let ble = BleConfig {
        pid: config.me,
        members: config.members.clone(),
        priority: config.priority,
        round_ticks: config.election_ticks,
    };
    let election_args = LeaderElectionArgs {
        group: config.group,
        config: ble,
        tick: config.tick,
    };
    let election = spawn_child::<LeaderElection>(node, election_args).await;
    let sp = SpConfig::new(config.me, config.members.clone());
    let paxos_args = PaxosArgs {
        group: config.group,
        config: sp,
        tick: config.tick,
    };
    let paxos = spawn_child::<Paxos>(node, paxos_args).await;
    let replica_args = ReplicaArgs {
        core: Replica::new(),
        me: config.me,
    };
    let replica = spawn_child::<ReplicaComponent>(node, replica_args).await;

    connect::<NetworkPort, _, _>(net, &election).await?;
    connect::<TimerPort, _, _>(timer, &election).await?;
    connect::<NetworkPort, _, _>(net, &paxos).await?;
    connect::<TimerPort, _, _>(timer, &paxos).await?;
    connect::<LeaderElectionPort, _, _>(&election, &paxos).await?;
    connect::<ConsensusPort, _, _>(&paxos, &replica).await?;

    for started in [
        election.tell(Start).await.is_ok(),
        paxos.tell(Start).await.is_ok(),
    ] {
        if !started {
            return Err(ConnectError::Stopped {
                port: "Start",
                component: "group member",
            });
        }
    }
    Ok(GroupMember {
        election,
        paxos,
        replica,
    })
}
