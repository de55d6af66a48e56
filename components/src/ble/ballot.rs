//! Ballots: the round numbers shared by leader election and Sequence Paxos.
//!
//! The type lives in the LeaderElection port (`kv_ports::election::Ballot`) because it crosses
//! the port between BLE and Sequence Paxos; it is re-exported here so the cores name it locally.
//! Ordering is lexicographic on `(n, priority, pid)`.

pub use kv_ports::election::Ballot;
