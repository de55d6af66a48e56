//! The LeaderElection port: ballot leader election (BLE) tells Sequence Paxos who leads.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::port::Port;

/// A ballot `(n, priority, pid)`, ordered lexicographically by the derived `Ord`.
///
/// Leader election and Sequence Paxos share the ballot space: the ballot BLE elects is the
/// round in which the elected node leads Paxos, so a newer election always carries a higher
/// round, and a Paxos acceptor's promise is a ballot BLE must outbid.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    /// The round counter, raised to overtake a lost leader.
    pub n: u64,
    /// Breaks ties between candidates of the same round (higher wins).
    pub priority: u64,
    /// The owner of the ballot; makes ballots of different nodes distinct.
    pub pid: NodeId,
}

impl Ballot {
    /// The bottom ballot: lower than every ballot a node can own.
    pub const ZERO: Ballot = Ballot {
        n: 0,
        priority: 0,
        pid: NodeId(0),
    };

    /// A ballot of node `pid` in round `n`.
    pub fn new(n: u64, priority: u64, pid: NodeId) -> Self {
        Ballot { n, priority, pid }
    }
}

impl Default for Ballot {
    fn default() -> Self {
        Ballot::ZERO
    }
}

/// What Sequence Paxos tells leader election.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ElectionRequest {
    /// This node's acceptor has promised this ballot: a takeover must use a higher round.
    Promised(Ballot),
    /// This node was elected but cannot lead in its ballot because some acceptor promised
    /// this higher one: raise the round so the next election yields a usable ballot.
    Overtake(Ballot),
}

/// What leader election tells Sequence Paxos.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ElectionIndication {
    /// `ballot.pid` leads in round `ballot`.
    Leader(Ballot),
}

/// Learn who leads a replication group.
pub struct LeaderElectionPort;

impl Port for LeaderElectionPort {
    type Request = ElectionRequest;
    type Indication = ElectionIndication;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_round_then_priority_then_pid() {
        assert!(Ballot::new(1, 9, NodeId(9)) < Ballot::new(2, 0, NodeId(0)));
        assert!(Ballot::new(1, 1, NodeId(0)) > Ballot::new(1, 0, NodeId(5)));
        assert!(Ballot::new(1, 1, NodeId(2)) > Ballot::new(1, 1, NodeId(1)));
        assert!(Ballot::ZERO < Ballot::new(0, 0, NodeId(1)));
    }
}
