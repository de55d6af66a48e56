//! The deterministic simulator: N nodes running the BLE, Sequence Paxos and Replica cores over
//! a seeded faulty network, with concurrent clients, invariant checks after every step and a
//! linearizability check of the recorded history. Everything derives from one `u64` seed.
//!
//! Besides faults and a lossy network, a third of the schedules start the nodes at different
//! ticks, a third skew the nodes' clocks (skipped and doubled ticks), and some crash a node
//! during the first elections, then stay quiet (no fault, no loss) so a stuck group shows up
//! as a liveness failure instead of being shaken loose by the next fault.
#![allow(dead_code)]

pub mod client;
pub mod faults;
pub mod history;
pub mod invariants;
pub mod net;
pub mod node;
pub mod runner;

use std::panic::{self, AssertUnwindSafe};

use kv::checker;

use kv_components::replica::{KvError, Reply};
use kv_components::sequence_paxos::StopSign;
use kv_ports::ids::NodeId;
use kv_ports::kv::KvResult;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use client::{client_idx, Client, Pending, MAX_TIMEOUTS, MAX_TRIES, TIMEOUT};
use faults::FaultStats;
use history::OpRecord;
use invariants::Invariants;
use net::{Msg, Net, NetParams};
use node::Node;

/// What to run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Everything random derives from it.
    pub seed: u64,
    /// Client operations in the faulty phase (a final one per client follows the heal).
    pub ops: usize,
    /// Run every node with the deliberately broken promise check.
    pub broken: bool,
    /// Check that promised ballots never decrease (off to see what else catches a bug).
    pub check_ballots: bool,
    /// Print a trace of faults and client operations.
    pub trace: bool,
    /// TEST ONLY: nodes answer reads locally, bypassing the log (must be caught as stale reads).
    pub stale_reads: bool,
    /// Far worse networks (delays beyond the election timeout, heavy loss and duplication,
    /// frequent faults): dueling leaders everywhere. Safety and linearizability are checked;
    /// liveness is not (no timeout can be right for such a network).
    pub harsh: bool,
}

impl SimConfig {
    pub fn new(seed: u64, ops: usize) -> Self {
        SimConfig {
            seed,
            ops,
            broken: false,
            check_ballots: true,
            trace: false,
            stale_reads: false,
            harsh: false,
        }
    }
}

/// Figures of one passing schedule.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub nodes: usize,
    pub ops: usize,
    pub ok: usize,
    pub unknown: usize,
    pub ticks: u64,
    pub decided: u64,
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub faults: FaultStats,
    pub checker_gave_up: bool,
    /// Whether a StopSign sealed the group in this schedule.
    pub sealed: bool,
    /// Operations that definitely had no effect (`ok: false`).
    pub failed: usize,
    /// Whether the nodes started at different ticks, ticked with skew, or the schedule was a
    /// quiet one (an early crash, then no fault or loss).
    pub staggered: bool,
    pub skewed: bool,
    pub quiet: bool,
}

/// A failing schedule: the seed, why, and the history so far.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub reason: String,
    pub history: String,
}

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
    fn draw(rng: &mut SmallRng, timing: &mut SmallRng, ops: usize, harsh: bool) -> Self {
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

pub struct Sim {
    pub cfg: SimConfig,
    pub params: Params,
    pub rng: SmallRng,
    /// Per-tick clock-skew draws (a stream of its own).
    pub timing: SmallRng,
    pub now: u64,
    event: u64,
    pub members: Vec<NodeId>,
    pub nodes: Vec<Option<Node>>,
    pub net: Net,
    inv: Invariants,
    clients: Vec<Client>,
    pub history: Vec<OpRecord>,
    last_written: Vec<Option<String>>,
    pub faults: FaultStats,
    out: Vec<(NodeId, Msg)>,
    replies: Vec<Reply>,
    stopsign_tried: Option<u64>,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Self {
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let mut timing = SmallRng::seed_from_u64(cfg.seed ^ 0x7431_c0c5_57a6_6e75);
        let params = Params::draw(&mut rng, &mut timing, cfg.ops, cfg.harsh);
        let members: Vec<NodeId> = (1..=params.nodes as u64).map(NodeId).collect();
        let nodes: Vec<Option<Node>> = members
            .iter()
            .map(|&id| {
                let mut n = Node::new(id, &members, cfg.broken, cfg.check_ballots);
                n.stale_reads = cfg.stale_reads;
                Some(n)
            })
            .collect();
        let per_client = cfg.ops.div_ceil(params.clients);
        let clients = (0..params.clients)
            .map(|i| Client::new(i, per_client, params.keys))
            .collect();
        Sim {
            net: Net::new(params.net.clone()),
            last_written: vec![None; params.keys],
            cfg,
            params,
            rng,
            timing,
            now: 0,
            event: 0,
            members,
            nodes,
            inv: Invariants::default(),
            clients,
            history: Vec::new(),
            faults: FaultStats::default(),
            out: Vec::new(),
            replies: Vec::new(),
            stopsign_tried: None,
        }
    }

    pub fn alive(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .copied()
            .filter(|m| self.node(*m).is_some())
            .collect()
    }

    /// Whether `id`'s process has started (crashed or not).
    pub fn started(&self, id: NodeId) -> bool {
        self.now >= self.params.start_at[(id.0 - 1) as usize]
    }

    /// The nodes that are alive and started: the ones clients may pick.
    pub fn up(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .copied()
            .filter(|m| self.node(*m).is_some() && self.started(*m))
            .collect()
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes[(id.0 - 1) as usize].as_ref()
    }

    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes[(id.0 - 1) as usize].as_mut()
    }

    fn stamp(&mut self) -> u64 {
        self.event += 1;
        self.now * 1_000_000 + self.event
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.cfg.trace {
            eprintln!("[t={}] {}", self.now, what());
        }
    }

    /// One tick: faults, timers, deliveries, clients, then every node's outputs.
    fn step(&mut self, with_faults: bool) -> Result<(), String> {
        self.now += 1;
        self.event = 0;
        if with_faults {
            if self.params.early_crash == Some(self.now) {
                faults::early_crash(self);
            }
            faults::maybe_inject(self);
        }
        for i in 0..self.nodes.len() {
            if self.now < self.params.start_at[i] {
                continue;
            }
            let (skip_p, double_p) = self.params.tick_skew[i];
            let ticks = if skip_p > 0.0 && self.timing.gen_bool(skip_p) {
                0
            } else if double_p > 0.0 && self.timing.gen_bool(double_p) {
                2
            } else {
                1
            };
            if let Some(n) = self.nodes[i].as_mut() {
                for _ in 0..ticks {
                    n.tick();
                }
            }
        }
        while let Some((from, to, msg)) = self.net.pop_due(self.now) {
            if !self.started(to) {
                // Nobody listens yet: lost, as to a process not yet up.
                self.net.dropped += 1;
                continue;
            }
            if let Some(n) = self.node_mut(to) {
                n.handle(from, msg);
            }
        }
        for c in 0..self.clients.len() {
            self.client_step(c);
        }
        self.maybe_reconfigure();
        for i in 0..self.nodes.len() {
            if self.now < self.params.start_at[i] {
                continue;
            }
            let Some(n) = self.nodes[i].as_mut() else {
                continue;
            };
            n.drain(&mut self.out, &mut self.replies, &mut self.inv)?;
            let from = n.id;
            for (to, msg) in std::mem::take(&mut self.out) {
                self.net.send(&mut self.rng, self.now, from, to, msg);
            }
            for (id, answer) in std::mem::take(&mut self.replies) {
                self.answer(client_idx(id.client), id.seq, answer);
            }
        }
        Ok(())
    }

    fn pick_target(&mut self, hint: Option<NodeId>) -> NodeId {
        if let Some(h) = hint.filter(|h| self.node(*h).is_some() && self.started(*h)) {
            return h;
        }
        let mut up = self.up();
        if up.is_empty() {
            // Everyone started so far crashed: the request goes to a process not yet up.
            up = self.alive();
        }
        up[self.rng.gen_range(0..up.len())]
    }

    /// Send the client's current command to a node; an immediate answer is handled at once.
    fn send_current(&mut self, c: usize) {
        let hint = self.clients[c].hint;
        let target = self.pick_target(hint);
        let cur = self.clients[c]
            .cur
            .as_mut()
            .expect("an operation in progress");
        cur.tries += 1;
        cur.deadline = self.now + TIMEOUT;
        let cmd = cur.cmd.clone();
        let seq = cmd.id.seq;
        if !self.started(target) {
            return; // lost; the client times out and retries
        }
        let node = self.nodes[(target.0 - 1) as usize]
            .as_mut()
            .expect("alive target");
        if let Some(answer) = node.client_request(cmd) {
            self.answer(c, seq, answer);
        }
    }

    fn client_step(&mut self, c: usize) {
        let now = self.now;
        let client = &mut self.clients[c];
        match &mut client.cur {
            None if client.remaining > 0 && now >= client.next_at => {
                let call = self.stamp();
                let client = &mut self.clients[c];
                let (cmd, rec) =
                    client.next_op(&mut self.rng, self.params.keys, &self.last_written, call);
                if let Some(v) = match &rec.kind {
                    history::OpKind::Put { value } | history::OpKind::Cas { value, .. } => {
                        Some(value.clone())
                    }
                    _ => None,
                } {
                    let k: usize = rec.key[1..].parse().expect("key kN");
                    self.last_written[k] = Some(v);
                }
                self.trace(|| format!("client {c} calls {:?}", cmd));
                self.history.push(rec);
                let rec = self.history.len() - 1;
                self.clients[c].cur = Some(Pending {
                    cmd,
                    rec,
                    timeouts: 0,
                    tries: 0,
                    deadline: 0,
                });
                self.send_current(c);
            }
            Some(p) if now >= p.deadline => {
                p.timeouts += 1;
                if p.timeouts >= MAX_TIMEOUTS || p.tries >= MAX_TRIES {
                    self.give_up(c);
                } else {
                    client.hint = None;
                    self.send_current(c);
                }
            }
            _ => {}
        }
    }

    /// In schedules that seal the group, propose the StopSign (again, until it is chosen).
    fn maybe_reconfigure(&mut self) {
        let Some(after) = self.params.stopsign_after else {
            return;
        };
        let due = self.stopsign_tried.is_none_or(|t| self.now >= t + 20);
        if self.history.len() < after || self.inv.stopsign_idx().is_some() || !due {
            return;
        }
        let up = self.up();
        if up.is_empty() {
            return;
        }
        let target = up[self.rng.gen_range(0..up.len())];
        let ss = StopSign {
            next_config: 1,
            members: self.members.clone(),
            metadata: vec![7],
        };
        let node = self.node_mut(target).expect("alive");
        if node.member.reconfigure(ss).is_ok() {
            self.stopsign_tried = Some(self.now);
            self.trace(|| format!("stopsign proposed at {target}"));
        }
    }

    /// The group is sealed: the operation ends (no effect if this was its only attempt) and
    /// the client stops, as it would move to the next configuration.
    fn sealed(&mut self, c: usize) {
        let ret = self.stamp();
        let p = self.clients[c]
            .cur
            .take()
            .expect("an operation in progress");
        let rec = &mut self.history[p.rec];
        rec.ok = if p.tries == 1 && p.timeouts == 0 {
            Some(false)
        } else {
            None
        };
        rec.ret = ret;
        self.clients[c].remaining = 0;
    }

    fn give_up(&mut self, c: usize) {
        let ret = self.stamp();
        let p = self.clients[c]
            .cur
            .take()
            .expect("an operation in progress");
        self.trace(|| format!("client {c} gives up on seq {}", p.cmd.id.seq));
        let rec = &mut self.history[p.rec];
        rec.ok = None;
        rec.ret = ret;
        self.clients[c].next_at = self.now + 1;
    }

    fn answer(&mut self, c: usize, seq: u64, answer: Result<KvResult, KvError>) {
        let Some(p) = &mut self.clients[c].cur else {
            return;
        };
        if p.cmd.id.seq != seq {
            return;
        }
        match answer {
            Ok(result) => {
                let ret = self.stamp();
                let rec = self.clients[c].cur.as_ref().expect("checked").rec;
                self.trace(|| format!("client {c} seq {seq} -> {result:?}"));
                self.clients[c].complete(&mut self.history[rec], &result, ret);
                self.clients[c].next_at = self.now + self.rng.gen_range(0..3);
            }
            Err(KvError::NotLeader { hint }) => {
                // Retry soon (same request id: at most one effect).
                p.deadline = self.now + 3;
                self.clients[c].hint = hint;
            }
            Err(KvError::Sealed { .. }) => self.sealed(c),
            Err(_) => self.give_up(c),
        }
    }

    fn all_done(&self) -> bool {
        self.clients.iter().all(Client::done)
    }

    /// Heal every link and stop losing messages; give each client one more operation.
    fn heal_for_good(&mut self) {
        faults::heal_all(self);
        self.net.params.drop_p = 0.0;
        self.net.params.dup_p = 0.0;
        if self.params.stopsign_after.is_some() {
            return;
        }
        for c in self.clients.iter_mut() {
            c.remaining += 1;
        }
    }

    fn run_phases(&mut self) -> Result<(), String> {
        let limit = self.cfg.ops as u64 * 300 + 2_000;
        while !self.all_done() && self.now < limit {
            self.step(true)?;
        }
        if !self.all_done() {
            return Err("clients still busy at the end of the faulty phase".into());
        }
        let final_from = self.history.len();
        self.heal_for_good();
        let limit = self.now + 3_000;
        let sealing = self.params.stopsign_after.is_some();
        while (!self.all_done() || sealing && self.inv.stopsign_idx().is_none()) && self.now < limit
        {
            self.step(false)?;
        }
        if self.cfg.harsh {
            return Ok(());
        }
        let lost = self.history[final_from..]
            .iter()
            .filter(|r| r.ok != Some(true))
            .count();
        if lost > 0 {
            return Err(format!(
                "liveness: {lost} operation(s) after the final heal did not complete\n{}",
                self.describe()
            ));
        }
        for _ in 0..100 {
            self.step(false)?;
        }
        let chosen = self.inv.chosen_len();
        for n in self.nodes.iter().flatten() {
            if sealing && n.member.sp().decided_stopsign().is_none() {
                return Err(format!(
                    "liveness: {} never decided the StopSign\n{}",
                    n.id,
                    self.describe()
                ));
            }
            if n.member.sp().decided_idx() != chosen {
                let (id, ld) = (n.id, n.member.sp().decided_idx());
                return Err(format!(
                    "liveness: {id} decided {ld} of {chosen} entries after heal\n{}",
                    self.describe()
                ));
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().flatten().map(Node::describe).collect();
        format!("t={} {}", self.now, nodes.join("\n"))
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            nodes: self.params.nodes,
            ops: self.history.len(),
            ok: self.history.iter().filter(|r| r.ok == Some(true)).count(),
            unknown: self.history.iter().filter(|r| r.ok.is_none()).count(),
            ticks: self.now,
            decided: self.inv.chosen_len(),
            sent: self.net.sent,
            dropped: self.net.dropped,
            duplicated: self.net.duplicated,
            faults: self.faults.clone(),
            checker_gave_up: false,
            sealed: self.inv.stopsign_idx().is_some(),
            failed: self.history.iter().filter(|r| r.ok == Some(false)).count(),
            staggered: self.params.start_at.iter().any(|&s| s > 0),
            skewed: self
                .params
                .tick_skew
                .iter()
                .any(|&(s, d)| s > 0.0 || d > 0.0),
            quiet: self.params.fault_p == 0.0,
        }
    }
}

/// Wall-clock bound of one history's check; a timeout counts as "checker gave up", not failure.
pub const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Run one schedule; any invariant violation, panic, liveness failure or non-linearizable
/// history is a `Failure` naming the seed.
pub fn run(cfg: &SimConfig) -> Result<Outcome, Failure> {
    let seed = cfg.seed;
    let mut sim = Sim::new(cfg.clone());
    let result = panic::catch_unwind(AssertUnwindSafe(|| sim.run_phases()));
    let fail = |sim: &Sim, reason: String| Failure {
        seed,
        reason,
        history: history::to_jsonl(&sim.history),
    };
    match result {
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(fail(&sim, format!("panic: {msg}")));
        }
        Ok(Err(reason)) => return Err(fail(&sim, reason)),
        Ok(Ok(())) => {}
    }
    let mut out = sim.outcome();
    let jsonl = history::to_jsonl(&sim.history);
    let parsed = match checker::History::parse_str(&jsonl) {
        Ok(h) => h,
        Err(e) => {
            return Err(fail(
                &sim,
                format!("history unreadable by the checker: {e}"),
            ))
        }
    };
    let options = checker::Options {
        threads: 1,
        timeout: Some(CHECK_TIMEOUT),
        ..Default::default()
    };
    let verdict = checker::check_history(&parsed, options);
    match verdict {
        checker::Verdict::Linearizable => {}
        checker::Verdict::NotLinearizable(c) => {
            let key = parsed.key_name(c.key).to_string();
            return Err(fail(&sim, format!("history not linearizable on key {key}")));
        }
        checker::Verdict::Unknown { .. } => out.checker_gave_up = true,
    }
    Ok(out)
}
