//! The BLE component of one replication group: provides [`LeaderElectionPort`], requires
//! [`NetworkPort`] and [`TimerPort`]. Time reaches the core as ticks of a periodic timeout.

use std::convert::Infallible;
use std::time::Duration;

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::component::Start;
use kv_ports::election::{ElectionIndication, ElectionRequest, LeaderElectionPort};
use kv_ports::ids::GroupId;
use kv_ports::network::{NetIndication, NetRequest, NetworkPort, Topic};
use kv_ports::port::{Ind, ProvidedPort, Req, RequiredPort};
use kv_ports::timer::{TimerPort, Timers};

use super::core::{Ble, BleConfig, BleMsg};
use crate::wire::{decode, encode};

/// How to start a [`LeaderElection`] component.
#[derive(Clone, Debug)]
pub struct LeaderElectionArgs {
    /// The group whose leader is elected.
    pub group: GroupId,
    /// The core's settings (members, priority, ticks per round).
    pub config: BleConfig,
    /// Wall-clock length of one tick.
    pub tick: Duration,
}

/// Ballot leader election for one group on one node.
pub struct LeaderElection {
    topic: Topic,
    tick: Duration,
    core: Ble,
    election: ProvidedPort<LeaderElectionPort>,
    net: RequiredPort<NetworkPort>,
    timer: RequiredPort<TimerPort>,
    timers: Timers<()>,
}

impl Actor for LeaderElection {
    type Args = LeaderElectionArgs;
    type Error = Infallible;

    async fn on_start(args: Self::Args, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(LeaderElection {
            topic: Topic::LeaderElection(args.group),
            tick: args.tick,
            core: Ble::new(args.config),
            election: ProvidedPort::default(),
            net: RequiredPort::default(),
            timer: RequiredPort::default(),
            timers: Timers::default(),
        })
    }
}

kv_ports::component!(LeaderElection);

kv_ports::provides!(LeaderElection: LeaderElectionPort = election);
kv_ports::requires!(LeaderElection: NetworkPort = net, TimerPort = timer);

impl Message<Start> for LeaderElection {
    type Reply = ();

    async fn handle(&mut self, _: Start, _: &mut Context<Self, ()>) {
        self.net.trigger(NetRequest::Subscribe(self.topic));
        self.timers.periodic(&mut self.timer, self.tick, ());
    }
}

impl Message<Ind<TimerPort>> for LeaderElection {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<TimerPort>, _: &mut Context<Self, ()>) {
        if self.timers.fired(ind.event).is_some() {
            self.core.tick();
            self.flush();
        }
    }
}

impl Message<Ind<NetworkPort>> for LeaderElection {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<NetworkPort>, _: &mut Context<Self, ()>) {
        let NetIndication::Deliver {
            from,
            topic,
            payload,
        } = ind.event
        else {
            return;
        };
        if topic != self.topic {
            return;
        }
        if let Some(msg) = decode::<BleMsg>(&payload) {
            self.core.handle(from, msg);
            self.flush();
        }
    }
}

impl Message<Req<LeaderElectionPort>> for LeaderElection {
    type Reply = ();

    async fn handle(&mut self, req: Req<LeaderElectionPort>, _: &mut Context<Self, ()>) {
        match req.event {
            ElectionRequest::Promised(ballot) => self.core.observe_promise(ballot),
            ElectionRequest::Overtake(ballot) => self.core.overtake(ballot),
        }
    }
}

impl LeaderElection {
    fn flush(&mut self) {
        for (to, msg) in self.core.take_outgoing() {
            let payload = encode(&msg);
            self.net.trigger(NetRequest::Send {
                to,
                topic: self.topic,
                payload,
            });
        }
        if let Some(ballot) = self.core.take_leader() {
            if let Topic::LeaderElection(group) = self.topic {
                metrics::counter!("kv_leader_changes_total", "group" => group.0.to_string())
                    .increment(1);
            }
            self.election.trigger(ElectionIndication::Leader(ballot));
        }
    }
}

/// Asks a [`LeaderElection`] component where its election stands (for status pages and tests).
#[derive(Copy, Clone, Debug)]
pub struct QueryElection;

/// Where one member's leader election stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, kameo::Reply)]
pub struct ElectionStatus {
    /// This node's candidate ballot.
    pub ballot: kv_ports::election::Ballot,
    /// The leader this node elected, if any.
    pub leader: Option<kv_ports::election::Ballot>,
    /// Whether this node heard from a majority in its last round.
    pub quorum_connected: bool,
}

impl Message<QueryElection> for LeaderElection {
    type Reply = ElectionStatus;

    async fn handle(
        &mut self,
        _: QueryElection,
        _: &mut Context<Self, ElectionStatus>,
    ) -> ElectionStatus {
        ElectionStatus {
            ballot: self.core.ballot(),
            leader: self.core.leader(),
            quorum_connected: self.core.is_quorum_connected(),
        }
    }
}
