//! The Replica component of one replication group: provides [`KvPort`], requires
//! [`ConsensusPort`]. Commands are admitted (a retry of an applied command is answered from
//! the session table), proposed, and answered once their log entry is applied. A member that
//! knows another member leads answers `NotLeader` with that hint instead of proposing, so
//! senders learn the leader; Sequence Paxos's own forwarding covers only the moments when a
//! follower's leader is not yet known to its replica.

use std::collections::HashMap;
use std::convert::Infallible;

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::consensus::{ConsensusIndication, ConsensusPort, ConsensusRequest, Refusal};
use kv_ports::ids::{ClientId, NodeId};
use kv_ports::kv::{KvError, KvPort, KvReply};
use kv_ports::port::{ConnectionId, Ind, ProvidedPort, Req, RequiredPort};

use super::core::Replica;

/// The key-value state machine of one group on one node.
pub struct ReplicaComponent {
    core: Replica,
    kv: ProvidedPort<KvPort>,
    consensus: RequiredPort<ConsensusPort>,
    /// Who waits for each client's outstanding command. A client has at most one command in
    /// flight, so a newer command replaces (and silently abandons) an older one: this bounds
    /// the table by the number of clients even when clients give up on commands.
    waiting: HashMap<ClientId, (u64, ConnectionId)>,
    me: NodeId,
    leader: Option<NodeId>,
}

/// What a [`ReplicaComponent`] starts from.
pub struct ReplicaArgs {
    /// The state machine (empty for a new group).
    pub core: Replica,
    /// This node, to tell "I lead" from "another member leads".
    pub me: NodeId,
}

impl Actor for ReplicaComponent {
    type Args = ReplicaArgs;
    type Error = Infallible;

    async fn on_start(args: ReplicaArgs, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(ReplicaComponent {
            core: args.core,
            kv: ProvidedPort::default(),
            consensus: RequiredPort::default(),
            waiting: HashMap::new(),
            me: args.me,
            leader: None,
        })
    }
}

kv_ports::component!(ReplicaComponent);

kv_ports::provides!(ReplicaComponent: KvPort = kv);
kv_ports::requires!(ReplicaComponent: ConsensusPort = consensus);

impl Message<Req<KvPort>> for ReplicaComponent {
    type Reply = ();

    async fn handle(&mut self, req: Req<KvPort>, _: &mut Context<Self, ()>) {
        let cmd = req.event;
        if let Some(result) = self.core.admit(&cmd) {
            self.kv.answer(req.from, KvReply { id: cmd.id, result });
            return;
        }
        if let Some(leader) = self.leader.filter(|&l| l != self.me) {
            // Redirect rather than forward: the sender (router or client) learns the leader
            // and sends there directly from now on, saving a hop on every later command.
            let result = Err(KvError::NotLeader { hint: Some(leader) });
            self.kv.answer(req.from, KvReply { id: cmd.id, result });
            return;
        }
        self.waiting.insert(cmd.id.client, (cmd.id.seq, req.from));
        if !self.consensus.trigger(ConsensusRequest::Propose(cmd)) {
            tracing::error!("replica has no consensus component");
        }
    }
}

impl Message<Ind<ConsensusPort>> for ReplicaComponent {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<ConsensusPort>, _: &mut Context<Self, ()>) {
        match ind.event {
            ConsensusIndication::Decided(entries) => {
                for (idx, entry) in &entries {
                    self.core.apply(*idx, entry);
                }
            }
            ConsensusIndication::Refused { id, reason } => {
                let error = match reason {
                    Refusal::NoLeader { hint } => KvError::NotLeader { hint },
                    Refusal::Sealed { next_config } => KvError::Sealed { next_config },
                };
                self.core.reject(id, error);
            }
            ConsensusIndication::Leader(leader) => self.leader = leader,
        }
        self.answer_applied();
    }
}

impl ReplicaComponent {
    fn answer_applied(&mut self) {
        for (id, result) in self.core.take_replies() {
            let Some(&(seq, conn)) = self.waiting.get(&id.client) else {
                continue;
            };
            if seq == id.seq {
                self.waiting.remove(&id.client);
                self.kv.answer(conn, KvReply { id, result });
            }
        }
    }
}
