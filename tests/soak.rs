//! The long soak of the simulator: many more and longer schedules than CI runs.
//!
//! `cargo test --release --test soak -- --ignored --nocapture`
//! (`SIM_SEEDS`, default 20000; `SIM_OPS`, default 1000; `SIM_FIRST_SEED`, default 1000000;
//! `SIM_THREADS`, default 2). A failing seed prints the `SIM_SEED=... cargo test --test sim --
//! replay` command that reproduces it.

#[path = "sim/mod.rs"]
mod sim;

use sim::runner::{env_u64, run_and_check};

#[test]
#[ignore = "long: run on demand, see the module docs"]
fn soak() {
    let count = env_u64("SIM_SEEDS", 20_000);
    let ops = env_u64("SIM_OPS", 1000) as usize;
    let first = env_u64("SIM_FIRST_SEED", 1_000_000);
    run_and_check(first, count, ops, false);
    let harsh = env_u64("SIM_HARSH_SEEDS", count / 4);
    run_and_check(first + 50_000_000, harsh, ops, true);
}
