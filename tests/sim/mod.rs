//! The deterministic simulator: N nodes running the BLE, Sequence Paxos and Replica cores over
//! a seeded faulty network, with concurrent clients, invariant checks after every step and a
//! linearizability check of the recorded history. Everything derives from one `u64` seed.
//!
//! Besides faults and a lossy network, a third of the schedules start the nodes at different
//! ticks, a third skew the nodes' clocks (skipped and doubled ticks), and some crash a node
//! during the first elections, then stay quiet (no fault, no loss) so a stuck group shows up
//! as a liveness failure instead of being shaken loose by the next fault.
//!
//! Reconfiguration schedules (`SimConfig::reconfig`) add a driver playing the coordinator: once
//! or twice per run it asks the current configuration's leader to change members (replace one
//! or two members with brand-new nodes, add one, remove one), publishes the new member list to
//! the clients, and starts the new nodes, which join by snapshot. Faults, loss and crashes go
//! on throughout; clients follow `Sealed { next_config }` to the new members.
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
use rand::seq::SliceRandom;
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
    /// Membership changes mid-run (one or two per schedule), see the module docs.
    pub reconfig: bool,
    /// TEST ONLY: new configurations start without the client sessions (must be caught).
    pub forget_sessions: bool,
}

impl SimConfig {
    fn bugs(&self) -> node::Bugs {
        node::Bugs {
            skip_promise_check: self.broken,
            forget_sessions: self.forget_sessions,
        }
    }
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
            reconfig: false,
            forget_sessions: false,
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
    /// Membership changes chosen (StopSigns of reconfiguration schedules).
    pub changes: u64,
    /// Nodes that started a configuration from a peer's snapshot (new members and laggards).
    pub snapshot_installs: u64,
    /// Members that learnt their configuration was sealed from a peer, not from their log.
    pub catch_ups: u64,
    /// Nodes that left the group and retired after their grace period.
    pub retired: u64,
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
    /// Every node the schedule ever started, by id (node `i` is `nodes[i - 1]`).
    pub universe: Vec<NodeId>,
    /// The published configurations `(id, members)`, oldest first: the clients' map.
    pub published: Vec<(u32, Vec<NodeId>)>,
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
    /// Reconfiguration schedules: the driver's own random stream, its plan (the operation
    /// counts after which to change members) and the change in progress.
    recfg: SmallRng,
    plan: Vec<usize>,
    change: Option<Change>,
    changes_done: usize,
    stats: ReconfigStats,
}

/// A membership change the driver asked for and waits to see chosen.
#[derive(Clone, Debug)]
struct Change {
    from: u32,
    ss: StopSign,
    tried_at: Option<u64>,
}

#[derive(Clone, Debug, Default)]
struct ReconfigStats {
    retired: u64,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Self {
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let mut timing = SmallRng::seed_from_u64(cfg.seed ^ 0x7431_c0c5_57a6_6e75);
        let mut params = Params::draw(&mut rng, &mut timing, cfg.ops, cfg.harsh);
        let mut recfg = SmallRng::seed_from_u64(cfg.seed ^ 0x5ec0_4f16_c0de_0001);
        let mut plan = Vec::new();
        if cfg.reconfig {
            params.stopsign_after = None;
            let changes = if recfg.gen_bool(0.5) { 1 } else { 2 };
            plan = (0..changes)
                .map(|_| recfg.gen_range(0..cfg.ops.max(1)))
                .collect();
            plan.sort_unstable();
        }
        let members: Vec<NodeId> = (1..=params.nodes as u64).map(NodeId).collect();
        let nodes: Vec<Option<Node>> = members
            .iter()
            .map(|&id| {
                let mut n = Node::new(id, 0, &members, cfg.bugs(), cfg.check_ballots);
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
            published: vec![(0, members.clone())],
            universe: members,
            nodes,
            inv: Invariants::default(),
            clients,
            history: Vec::new(),
            faults: FaultStats::default(),
            out: Vec::new(),
            replies: Vec::new(),
            stopsign_tried: None,
            recfg,
            plan,
            change: None,
            changes_done: 0,
            stats: ReconfigStats::default(),
        }
    }

    pub fn alive(&self) -> Vec<NodeId> {
        self.universe
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
        self.universe
            .iter()
            .copied()
            .filter(|m| self.node(*m).is_some() && self.started(*m))
            .collect()
    }

    /// The members of published configuration `config` (the newest if unknown).
    pub fn config_members(&self, config: u32) -> &[NodeId] {
        let found = self.published.iter().find(|(c, _)| *c == config);
        &found.unwrap_or_else(|| self.newest()).1
    }

    /// The newest published configuration.
    pub fn newest(&self) -> &(u32, Vec<NodeId>) {
        self.published.last().expect("configuration 0 is published")
    }

    /// The live nodes running configuration `config`.
    fn active_in(&self, config: u32) -> Vec<NodeId> {
        self.nodes
            .iter()
            .flatten()
            .filter(|n| n.group.config() == Some(config))
            .map(|n| n.id)
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
        if self.cfg.trace && self.now.is_multiple_of(50) {
            self.trace(|| self.describe());
        }
        for i in 0..self.nodes.len() {
            if self.now < self.params.start_at[i] {
                continue;
            }
            let Some(n) = self.nodes[i].as_mut() else {
                continue;
            };
            let retired = n.drain(&mut self.out, &mut self.replies, &mut self.inv)?;
            let from = n.id;
            if retired {
                // Its grace period is over: the shell stops it (its last words still go out).
                self.stats.retired += 1;
                self.nodes[i] = None;
                self.trace(|| format!("{from} retired"));
            }
            for (to, msg) in std::mem::take(&mut self.out) {
                self.net.send(&mut self.rng, self.now, from, to, msg);
            }
            for (id, answer) in std::mem::take(&mut self.replies) {
                self.answer(client_idx(id.client), id.seq, answer);
            }
        }
        Ok(())
    }

    fn pick_target(&mut self, hint: Option<NodeId>, view: u32) -> NodeId {
        if let Some(h) = hint.filter(|h| self.node(*h).is_some() && self.started(*h)) {
            return h;
        }
        let members = self.config_members(view);
        let live = |m: &&NodeId| self.node(**m).is_some();
        let mut up: Vec<NodeId> = members
            .iter()
            .filter(live)
            .copied()
            .filter(|m| self.started(*m))
            .collect();
        if up.is_empty() {
            // Everyone started so far crashed: the request goes to a process not yet up.
            up = members.iter().filter(live).copied().collect();
        }
        if up.is_empty() {
            up = self.alive();
        }
        up[self.rng.gen_range(0..up.len())]
    }

    /// Send the client's current command to a node; an immediate answer is handled at once.
    fn send_current(&mut self, c: usize) {
        let hint = self.clients[c].hint;
        let view = self.clients[c].view;
        let target = self.pick_target(hint, view);
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
                    redirected: false,
                    tries: 0,
                    deadline: 0,
                });
                self.send_current(c);
            }
            Some(p) if now >= p.deadline => {
                // A real client has a deadline, not a count of redirects: in reconfiguration
                // schedules (where a new configuration takes a few election rounds to start)
                // only silence counts as a timeout.
                if !(self.cfg.reconfig && p.redirected) {
                    p.timeouts += 1;
                }
                p.redirected = false;
                // Redirects between configurations cost attempts too: allow more of them.
                let max_tries = if self.cfg.reconfig {
                    2 * MAX_TRIES
                } else {
                    MAX_TRIES
                };
                if p.timeouts >= MAX_TIMEOUTS || p.tries >= max_tries {
                    self.give_up(c);
                } else {
                    client.hint = None;
                    if self.cfg.reconfig {
                        // Like a router refreshing a stale map after a timeout.
                        client.view = self.published.last().map_or(0, |p| p.0);
                    }
                    self.send_current(c);
                }
            }
            _ => {}
        }
    }

    /// In schedules that seal the group, propose the StopSign (again, until it is chosen): it
    /// names configuration 1 with the same members. Reconfiguration schedules drive membership
    /// changes instead (`drive_changes`).
    fn maybe_reconfigure(&mut self) {
        if self.cfg.reconfig {
            return self.drive_changes();
        }
        let Some(after) = self.params.stopsign_after else {
            return;
        };
        let due = self.stopsign_tried.is_none_or(|t| self.now >= t + 20);
        if self.history.len() < after || self.inv.stopsign_idx(0).is_some() || !due {
            return;
        }
        let up = self.up();
        if up.is_empty() {
            return;
        }
        let target = up[self.rng.gen_range(0..up.len())];
        let ss = StopSign {
            next_config: 1,
            members: self.universe.clone(),
            metadata: vec![7],
        };
        if self.published.len() == 1 {
            self.published.push((1, ss.members.clone()));
        }
        let node = self.node_mut(target).expect("alive");
        if node.group.change_members(0, ss).is_ok() {
            self.stopsign_tried = Some(self.now);
            self.trace(|| format!("stopsign proposed at {target}"));
        }
    }

    /// The coordinator's part: when the plan says so, pick the next member set, publish it,
    /// start the new nodes (joining) and ask the current leader to seal the configuration with
    /// a StopSign naming it; retry until the StopSign is chosen.
    fn drive_changes(&mut self) {
        if let Some(ch) = &self.change {
            if self.inv.stopsign_idx(ch.from).is_some() {
                self.trace(|| format!("c{} sealed: c{} chosen", ch.from, ch.ss.next_config));
                self.change = None;
                self.changes_done += 1;
            } else if ch.tried_at.is_none_or(|t| self.now >= t + 20) {
                self.propose_change();
            }
            return;
        }
        let Some(&after) = self.plan.get(self.changes_done) else {
            return;
        };
        let (cur, members) = self.newest().clone();
        if self.history.len() < after || self.active_in(cur).is_empty() {
            return;
        }
        let next = self.next_members(&members);
        let id = cur + 1;
        let mut sources = members.clone();
        sources.extend(next.iter().copied().filter(|m| !members.contains(m)));
        let mut joiners: Vec<NodeId> = next
            .iter()
            .copied()
            .filter(|m| !members.contains(m))
            .collect();
        joiners.sort_unstable();
        for m in joiners {
            assert_eq!(m.0 as usize, self.nodes.len() + 1, "node ids are dense");
            let sources: Vec<NodeId> = sources.iter().copied().filter(|s| *s != m).collect();
            let mut node =
                Node::joining(m, cur, id, sources, self.cfg.bugs(), self.cfg.check_ballots);
            node.stale_reads = self.cfg.stale_reads;
            self.nodes.push(Some(node));
            self.params.start_at.push(self.now);
            self.params.tick_skew.push((0.0, 0.0));
            self.universe.push(m);
        }
        self.trace(|| format!("change c{cur} {members:?} -> c{id} {next:?}"));
        self.published.push((id, next.clone()));
        self.change = Some(Change {
            from: cur,
            ss: StopSign {
                next_config: id,
                members: next,
                metadata: vec![],
            },
            tried_at: None,
        });
        self.propose_change();
    }

    /// The next member set: crashed members are replaced by new nodes first; then replace one
    /// (three members) or two (five), add one, or remove one, never going below
    /// `2 * crash budget + 1` members (so every configuration keeps a live majority) or above
    /// the initial size plus one.
    fn next_members(&mut self, members: &[NodeId]) -> Vec<NodeId> {
        let budget = self.params.crashes;
        let min = (2 * budget + 1).max(3);
        let max = self.params.nodes + 1;
        let mut fresh = self.nodes.len() as u64;
        let mut new_id = || {
            fresh += 1;
            NodeId(fresh)
        };
        let mut next: Vec<NodeId> = Vec::new();
        for &m in members {
            next.push(if self.node(m).is_some() { m } else { new_id() });
        }
        let replaced = next.iter().filter(|m| !members.contains(m)).count();
        let kind = self.recfg.gen_range(0..100);
        if kind < 15 && next.len() < max {
            next.push(new_id());
        } else if kind < 30 && next.len() > min {
            let i = self.recfg.gen_range(0..next.len());
            next.remove(i);
        } else {
            // Replace one member of three, two of five (crashed ones replaced above count).
            let k: usize = if self.params.nodes >= 5 { 2 } else { 1 };
            let mut old: Vec<usize> = (0..next.len())
                .filter(|&i| members.contains(&next[i]))
                .collect();
            old.shuffle(&mut self.recfg);
            for &i in old.iter().take(k.saturating_sub(replaced)) {
                next[i] = new_id();
            }
        }
        // Number the new nodes densely (a removal may have dropped one just drawn).
        let mut fresh = self.nodes.len() as u64;
        for m in next.iter_mut().filter(|m| !members.contains(m)) {
            fresh += 1;
            *m = NodeId(fresh);
        }
        next
    }

    /// Ask the leader of the configuration being sealed (or any of its active members, which
    /// forwards it) to propose the StopSign.
    fn propose_change(&mut self) {
        let Some(ch) = self.change.clone() else {
            return;
        };
        let active = self.active_in(ch.from);
        if active.is_empty() {
            return;
        }
        let leader = active.iter().copied().find(|&p| {
            self.node(p)
                .and_then(|n| n.group.member())
                .is_some_and(|m| m.sp().is_accepting_leader())
        });
        let target = leader.unwrap_or_else(|| active[self.recfg.gen_range(0..active.len())]);
        let node = self.node_mut(target).expect("active");
        let ok = node.group.change_members(ch.from, ch.ss.clone()).is_ok();
        if ok {
            if let Some(c) = self.change.as_mut() {
                c.tried_at = Some(self.now);
            }
            self.trace(|| {
                format!(
                    "StopSign c{} -> c{} proposed at {target}",
                    ch.from, ch.ss.next_config
                )
            });
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
                if self.cfg.trace {
                    eprintln!("[t={}] client {c} seq {seq}: not leader {hint:?}", self.now);
                }
                // Retry soon (same request id: at most one effect).
                p.deadline = self.now + 3;
                p.redirected = true;
                self.clients[c].hint = hint;
            }
            Err(KvError::Sealed { next_config }) if self.cfg.reconfig => {
                // Follow the redirect: retry soon at the next configuration's members, with
                // the same request id (the session table stops a second effect).
                p.deadline = self.now + 3;
                p.redirected = true;
                self.trace(|| format!("client {c} seq {seq}: sealed, go to c{next_config}"));
                let client = &mut self.clients[c];
                client.view = client.view.max(next_config);
                client.hint = None;
            }
            Err(KvError::Sealed { .. }) => self.sealed(c),
            Err(e) => {
                self.trace(|| format!("client {c} seq {seq}: {e:?}"));
                self.give_up(c)
            }
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
        let pending =
            |s: &Self| sealing && s.inv.stopsign_idx(0).is_none() || s.changes_done < s.plan.len();
        while (!self.all_done() || pending(self)) && self.now < limit {
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
        if pending(self) {
            return Err(format!(
                "liveness: a StopSign was never chosen after the heal\n{}",
                self.describe()
            ));
        }
        // Members of the newest configuration all run it; everyone else retires.
        let limit = self.now + 2_000;
        while !self.settled() && self.now < limit {
            self.step(false)?;
        }
        for _ in 0..100 {
            self.step(false)?;
        }
        let (config, members) = self.newest().clone();
        let chosen = self.inv.chosen_len(config);
        for n in self.nodes.iter().flatten() {
            if !members.contains(&n.id) {
                return Err(format!(
                    "liveness: {} is in no configuration but did not retire\n{}",
                    n.id,
                    self.describe()
                ));
            }
            let Some(m) = n
                .group
                .member()
                .filter(|_| n.group.config() == Some(config))
            else {
                return Err(format!(
                    "liveness: {} does not run c{config} after heal\n{}",
                    n.id,
                    self.describe()
                ));
            };
            if m.sp().decided_idx() != chosen {
                let (id, ld) = (n.id, m.sp().decided_idx());
                return Err(format!(
                    "liveness: {id} decided {ld} of {chosen} entries of c{config} after heal\n{}",
                    self.describe()
                ));
            }
        }
        Ok(())
    }

    /// Every live node runs the newest configuration if it is a member, else has retired.
    fn settled(&self) -> bool {
        let (config, members) = self.newest();
        self.nodes
            .iter()
            .flatten()
            .all(|n| members.contains(&n.id) && n.group.config() == Some(*config))
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
            decided: self.inv.chosen_total(),
            sent: self.net.sent,
            dropped: self.net.dropped,
            duplicated: self.net.duplicated,
            faults: self.faults.clone(),
            checker_gave_up: false,
            sealed: self.inv.stopsign_idx(0).is_some() && !self.cfg.reconfig,
            failed: self.history.iter().filter(|r| r.ok == Some(false)).count(),
            staggered: self.params.start_at[..self.params.nodes]
                .iter()
                .any(|&s| s > 0),
            skewed: self
                .params
                .tick_skew
                .iter()
                .any(|&(s, d)| s > 0.0 || d > 0.0),
            quiet: self.params.fault_p == 0.0,
            changes: self.changes_done as u64,
            snapshot_installs: self.inv.snapshot_installs,
            catch_ups: self.inv.catch_ups,
            retired: self.stats.retired,
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
