//! The BLE state machine: heartbeat rounds counted in ticks, pure like every core.

use kv_ports::ids::NodeId;
use serde::{Deserialize, Serialize};

use super::ballot::Ballot;

/// Static settings of one BLE instance.
#[derive(Clone, Debug)]
pub struct BleConfig {
    /// This node.
    pub pid: NodeId,
    /// Every member of the group, this node included.
    pub members: Vec<NodeId>,
    /// Ties between equal rounds go to the higher priority.
    pub priority: u64,
    /// Ticks per heartbeat round (the election timeout). Must exceed the round-trip time in
    /// ticks: replies that arrive after their round ended are ignored, and a node that never
    /// collects a majority of replies in time is never quorum-connected.
    pub round_ticks: u64,
}

/// A BLE message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BleMsg {
    /// Round `round` starts: tell me your ballot and how you are connected.
    HeartbeatRequest {
        /// The asker's round.
        round: u64,
    },
    /// The answer for round `round`.
    HeartbeatReply {
        /// The round asked about (late replies are ignored).
        round: u64,
        /// The replier's own candidate ballot.
        ballot: Ballot,
        /// Whether the replier heard from a majority in its last round (it may lead).
        quorum_connected: bool,
        /// The leader the replier follows, if any.
        leader: Option<Ballot>,
        /// Whether the replier heard from its leader, itself quorum-connected, last round.
        happy: bool,
    },
}

#[derive(Copy, Clone, Debug)]
struct Reply {
    ballot: Ballot,
    qc: bool,
    leader: Option<Ballot>,
    happy: bool,
}

/// One BLE instance.
///
/// At the end of each round a quorum-connected node (heard from a majority) elects the highest
/// ballot among quorum-connected candidates if it beats the current leader, follows a leader a
/// happy peer reports, and — only when a majority is unhappy with the leader — raises its own
/// round to take over. A node cut from the majority changes nothing, and a node that merely
/// cannot see a leader that others still follow does not disturb them (chained connectivity).
#[derive(Clone, Debug)]
pub struct Ble {
    cfg: BleConfig,
    peers: Vec<NodeId>,
    majority: usize,
    current: Ballot,
    leader: Option<Ballot>,
    round: u64,
    replies: Vec<(NodeId, Reply)>,
    quorum_connected: bool,
    happy: bool,
    promise_floor: Ballot,
    ticks: u64,
    outgoing: Vec<(NodeId, BleMsg)>,
    elected: Option<Ballot>,
}

impl Ble {
    /// A fresh instance in round 0 with ballot `(1, priority, pid)` and no leader.
    pub fn new(cfg: BleConfig) -> Self {
        assert!(cfg.members.contains(&cfg.pid) && cfg.round_ticks > 0);
        let peers = crate::quorum::peers(&cfg.members, cfg.pid);
        let majority = crate::quorum::majority(cfg.members.len());
        let current = Ballot::new(1, cfg.priority, cfg.pid);
        Ble {
            cfg,
            peers,
            majority,
            current,
            leader: None,
            round: 0,
            replies: Vec::new(),
            quorum_connected: false,
            happy: false,
            promise_floor: Ballot::ZERO,
            ticks: 0,
            outgoing: Vec::new(),
            elected: None,
        }
    }

    /// This node's candidate ballot.
    pub fn ballot(&self) -> Ballot {
        self.current
    }

    /// The leader this node follows, if any.
    pub fn leader(&self) -> Option<Ballot> {
        self.leader
    }

    /// Whether this node heard from a majority in its last round.
    pub fn is_quorum_connected(&self) -> bool {
        self.quorum_connected
    }

    /// Time passes by one tick; a round ends every `round_ticks`.
    pub fn tick(&mut self) {
        self.ticks += 1;
        if self.ticks.is_multiple_of(self.cfg.round_ticks) {
            self.end_round();
        }
    }

    /// Handle a message from `from`.
    pub fn handle(&mut self, from: NodeId, msg: BleMsg) {
        match msg {
            BleMsg::HeartbeatRequest { round } => {
                let reply = BleMsg::HeartbeatReply {
                    round,
                    ballot: self.current,
                    quorum_connected: self.quorum_connected,
                    leader: self.leader,
                    happy: self.happy,
                };
                self.outgoing.push((from, reply));
            }
            BleMsg::HeartbeatReply {
                round,
                ballot,
                quorum_connected,
                leader,
                happy,
            } => {
                if round == self.round && !self.replies.iter().any(|(p, _)| *p == from) {
                    let r = Reply {
                        ballot,
                        qc: quorum_connected,
                        leader,
                        happy,
                    };
                    self.replies.push((from, r));
                }
            }
        }
    }

    /// Sequence Paxos promised `b`: a takeover must use a higher round than that.
    pub fn observe_promise(&mut self, b: Ballot) {
        self.promise_floor = self.promise_floor.max(b);
    }

    /// Sequence Paxos cannot lead in our ballot (someone promised `above`): raise our round so
    /// the next round elects us with a usable ballot.
    pub fn overtake(&mut self, above: Ballot) {
        self.current.n = self.current.n.max(above.n + 1);
    }

    /// Drain the messages to send.
    pub fn take_outgoing(&mut self) -> Vec<(NodeId, BleMsg)> {
        std::mem::take(&mut self.outgoing)
    }

    /// The leader elected since the last call, if a new one was (the `Leader` indication).
    pub fn take_leader(&mut self) -> Option<Ballot> {
        self.elected.take()
    }

    fn end_round(&mut self) {
        self.quorum_connected = self.replies.len() + 1 >= self.majority;
        if self.quorum_connected {
            self.check_leader();
        } else {
            self.happy = false;
        }
        self.replies.clear();
        self.round += 1;
        for &p in &self.peers {
            self.outgoing
                .push((p, BleMsg::HeartbeatRequest { round: self.round }));
        }
    }

    fn elect(&mut self, b: Ballot) {
        debug_assert!(self.leader.is_none_or(|l| l < b), "leaders only move up");
        self.leader = Some(b);
        self.elected = Some(b);
    }

    fn check_leader(&mut self) {
        let top = self
            .replies
            .iter()
            .filter(|(_, r)| r.qc)
            .map(|(_, r)| r.ballot)
            .fold(self.current, Ballot::max);
        if self.leader.is_none_or(|l| top > l) {
            self.elect(top);
        }
        let followed = self
            .replies
            .iter()
            .filter(|(_, r)| r.qc && r.happy)
            .filter_map(|(_, r)| r.leader)
            .max();
        if let Some(f) = followed.filter(|f| self.leader.is_none_or(|l| *f > l)) {
            self.elect(f);
        }
        let leader = self.leader.expect("elected above");
        // A leader below the ballot our acceptor promised can never lead Paxos: resting on it
        // would leave the group without a usable leader forever (once elected, a ballot is
        // announced only once). Being unhappy with it lets a majority outbid the promise.
        let usable = leader >= self.promise_floor;
        let heard =
            leader == self.current || self.replies.iter().any(|(_, r)| r.qc && r.ballot == leader);
        self.happy = usable && heard;
        let unhappy = 1 + self.replies.iter().filter(|(_, r)| !r.happy).count();
        if !self.happy && unhappy >= self.majority {
            let floor = leader.n.max(self.promise_floor.n);
            self.current.n = self.current.n.max(floor + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const ROUND: u64 = 3;

    struct Net {
        nodes: Vec<Ble>,
        down: BTreeSet<(u64, u64)>,
        crashed: BTreeSet<u64>,
    }

    impl Net {
        fn new(size: u64) -> Self {
            let members: Vec<NodeId> = (1..=size).map(NodeId).collect();
            let nodes = members
                .iter()
                .map(|&pid| {
                    Ble::new(BleConfig {
                        pid,
                        members: members.clone(),
                        priority: 0,
                        round_ticks: ROUND,
                    })
                })
                .collect();
            Net {
                nodes,
                down: BTreeSet::new(),
                crashed: BTreeSet::new(),
            }
        }

        fn cut(&mut self, a: u64, b: u64) {
            self.down.insert((a.min(b), a.max(b)));
        }

        fn isolate(&mut self, a: u64) {
            for b in 1..=self.nodes.len() as u64 {
                if b != a {
                    self.cut(a, b);
                }
            }
        }

        fn heal(&mut self) {
            self.down.clear();
        }

        fn up(&self, a: u64, b: u64) -> bool {
            !self.down.contains(&(a.min(b), a.max(b)))
                && !self.crashed.contains(&a)
                && !self.crashed.contains(&b)
        }

        /// Run `rounds` heartbeat rounds, delivering messages instantly over live links.
        fn rounds(&mut self, rounds: u64) {
            for _ in 0..rounds * ROUND {
                for i in 0..self.nodes.len() {
                    if !self.crashed.contains(&(i as u64 + 1)) {
                        self.nodes[i].tick();
                    }
                }
                loop {
                    let mut msgs = Vec::new();
                    for n in self.nodes.iter_mut() {
                        let from = n.cfg.pid;
                        msgs.extend(n.take_outgoing().into_iter().map(|(to, m)| (from, to, m)));
                    }
                    if msgs.is_empty() {
                        break;
                    }
                    for (from, to, m) in msgs {
                        if self.up(from.0, to.0) {
                            self.nodes[(to.0 - 1) as usize].handle(from, m);
                        }
                    }
                }
            }
        }

        fn leader_of(&self, i: u64) -> Option<NodeId> {
            self.nodes[(i - 1) as usize].leader().map(|b| b.pid)
        }

        fn ballot_of(&self, i: u64) -> Ballot {
            self.nodes[(i - 1) as usize].ballot()
        }
    }

    #[test]
    fn a_leader_below_the_promised_ballot_is_outbid() {
        // Nodes 1 and 2 elected node 2 before node 3's Paxos prepared a higher ballot that they
        // promised; then node 3 crashed. Node 2 can never lead in its old ballot, so the
        // election must not rest on it: a majority is unhappy and node 2 outbids the promise.
        let mut net = Net::new(3);
        net.crashed.insert(3);
        net.rounds(3);
        assert_eq!(net.leader_of(1), Some(NodeId(2)));
        let stale = net.nodes[1].leader().unwrap();
        let promised = Ballot::new(stale.n, 0, NodeId(3));
        for i in 0..2 {
            net.nodes[i].observe_promise(promised);
        }
        net.rounds(4);
        for i in 1..=2 {
            let leader = net.nodes[(i - 1) as usize].leader().unwrap();
            assert!(leader > promised, "node {i} still rests on {leader:?}");
        }
        assert_eq!(net.leader_of(1), net.leader_of(2));
    }

    #[test]
    fn all_elect_the_highest_ballot() {
        let mut net = Net::new(3);
        net.rounds(3);
        for i in 1..=3 {
            assert_eq!(net.leader_of(i), Some(NodeId(3)));
        }
    }

    #[test]
    fn crashed_leader_is_replaced_with_a_higher_round() {
        let mut net = Net::new(5);
        net.rounds(3);
        let old = net.nodes[4].leader().unwrap();
        net.crashed.insert(5);
        net.rounds(4);
        let new = net.nodes[0].leader().unwrap();
        assert!(new > old && new.pid != NodeId(5));
        for i in 1..=4 {
            assert_eq!(net.leader_of(i), Some(new.pid));
        }
    }

    #[test]
    fn isolated_follower_does_not_disturb() {
        let mut net = Net::new(3);
        net.rounds(3);
        let before = net.ballot_of(1);
        net.isolate(1);
        net.rounds(10);
        assert_eq!(
            net.ballot_of(1),
            before,
            "a node without a quorum never raises its round"
        );
        net.heal();
        net.rounds(3);
        for i in 1..=3 {
            assert_eq!(net.leader_of(i), Some(NodeId(3)));
        }
    }

    #[test]
    fn isolated_leader_is_replaced_and_follows_after_heal() {
        let mut net = Net::new(3);
        net.rounds(3);
        net.isolate(3);
        net.rounds(4);
        let new = net.nodes[0].leader().unwrap();
        assert_ne!(new.pid, NodeId(3));
        assert_eq!(net.leader_of(2), Some(new.pid));
        net.heal();
        net.rounds(3);
        assert_eq!(net.leader_of(3), Some(new.pid));
    }

    #[test]
    fn chained_connectivity_keeps_the_leader() {
        // 1 - 2 - 3 with 1 and 3 cut: node 3 still reaches a majority through 2 and stays.
        let mut net = Net::new(3);
        net.rounds(3);
        net.cut(1, 3);
        let b1 = net.ballot_of(1);
        net.rounds(20);
        assert_eq!(net.leader_of(2), Some(NodeId(3)));
        assert_eq!(net.leader_of(3), Some(NodeId(3)));
        assert_eq!(
            net.ballot_of(1),
            b1,
            "node 1 alone is unhappy: it does not take over"
        );
    }

    #[test]
    fn quorum_loss_elects_the_node_that_reaches_everyone() {
        // Five nodes; only node 1 stays connected to all, the others only to node 1.
        let mut net = Net::new(5);
        net.rounds(3);
        assert_eq!(net.leader_of(1), Some(NodeId(5)));
        for a in 2..=5 {
            for b in (a + 1)..=5 {
                net.cut(a, b);
            }
        }
        net.rounds(6);
        assert_eq!(net.leader_of(1), Some(NodeId(1)));
        assert!(net.nodes[0].is_quorum_connected());
        assert!(!net.nodes[4].is_quorum_connected());
    }

    #[test]
    fn overtake_raises_the_round_above_a_promise() {
        let mut net = Net::new(3);
        net.rounds(3);
        net.nodes[2].overtake(Ballot::new(7, 0, NodeId(1)));
        net.rounds(2);
        let l = net.nodes[0].leader().unwrap();
        assert_eq!((l.n, l.pid), (8, NodeId(3)));
    }

    #[test]
    fn priority_breaks_ties_within_a_round() {
        let members: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let mut net = Net::new(3);
        net.nodes = members
            .iter()
            .map(|&pid| {
                let priority = if pid == NodeId(1) { 10 } else { 0 };
                Ble::new(BleConfig {
                    pid,
                    members: members.clone(),
                    priority,
                    round_ticks: ROUND,
                })
            })
            .collect();
        net.rounds(3);
        for i in 1..=3 {
            assert_eq!(net.leader_of(i), Some(NodeId(1)));
        }
    }
}
