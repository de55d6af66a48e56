//! Running many seeds on a few threads, with totals and replayable failure reports.

use std::time::Instant;

use super::{run, Failure, Outcome, SimConfig};

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Totals over many schedules.
#[derive(Default, Debug)]
pub struct Totals {
    schedules: u64,
    ops: u64,
    ok: u64,
    unknown: u64,
    decided: u64,
    ticks: u64,
    sent: u64,
    dropped: u64,
    duplicated: u64,
    cuts: u64,
    isolations: u64,
    splits: u64,
    heals: u64,
    crashes: u64,
    five_nodes: u64,
    checker_gave_up: u64,
    sealed: u64,
    failed: u64,
    staggered: u64,
    skewed: u64,
    quiet: u64,
    changes: u64,
    snapshot_installs: u64,
    catch_ups: u64,
    retired: u64,
    three_groups: u64,
    moves: u64,
    pages: u64,
    moved: u64,
    served: u64,
}

impl Totals {
    fn add(&mut self, o: &Outcome) {
        self.schedules += 1;
        self.ops += o.ops as u64;
        self.ok += o.ok as u64;
        self.unknown += o.unknown as u64;
        self.decided += o.decided;
        self.ticks += o.ticks;
        self.sent += o.sent;
        self.dropped += o.dropped;
        self.duplicated += o.duplicated;
        self.cuts += o.faults.cuts;
        self.isolations += o.faults.isolations;
        self.splits += o.faults.splits;
        self.heals += o.faults.heals;
        self.crashes += o.faults.crashes;
        self.five_nodes += u64::from(o.nodes == 5);
        self.checker_gave_up += u64::from(o.checker_gave_up);
        self.sealed += u64::from(o.sealed);
        self.failed += o.failed as u64;
        self.staggered += u64::from(o.staggered);
        self.skewed += u64::from(o.skewed);
        self.quiet += u64::from(o.quiet);
        self.changes += o.changes;
        self.snapshot_installs += o.snapshot_installs;
        self.catch_ups += o.catch_ups;
        self.retired += o.retired;
        self.three_groups += u64::from(o.groups == 3);
        self.moves += o.moves;
        self.pages += o.pages;
        self.moved += o.moved;
        self.served += o.served;
    }

    fn merge(&mut self, o: Totals) {
        self.schedules += o.schedules;
        self.ops += o.ops;
        self.ok += o.ok;
        self.unknown += o.unknown;
        self.decided += o.decided;
        self.ticks += o.ticks;
        self.sent += o.sent;
        self.dropped += o.dropped;
        self.duplicated += o.duplicated;
        self.cuts += o.cuts;
        self.isolations += o.isolations;
        self.splits += o.splits;
        self.heals += o.heals;
        self.crashes += o.crashes;
        self.five_nodes += o.five_nodes;
        self.checker_gave_up += o.checker_gave_up;
        self.sealed += o.sealed;
        self.failed += o.failed;
        self.staggered += o.staggered;
        self.skewed += o.skewed;
        self.quiet += o.quiet;
        self.changes += o.changes;
        self.snapshot_installs += o.snapshot_installs;
        self.catch_ups += o.catch_ups;
        self.retired += o.retired;
        self.three_groups += o.three_groups;
        self.moves += o.moves;
        self.pages += o.pages;
        self.moved += o.moved;
        self.served += o.served;
    }
}

/// Which kind of schedules to run.
#[derive(Copy, Clone, Debug, Default)]
pub struct Mode {
    /// Far worse networks; liveness not checked.
    pub harsh: bool,
    /// Membership changes mid-run.
    pub reconfig: bool,
    /// Several groups, slot moves between them (and membership changes in each).
    pub moves: bool,
}

impl Mode {
    fn replay_vars(self) -> String {
        let mut v = String::new();
        if self.harsh {
            v.push_str(" SIM_HARSH=1");
        }
        if self.reconfig {
            v.push_str(" SIM_RECONFIG=1");
        }
        if self.moves {
            v.push_str(" SIM_MOVES=1");
        }
        v
    }
}

/// Run seeds `first..first+count` on `threads` threads; returns totals and failures.
pub fn run_many(
    first: u64,
    count: u64,
    ops: usize,
    threads: u64,
    mode: Mode,
) -> (Totals, Vec<Failure>) {
    let results: Vec<(Totals, Vec<Failure>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut totals = Totals::default();
                    let mut failures = Vec::new();
                    let mut seed = first + t;
                    while seed < first + count {
                        let mut cfg = SimConfig::new(seed, ops);
                        cfg.harsh = mode.harsh;
                        cfg.reconfig = mode.reconfig;
                        cfg.moves = mode.moves;
                        match run(&cfg) {
                            Ok(o) => totals.add(&o),
                            Err(f) => failures.push(f),
                        }
                        seed += threads;
                    }
                    (totals, failures)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let mut totals = Totals::default();
    let mut failures = Vec::new();
    for (t, f) in results {
        totals.merge(t);
        failures.extend(f);
    }
    failures.sort_by_key(|f| f.seed);
    (totals, failures)
}

pub fn report_failures(failures: &[Failure], ops: usize, mode: Mode) {
    let mode = mode.replay_vars();
    for f in failures.iter().take(10) {
        eprintln!("FAILED seed {}: {}", f.seed, f.reason);
        eprintln!(
            "  replay: SIM_SEED={} SIM_OPS={ops}{mode} cargo test --test sim -- replay --nocapture",
            f.seed
        );
    }
    if let Some(f) = failures.first() {
        let path = std::env::temp_dir().join(format!("kv-sim-seed-{}.jsonl", f.seed));
        if std::fs::write(&path, &f.history).is_ok() {
            eprintln!("  history of seed {}: {}", f.seed, path.display());
        }
    }
}

pub fn run_and_check(first: u64, count: u64, ops: usize, mode: Mode) {
    let threads = env_u64("SIM_THREADS", 2).max(1);
    let start = Instant::now();
    let (t, failures) = run_many(first, count, ops, threads, mode);
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "sim{}: {} schedules ({} with 5 nodes) x {ops} ops in {secs:.1}s on {threads} threads; \
         ops {} (ok {}, unknown {}, no effect {}), sealed by StopSign {}, decided {}, ticks {}, msgs {} (dropped {}, duplicated {}), \
         faults: cuts {} isolations {} splits {} heals {} crashes {}; staggered starts {}, tick skew {}, \
         quiet {}; checker timed out {}{}{}",
        match (mode.harsh, mode.reconfig, mode.moves) {
            (_, _, true) if mode.harsh => " (harsh slot moves)",
            (_, _, true) => " (slot moves)",
            (false, false, _) => "",
            (true, false, _) => " (harsh)",
            (false, true, _) => " (reconfiguration)",
            (true, true, _) => " (harsh reconfiguration)",
        },
        t.schedules,
        t.five_nodes,
        t.ops,
        t.ok,
        t.unknown,
        t.failed,
        t.sealed,
        t.decided,
        t.ticks,
        t.sent,
        t.dropped,
        t.duplicated,
        t.cuts,
        t.isolations,
        t.splits,
        t.heals,
        t.crashes,
        t.staggered,
        t.skewed,
        t.quiet,
        t.checker_gave_up,
        if mode.reconfig || mode.moves {
            format!(
                "; membership changes chosen {}, snapshot installs {}, catch-ups by notice {}, retired {}",
                t.changes, t.snapshot_installs, t.catch_ups, t.retired
            )
        } else {
            String::new()
        },
        if mode.moves {
            format!(
                "; with 3 groups {}, slot moves completed {} (pages staged {}), client ops \
                 answered Moved {}, ops checked against their slot's owner {}",
                t.three_groups, t.moves, t.pages, t.moved, t.served
            )
        } else {
            String::new()
        }
    );
    report_failures(&failures, ops, mode);
    assert!(
        failures.is_empty(),
        "{} of {count} schedules failed",
        failures.len()
    );
}
