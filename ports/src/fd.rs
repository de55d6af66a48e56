//! The FailureDetector port: an eventually perfect failure detector (◇P).

use crate::ids::NodeId;
use crate::port::Port;

/// Requests to the failure detector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdRequest {
    /// Watch these nodes (replacing the previous set).
    Monitor(Vec<NodeId>),
}

/// What the failure detector concluded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FdIndication {
    /// `node` has not answered heartbeats within the current timeout.
    Suspect(NodeId),
    /// A suspected node answered after all; the timeout grows so the mistake gets rarer.
    Restore(NodeId),
}

/// Learn which nodes seem to have crashed.
pub struct FailureDetectorPort;

impl Port for FailureDetectorPort {
    type Request = FdRequest;
    type Indication = FdIndication;
}
