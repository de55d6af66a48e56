//! Simulator property tests: thousands of seeded fault schedules through the real protocol
//! cores, each checked for safety invariants after every step, liveness after the final heal,
//! and linearizability of the client history.
//!
//! - CI: `cargo test --test sim` (`SIM_SEEDS`, default 2000; `SIM_OPS`, default 200;
//!   `SIM_HARSH_SEEDS`, default 300; `SIM_RECONFIG_SEEDS`, default 1000;
//!   `SIM_RECONFIG_HARSH_SEEDS`, default 300; `SIM_MOVE_SEEDS`, default 300;
//!   `SIM_MOVE_HARSH_SEEDS`, default 60; `SIM_FIRST_SEED`, default 0; `SIM_THREADS`,
//!   default 2).
//! - Replay one seed with a trace: `SIM_SEED=123 cargo test --test sim -- replay --nocapture`
//!   (add `SIM_HARSH=1`, `SIM_RECONFIG=1`, `SIM_MOVES=1`, `SIM_BROKEN=1`,
//!   `SIM_SERVE_FROZEN=1`, `SIM_STRIP_SESSIONS=1`, `SIM_SKIP_PAGE=1` as the failure report
//!   says).
//! - Long soak: see `tests/soak.rs`.

#[path = "sim/mod.rs"]
mod sim;

use sim::runner::{env_u64, run_and_check, Mode};
use sim::{run, SimConfig};

#[test]
fn seeded_fault_schedules_are_safe_live_and_linearizable() {
    run_family("SIM_SEEDS", 2000, 0, Mode::default());
}

#[test]
fn harsh_schedules_are_safe_and_linearizable() {
    run_family(
        "SIM_HARSH_SEEDS",
        300,
        10_000_000,
        Mode {
            harsh: true,
            ..Mode::default()
        },
    );
}

#[test]
fn reconfiguration_schedules_are_safe_live_and_linearizable() {
    run_family(
        "SIM_RECONFIG_SEEDS",
        1000,
        20_000_000,
        Mode {
            reconfig: true,
            ..Mode::default()
        },
    );
}

#[test]
fn harsh_reconfiguration_schedules_are_safe_and_linearizable() {
    run_family(
        "SIM_RECONFIG_HARSH_SEEDS",
        300,
        30_000_000,
        Mode {
            harsh: true,
            reconfig: true,
            ..Mode::default()
        },
    );
}

#[test]
fn slot_move_schedules_are_safe_live_and_linearizable() {
    run_family(
        "SIM_MOVE_SEEDS",
        300,
        40_000_000,
        Mode {
            moves: true,
            ..Mode::default()
        },
    );
}

#[test]
fn harsh_slot_move_schedules_are_safe_and_linearizable() {
    run_family(
        "SIM_MOVE_HARSH_SEEDS",
        60,
        50_000_000,
        Mode {
            harsh: true,
            moves: true,
            ..Mode::default()
        },
    );
}

/// Runs one family of schedules: as many seeds as the environment variable `count_var` says
/// (else `default`), numbered from `SIM_FIRST_SEED` + `offset` so families never share seeds,
/// `SIM_OPS` operations each.
fn run_family(count_var: &str, default: u64, offset: u64, mode: Mode) {
    let count = env_u64(count_var, default);
    let ops = env_u64("SIM_OPS", 200) as usize;
    let first = env_u64("SIM_FIRST_SEED", 0) + offset;
    run_and_check(first, count, ops, mode);
}

#[test]
fn replay() {
    let Ok(seed) = std::env::var("SIM_SEED") else {
        return;
    };
    let seed: u64 = seed.parse().expect("SIM_SEED is a u64");
    let ops = env_u64("SIM_OPS", 200) as usize;
    let mut cfg = SimConfig::new(seed, ops);
    cfg.trace = true;
    cfg.broken = std::env::var("SIM_BROKEN").is_ok();
    cfg.harsh = std::env::var("SIM_HARSH").is_ok();
    cfg.reconfig = std::env::var("SIM_RECONFIG").is_ok();
    cfg.forget_sessions = std::env::var("SIM_FORGET_SESSIONS").is_ok();
    cfg.moves = std::env::var("SIM_MOVES").is_ok();
    cfg.serve_frozen = std::env::var("SIM_SERVE_FROZEN").is_ok();
    cfg.strip_sessions = std::env::var("SIM_STRIP_SESSIONS").is_ok();
    cfg.skip_page = std::env::var("SIM_SKIP_PAGE").is_ok();
    match run(&cfg) {
        Ok(o) => eprintln!("seed {seed} passed: {o:?}"),
        Err(f) => {
            eprintln!("{}", f.history);
            panic!("seed {seed} failed: {}", f.reason);
        }
    }
}

/// Seeds tried before giving up on catching the deliberately broken core.
const BROKEN_BUDGET: u64 = 2000;

fn seeds_to_catch_broken(check_ballots: bool) -> Option<(u64, String)> {
    (0..BROKEN_BUDGET).find_map(|seed| {
        let mut cfg = SimConfig::new(seed, 200);
        cfg.broken = true;
        cfg.check_ballots = check_ballots;
        run(&cfg).err().map(|f| (seed + 1, f.reason))
    })
}

/// How the first `n` seeds fare against the broken core: (caught, by kind of first alarm).
fn broken_detection_rate(n: u64, check_ballots: bool) -> (u64, Vec<(String, u64)>) {
    let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
    let mut caught = 0;
    for seed in 0..n {
        let mut cfg = SimConfig::new(seed, 200);
        cfg.broken = true;
        cfg.check_ballots = check_ballots;
        if let Err(f) = run(&cfg) {
            caught += 1;
            let kind = if f.reason.contains("two values chosen") {
                "two values chosen"
            } else if f.reason.contains("promised ballot decreased") {
                "ballot decreased"
            } else if f.reason.contains("not linearizable") {
                "not linearizable"
            } else if f.reason.starts_with("panic") {
                "core assertion"
            } else {
                "other (liveness)"
            };
            *kinds.entry(kind.to_string()).or_default() += 1;
        }
    }
    (caught, kinds.into_iter().collect())
}

#[test]
fn broken_promise_check_is_caught() {
    let (n, reason) =
        seeds_to_catch_broken(true).expect("the simulator must catch the broken core");
    eprintln!("broken core caught after {n} seed(s): {reason}");
    let (n, reason) = seeds_to_catch_broken(false).expect("caught even without the ballot check");
    eprintln!("without the ballot-monotonicity check: caught after {n} seed(s): {reason}");
    let seeds = env_u64("SIM_BROKEN_RATE_SEEDS", 40);
    for check_ballots in [true, false] {
        let (caught, kinds) = broken_detection_rate(seeds, check_ballots);
        eprintln!(
            "broken core, ballot check {check_ballots}: {caught} of {seeds} seeds caught; first alarms {kinds:?}"
        );
    }
}

#[test]
fn forgotten_sessions_across_a_reconfiguration_are_caught() {
    let first = 20_000_000;
    let run_broken = |seed| {
        let mut cfg = SimConfig::new(seed, 200);
        cfg.reconfig = true;
        cfg.forget_sessions = true;
        run(&cfg).err().map(|f| f.reason)
    };
    let caught =
        (first..first + BROKEN_BUDGET).find_map(|s| run_broken(s).map(|r| (s - first + 1, r)));
    let (n, reason) = caught.expect("a state transfer without sessions must be caught");
    eprintln!("forgotten sessions caught after {n} seed(s): {reason}");
    let seeds = env_u64("SIM_BROKEN_RATE_SEEDS", 40);
    let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
    for seed in first..first + seeds {
        if let Some(r) = run_broken(seed) {
            let kind = if r.contains("took effect at") {
                "applied twice across configurations"
            } else if r.contains("executed twice") {
                "executed twice on one node"
            } else if r.contains("not linearizable") {
                "not linearizable"
            } else {
                "other"
            };
            *kinds.entry(kind).or_default() += 1;
        }
    }
    let caught: u64 = kinds.values().sum();
    eprintln!("forgotten sessions: {caught} of {seeds} seeds caught; first alarms {kinds:?}");
}

#[test]
fn stale_local_reads_are_caught_by_the_linearizability_check() {
    let caught = (0..BROKEN_BUDGET).find_map(|seed| {
        let mut cfg = SimConfig::new(seed, 200);
        cfg.stale_reads = true;
        run(&cfg).err().map(|f| (seed + 1, f.reason))
    });
    let (n, reason) = caught.expect("stale reads must be caught");
    assert!(reason.contains("not linearizable"), "{reason}");
    eprintln!("stale local reads caught after {n} seed(s): {reason}");
}

/// Slot-move schedules with a deliberate bug: the first seed that catches it, then how many of
/// the first `SIM_BROKEN_RATE_SEEDS` do, by the kind of the first alarm.
fn slot_move_bug_is_caught(name: &str, set: fn(&mut SimConfig)) {
    let first = 40_000_000;
    let run_broken = |seed| {
        let mut cfg = SimConfig::new(seed, 200);
        cfg.moves = true;
        set(&mut cfg);
        run(&cfg).err().map(|f| f.reason)
    };
    let caught =
        (first..first + BROKEN_BUDGET).find_map(|s| run_broken(s).map(|r| (s - first + 1, r)));
    let (n, reason) = caught.unwrap_or_else(|| panic!("{name} must be caught"));
    eprintln!("{name}: caught after {n} seed(s): {reason}");
    let seeds = env_u64("SIM_BROKEN_RATE_SEEDS", 40);
    let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
    for seed in first..first + seeds {
        if let Some(r) = run_broken(seed) {
            let kind = if r.contains("but not where it owns") {
                "served a slot it does not own"
            } else if r.contains("took effect at") {
                "took effect in two places"
            } else if r.contains("executed twice") {
                "executed twice on one node"
            } else if r.contains("not linearizable") {
                "not linearizable"
            } else if r.contains("refused") {
                "a slot move refused"
            } else {
                "other"
            };
            *kinds.entry(kind).or_default() += 1;
        }
    }
    let caught: u64 = kinds.values().sum();
    eprintln!("{name}: {caught} of {seeds} seeds caught; first alarms {kinds:?}");
}

#[test]
fn a_source_serving_frozen_slots_is_caught() {
    slot_move_bug_is_caught("source serving after freeze", |c| c.serve_frozen = true);
}

#[test]
fn installs_without_the_sessions_are_caught() {
    slot_move_bug_is_caught("install without sessions", |c| c.strip_sessions = true);
}

#[test]
fn a_lost_page_of_a_slot_move_is_caught() {
    slot_move_bug_is_caught("a lost page", |c| c.skip_page = true);
}
