//! Linearizability checking of recorded key-value histories (`kv check`).

pub mod cli;
