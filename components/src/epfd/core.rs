//! The eventually perfect failure detector as a pure state machine.
//!
//! Every period the detector suspects each monitored node that has not answered the previous
//! round's heartbeat, restores each suspected node that did, and starts a new round. A
//! restore means the suspicion was false, so the period grows by `increment`: once message
//! delays are bounded (eventually, in a partially synchronous system) the period outgrows
//! them and no correct node is suspected again.

use std::collections::BTreeSet;
use std::time::Duration;

use kv_ports::ids::NodeId;
use serde::{Deserialize, Serialize};

/// Heartbeat messages between detectors.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpfdMsg {
    /// "Are you alive?" for round `round` of the sender.
    Request {
        /// The sender's round, echoed in the reply.
        round: u64,
    },
    /// "I am", for the sender's round `round`.
    Reply {
        /// The round being answered.
        round: u64,
    },
}

/// Something the shell must do for the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EpfdOutput {
    /// Send a heartbeat message.
    Send(NodeId, EpfdMsg),
    /// Tell the requirers that a node is suspected.
    Suspect(NodeId),
    /// Tell the requirers that a suspicion was false.
    Restore(NodeId),
}

/// Timing of the detector.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EpfdConfig {
    /// The first period between heartbeat rounds.
    pub initial_delay: Duration,
    /// How much the period grows after each false suspicion.
    pub increment: Duration,
}

impl Default for EpfdConfig {
    fn default() -> Self {
        EpfdConfig {
            initial_delay: Duration::from_millis(300),
            increment: Duration::from_millis(100),
        }
    }
}

/// The detector's state.
#[derive(Debug)]
pub struct EpfdCore {
    config: EpfdConfig,
    delay: Duration,
    round: u64,
    monitored: BTreeSet<NodeId>,
    alive: BTreeSet<NodeId>,
    suspected: BTreeSet<NodeId>,
}

impl EpfdCore {
    /// A detector monitoring nobody yet.
    pub fn new(config: EpfdConfig) -> Self {
        EpfdCore {
            config,
            delay: config.initial_delay,
            round: 0,
            monitored: BTreeSet::new(),
            alive: BTreeSet::new(),
            suspected: BTreeSet::new(),
        }
    }

    /// The period to wait before the next [`EpfdCore::timeout`].
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The nodes currently suspected.
    pub fn suspected(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.suspected.iter().copied()
    }

    /// Replaces the monitored set. Newly monitored nodes count as alive for the current round,
    /// so they get a full period to answer; suspicions of unmonitored nodes are forgotten.
    pub fn monitor(&mut self, nodes: impl IntoIterator<Item = NodeId>) -> Vec<EpfdOutput> {
        let next: BTreeSet<NodeId> = nodes.into_iter().collect();
        let mut out = Vec::new();
        for node in next.difference(&self.monitored) {
            self.alive.insert(*node);
            out.push(EpfdOutput::Send(
                *node,
                EpfdMsg::Request { round: self.round },
            ));
        }
        self.suspected.retain(|n| next.contains(n));
        self.alive.retain(|n| next.contains(n));
        self.monitored = next;
        out
    }

    /// The period ended: judge the round that ends and start the next.
    pub fn timeout(&mut self) -> Vec<EpfdOutput> {
        let mut out = Vec::new();
        if self
            .monitored
            .iter()
            .any(|n| self.alive.contains(n) && self.suspected.contains(n))
        {
            self.delay += self.config.increment;
        }
        for &node in &self.monitored {
            let alive = self.alive.contains(&node);
            let suspected = self.suspected.contains(&node);
            if !alive && !suspected {
                self.suspected.insert(node);
                out.push(EpfdOutput::Suspect(node));
            } else if alive && suspected {
                self.suspected.remove(&node);
                out.push(EpfdOutput::Restore(node));
            }
        }
        self.round += 1;
        self.alive.clear();
        let round = self.round;
        out.extend(
            self.monitored
                .iter()
                .map(|&n| EpfdOutput::Send(n, EpfdMsg::Request { round })),
        );
        out
    }

    /// A heartbeat message arrived from `from`.
    pub fn handle(&mut self, from: NodeId, msg: EpfdMsg) -> Vec<EpfdOutput> {
        match msg {
            EpfdMsg::Request { round } => vec![EpfdOutput::Send(from, EpfdMsg::Reply { round })],
            EpfdMsg::Reply { round } => {
                // A reply to an older round says nothing about the current one.
                if round == self.round && self.monitored.contains(&from) {
                    self.alive.insert(from);
                }
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    fn config() -> EpfdConfig {
        EpfdConfig {
            initial_delay: Duration::from_millis(100),
            increment: Duration::from_millis(50),
        }
    }

    fn answer_all(core: &mut EpfdCore, out: &[EpfdOutput], from: &[NodeId]) {
        for o in out {
            if let EpfdOutput::Send(to, EpfdMsg::Request { round }) = o {
                if from.contains(to) {
                    core.handle(*to, EpfdMsg::Reply { round: *round });
                }
            }
        }
    }

    #[test]
    fn a_silent_node_is_suspected_once() {
        let mut core = EpfdCore::new(config());
        let out = core.monitor([A, B]);
        answer_all(&mut core, &out, &[A, B]);
        let out = core.timeout();
        assert!(!out.iter().any(|o| matches!(o, EpfdOutput::Suspect(_))));
        answer_all(&mut core, &out, &[A]);
        let out = core.timeout();
        assert!(out.contains(&EpfdOutput::Suspect(B)));
        assert!(!out.contains(&EpfdOutput::Suspect(A)));
        let out = core.timeout();
        assert!(!out.contains(&EpfdOutput::Suspect(B)), "suspected twice");
        assert_eq!(core.suspected().collect::<Vec<_>>(), vec![A, B]);
    }

    #[test]
    fn a_false_suspicion_is_restored_and_the_delay_grows() {
        let mut core = EpfdCore::new(config());
        core.monitor([A]);
        core.timeout(); // A answered the monitor-time request implicitly: alive
        let out = core.timeout(); // no reply in that round
        assert!(out.contains(&EpfdOutput::Suspect(A)));
        assert_eq!(core.delay(), Duration::from_millis(100));
        answer_all(&mut core, &out, &[A]);
        let out = core.timeout();
        assert!(out.contains(&EpfdOutput::Restore(A)));
        assert_eq!(core.delay(), Duration::from_millis(150));
    }

    #[test]
    fn stale_replies_do_not_count() {
        let mut core = EpfdCore::new(config());
        core.monitor([A]);
        core.timeout();
        core.handle(A, EpfdMsg::Reply { round: 0 });
        let out = core.timeout();
        assert!(
            out.contains(&EpfdOutput::Suspect(A)),
            "an old round's reply kept A alive"
        );
    }

    #[test]
    fn requests_are_answered_with_their_round() {
        let mut core = EpfdCore::new(config());
        let out = core.handle(B, EpfdMsg::Request { round: 9 });
        assert_eq!(out, vec![EpfdOutput::Send(B, EpfdMsg::Reply { round: 9 })]);
    }

    #[test]
    fn unmonitoring_forgets_suspicions() {
        let mut core = EpfdCore::new(config());
        core.monitor([A, B]);
        core.timeout();
        core.timeout();
        assert_eq!(core.suspected().count(), 2);
        core.monitor([A]);
        assert_eq!(core.suspected().collect::<Vec<_>>(), vec![A]);
    }
}
