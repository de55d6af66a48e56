//! sequence_paxos (core being written).
