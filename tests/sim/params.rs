//! A schedule's parameters: node count, clients, keys, fault rates, timing, all drawn from the
//! seed.

use rand::rngs::SmallRng;
use rand::Rng;

use super::net::NetParams;

/// Node count, clients, keys, fault rates: drawn per schedule from the seed.
#[derive(Clone, Debug)]
pub struct Params {
    pub nodes: usize,
    pub clients: usize,
    pub keys: usize,
    pub fault_p: f64,
    pub crashes: usize,
    pub net: NetParams,
    /// Propose a StopSign once this many operations were issued (some schedules only).
    pub stopsign_after: Option<usize>,
    /// Per node: the tick its process comes up (all 0 unless the starts are staggered).
    /// Before it, the node neither ticks nor handles messages, and clients don't pick it.
    pub start_at: Vec<u64>,
    /// Per node: the chance a tick is skipped and the chance it is doubled (all 0 unless the
    /// clocks are skewed), so round boundaries drift between nodes.
    pub tick_skew: Vec<(f64, f64)>,
    /// A crash during the first elections, at this tick (some schedules with a crash budget):
    /// a fresh leader dying before its peers' detectors caught up with it.
    pub early_crash: Option<u64>,
}

/// Ticks per BLE round of the simulated members (`MemberCoreConfig` default).
pub const ROUND_TICKS: u64 = 12;
/// Staggered starts spread over this many rounds.
const START_ROUNDS: u64 = 3;

impl Params {
    /// `rng` draws the classic parameters; `timing` (a stream of its own, so schedules without
    /// staggered starts or skew stay as they were) draws the start ticks and clock skew.
    pub(super) fn draw(rng: &mut SmallRng, timing: &mut SmallRng, ops: usize, harsh: bool) -> Self {
        let nodes = if rng.gen_bool(0.5) { 3 } else { 5 };
        let mut start_at = vec![0; nodes];
        if timing.gen_bool(1.0 / 3.0) {
            for s in start_at.iter_mut() {
                *s = timing.gen_range(0..START_ROUNDS * ROUND_TICKS);
            }
            // Someone is up from the start (clients need a node to talk to).
            let first = start_at.iter().copied().min().unwrap_or(0);
            for s in start_at.iter_mut() {
                *s -= first;
            }
        }
        let mut tick_skew = vec![(0.0, 0.0); nodes];
        if timing.gen_bool(1.0 / 3.0) {
            for k in tick_skew.iter_mut() {
                *k = (timing.gen_range(0.0..0.08), timing.gen_range(0.0..0.02));
            }
        }
        // Early crashes aim at the first elections: with staggered starts, around the first
        // round end of the last node up (it may just have elected itself over the others).
        let last_up = start_at.iter().copied().max().unwrap_or(0);
        let early_crash = timing.gen_bool(0.5).then(|| {
            if last_up > 0 && timing.gen_bool(0.5) {
                last_up + timing.gen_range(ROUND_TICKS..3 * ROUND_TICKS)
            } else {
                timing.gen_range(1..(START_ROUNDS + 3) * ROUND_TICKS)
            }
        });
        let quiet = timing.gen_bool(0.5);
        let mut params = Params {
            early_crash,
            start_at,
            tick_skew,
            nodes,
            clients: rng.gen_range(3..=5),
            keys: rng.gen_range(1..=3),
            fault_p: rng.gen_range(0.005..0.04),
            crashes: if rng.gen_bool(0.5) {
                (nodes - 1) / 2
            } else {
                0
            },
            net: NetParams {
                drop_p: rng.gen_range(0.0..0.1),
                dup_p: rng.gen_range(0.0..0.05),
                max_delay: rng.gen_range(1..=5),
            },
            stopsign_after: rng.gen_bool(0.15).then(|| rng.gen_range(0..ops.max(1))),
        };
        if quiet && params.early_crash.is_some() && params.crashes > 0 {
            // Nothing but the early crash, over a lossless network (as over TCP): no later
            // fault or loss comes to shake a stuck group loose.
            params.fault_p = 0.0;
            params.net.drop_p = 0.0;
        }
        params.harsher(rng, harsh)
    }

    /// Every group's nodes start and tick like group 0's (slot-move schedules).
    pub(super) fn spread_timing(&mut self, groups: usize) {
        let (start, skew) = (self.start_at.clone(), self.tick_skew.clone());
        for _ in 1..groups {
            self.start_at.extend_from_slice(&start);
            self.tick_skew.extend_from_slice(&skew);
        }
    }

    fn harsher(mut self, rng: &mut SmallRng, harsh: bool) -> Self {
        if harsh {
            self.fault_p = rng.gen_range(0.02..0.1);
            self.net.drop_p = rng.gen_range(0.0..0.3);
            self.net.dup_p = rng.gen_range(0.0..0.2);
            self.net.max_delay = rng.gen_range(5..=30);
        }
        self
    }
}
