//! The Consensus port: Sequence Paxos orders commands into a log and reports what is decided.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::kv::{KvCommand, RequestId};
use crate::port::Port;

/// Seals the log of one configuration and names the next one.
///
/// Once a StopSign is decided nothing more is appended to the log; reconfiguration starts the
/// next configuration from the state at this point.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StopSign {
    /// The id of the configuration that follows this one.
    pub next_config: u32,
    /// The members of the next configuration.
    pub members: Vec<NodeId>,
    /// Opaque data for whoever drives reconfiguration (e.g. a slot-map epoch).
    pub metadata: Vec<u8>,
}

/// One slot of the replicated log: an application command, or the StopSign that ends the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Entry<T> {
    /// An application command.
    Cmd(T),
    /// The end of this configuration's log.
    StopSign(StopSign),
}

impl<T> Entry<T> {
    /// Whether this entry seals the log.
    pub fn is_stopsign(&self) -> bool {
        matches!(self, Entry::StopSign(_))
    }
}

/// Why a proposal was not taken into the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// No leader is known to take it; `hint` is the best guess, if any.
    NoLeader {
        /// The leader this node last believed in.
        hint: Option<NodeId>,
    },
    /// The log is sealed by a StopSign; the named configuration takes over.
    Sealed {
        /// The next configuration.
        next_config: u32,
    },
}

/// Requests to Sequence Paxos.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsensusRequest {
    /// Append a command to the log (forwarded to the leader if this node follows).
    Propose(KvCommand),
    /// Seal the log with a StopSign naming the next configuration.
    Reconfigure(StopSign),
}

/// Indications of Sequence Paxos.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsensusIndication {
    /// Newly decided entries, with their absolute log indices, in log order, each once.
    Decided(Vec<(u64, Entry<KvCommand>)>),
    /// A proposal was refused; the command will not be decided through this node.
    Refused {
        /// The refused command.
        id: RequestId,
        /// Why.
        reason: Refusal,
    },
    /// The leader this node believes in changed.
    Leader(Option<NodeId>),
}

/// Replicate commands through a group's log.
pub struct ConsensusPort;

impl Port for ConsensusPort {
    type Request = ConsensusRequest;
    type Indication = ConsensusIndication;
}
