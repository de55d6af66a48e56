//! The long soak of the simulator: many more and longer schedules than CI runs.
//!
//! `cargo test --release --test soak -- --ignored --nocapture`
//! (`SIM_SEEDS`, default 20000; `SIM_OPS`, default 1000; `SIM_FIRST_SEED`, default 1000000;
//! `SIM_HARSH_SEEDS`, `SIM_RECONFIG_SEEDS` and `SIM_MOVE_SEEDS`, default a quarter of
//! `SIM_SEEDS`;
//! `SIM_THREADS`, default 2). A failing seed prints the `SIM_SEED=... cargo test --test sim --
//! replay` command that reproduces it.

#[path = "sim/mod.rs"]
mod sim;

use sim::runner::{env_u64, run_and_check, Mode};

#[test]
#[ignore = "long: run on demand, see the module docs"]
fn soak() {
    let count = env_u64("SIM_SEEDS", 20_000);
    let ops = env_u64("SIM_OPS", 1000) as usize;
    let first = env_u64("SIM_FIRST_SEED", 1_000_000);
    run_and_check(first, count, ops, Mode::default());
    let harsh = env_u64("SIM_HARSH_SEEDS", count / 4);
    let harsh_mode = Mode {
        harsh: true,
        ..Mode::default()
    };
    run_and_check(first + 50_000_000, harsh, ops, harsh_mode);
    let reconfig = env_u64("SIM_RECONFIG_SEEDS", count / 4);
    let reconfig_mode = Mode {
        reconfig: true,
        ..Mode::default()
    };
    run_and_check(first + 60_000_000, reconfig, ops, reconfig_mode);
    let moves = env_u64("SIM_MOVE_SEEDS", count / 4);
    let moves_mode = Mode {
        moves: true,
        ..Mode::default()
    };
    run_and_check(first + 70_000_000, moves, ops, moves_mode);
}
