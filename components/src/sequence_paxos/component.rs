//! The Sequence Paxos component of one replication group: provides [`ConsensusPort`],
//! requires [`LeaderElectionPort`], [`NetworkPort`] and [`TimerPort`].
//!
//! The shell feeds the core and drains it after every event, so proposals that arrive
//! between two drains leave in one batch.

use std::convert::Infallible;
use std::time::Duration;

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::component::Start;
use kv_ports::consensus::{ConsensusIndication, ConsensusPort, ConsensusRequest, Refusal};
use kv_ports::election::{Ballot, ElectionIndication, ElectionRequest, LeaderElectionPort};
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::kv::KvCommand;
use kv_ports::network::{NetIndication, NetRequest, NetworkPort, Topic};
use kv_ports::port::{Ind, ProvidedPort, Req, RequiredPort};
use kv_ports::timer::{TimerPort, Timers};

use super::core::{ProposeError, SequencePaxos, SpConfig};
use super::messages::PaxosMsg;
use crate::wire::{decode, encode};

/// How to start a [`Paxos`] component.
#[derive(Clone, Debug)]
pub struct PaxosArgs {
    /// The group whose log this is.
    pub group: GroupId,
    /// The core's settings (members, resend timing).
    pub config: SpConfig,
    /// Wall-clock length of one tick.
    pub tick: Duration,
}

/// Sequence Paxos for one group on one node.
pub struct Paxos {
    topic: Topic,
    tick: Duration,
    core: SequencePaxos<KvCommand>,
    consensus: ProvidedPort<ConsensusPort>,
    election: RequiredPort<LeaderElectionPort>,
    net: RequiredPort<NetworkPort>,
    timer: RequiredPort<TimerPort>,
    timers: Timers<()>,
    told_leader: Option<NodeId>,
    told_promise: Ballot,
}

impl Actor for Paxos {
    type Args = PaxosArgs;
    type Error = Infallible;

    async fn on_start(args: Self::Args, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Paxos {
            topic: Topic::Consensus(args.group),
            tick: args.tick,
            core: SequencePaxos::new(args.config),
            consensus: ProvidedPort::default(),
            election: RequiredPort::default(),
            net: RequiredPort::default(),
            timer: RequiredPort::default(),
            timers: Timers::default(),
            told_leader: None,
            told_promise: Ballot::ZERO,
        })
    }
}

kv_ports::component!(Paxos);

kv_ports::provides!(Paxos: ConsensusPort = consensus);
kv_ports::requires!(Paxos: LeaderElectionPort = election, NetworkPort = net, TimerPort = timer);

impl Message<Start> for Paxos {
    type Reply = ();

    async fn handle(&mut self, _: Start, _: &mut Context<Self, ()>) {
        self.net.trigger(NetRequest::Subscribe(self.topic));
        self.timers.periodic(&mut self.timer, self.tick, ());
    }
}

impl Message<Req<ConsensusPort>> for Paxos {
    type Reply = ();

    async fn handle(&mut self, req: Req<ConsensusPort>, _: &mut Context<Self, ()>) {
        match req.event {
            ConsensusRequest::Propose(cmd) => {
                let id = cmd.id;
                if let Err(error) = self.core.propose(cmd) {
                    let reason = self.refusal(error);
                    let refused = ConsensusIndication::Refused { id, reason };
                    self.consensus.answer(req.from, refused);
                }
            }
            ConsensusRequest::Reconfigure(stopsign) => {
                if let Err(error) = self.core.reconfigure(stopsign) {
                    tracing::warn!(%error, topic = ?self.topic, "reconfiguration refused");
                }
            }
        }
        self.flush();
    }
}

impl Message<Ind<LeaderElectionPort>> for Paxos {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<LeaderElectionPort>, _: &mut Context<Self, ()>) {
        let ElectionIndication::Leader(ballot) = ind.event;
        self.core.handle_leader(ballot);
        self.flush();
    }
}

impl Message<Ind<NetworkPort>> for Paxos {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<NetworkPort>, _: &mut Context<Self, ()>) {
        match ind.event {
            NetIndication::Deliver {
                from,
                topic,
                payload,
            } if topic == self.topic => {
                if let Some(msg) = decode::<PaxosMsg<KvCommand>>(&payload) {
                    self.core.handle(from, msg);
                }
            }
            NetIndication::PeerDown(peer) => self.core.connection_lost(peer),
            NetIndication::PeerUp(peer) => self.core.reconnected(peer),
            NetIndication::Deliver { .. } => return,
        }
        self.flush();
    }
}

impl Message<Ind<TimerPort>> for Paxos {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<TimerPort>, _: &mut Context<Self, ()>) {
        if self.timers.fired(ind.event).is_some() {
            self.core.tick();
            self.flush();
        }
    }
}

impl Paxos {
    fn refusal(&self, error: ProposeError) -> Refusal {
        match error {
            ProposeError::NoLeader => Refusal::NoLeader {
                hint: self.core.leader_hint(),
            },
            ProposeError::Sealed { next_config } => Refusal::Sealed { next_config },
        }
    }

    /// Sends what the core produced and reports what changed.
    fn flush(&mut self) {
        let outgoing = self.core.take_outgoing();
        count_accept_batch(&outgoing, self.core.log_len());
        for (to, msg) in outgoing {
            let payload = encode(&msg);
            self.net.trigger(NetRequest::Send {
                to,
                topic: self.topic,
                payload,
            });
        }
        let decided = self.core.take_decided();
        if !decided.is_empty() {
            metrics::counter!("kv_decided_entries_total").increment(decided.len() as u64);
            self.consensus
                .trigger(ConsensusIndication::Decided(decided));
        }
        if let Some(above) = self.core.take_ballot_hint() {
            self.election.trigger(ElectionRequest::Overtake(above));
        }
        let promised = self.core.promised();
        if promised > self.told_promise {
            self.told_promise = promised;
            self.election.trigger(ElectionRequest::Promised(promised));
        }
        let leader = self.core.leader_hint();
        if leader != self.told_leader {
            self.told_leader = leader;
            self.consensus.trigger(ConsensusIndication::Leader(leader));
        }
    }
}

/// Metrics: counts the leader's accept batch among a drain's messages, if there is one (the
/// same entries go to every follower, ending at the log's end; a resend to a lagging follower
/// that reaches the end counts too). A group of one member sends no batches.
fn count_accept_batch(outgoing: &[(NodeId, PaxosMsg<KvCommand>)], log_len: u64) {
    let batch = outgoing.iter().find_map(|(_, msg)| match msg {
        PaxosMsg::AcceptDecide { start, entries, .. }
            if !entries.is_empty() && start + entries.len() as u64 == log_len =>
        {
            Some(entries.len() as u64)
        }
        _ => None,
    });
    if let Some(entries) = batch {
        metrics::counter!("kv_accept_batches_total").increment(1);
        metrics::counter!("kv_proposals_batched_total").increment(entries);
    }
}

/// Asks a [`Paxos`] component where its group stands (for status pages and tests).
#[derive(Copy, Clone, Debug)]
pub struct QueryStatus;

/// Where one member's Sequence Paxos stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, kameo::Reply)]
pub struct PaxosStatus {
    /// The leader this member believes in.
    pub leader: Option<NodeId>,
    /// Whether this member is the leader, accepting proposals in its ballot.
    pub leading: bool,
    /// The highest ballot this member promised.
    pub promised: Ballot,
    /// Entries decided so far (the decided index).
    pub decided: u64,
}

impl Message<QueryStatus> for Paxos {
    type Reply = PaxosStatus;

    async fn handle(&mut self, _: QueryStatus, _: &mut Context<Self, PaxosStatus>) -> PaxosStatus {
        PaxosStatus {
            leader: self.core.leader_hint(),
            leading: self.core.is_accepting_leader(),
            promised: self.core.promised(),
            decided: self.core.decided_idx(),
        }
    }
}
