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
//!
//! Slot-move schedules (`SimConfig::moves`) run two or three groups side by side over one
//! network (each node serves one group), each with its own membership changes, and a
//! coordinator that moves slots between them: `Freeze` through the source's log, the pairs in
//! pages of a few bytes (read from a source member, `InstallPart` through the
//! destination's log), `Install` through the destination's, then a new map epoch. Clients route by the map they know and
//! refresh it on `Moved`. `slots.rs` checks that no command takes effect twice across groups
//! and that each slot is served by one group at a time; a final read of every key checks
//! that no acknowledged write was lost.
#![allow(dead_code)]

pub mod changes;
pub mod client;
pub mod faults;
pub mod history;
pub mod invariants;
pub mod moves;
pub mod net;
pub mod node;
pub mod params;
pub mod phases;
pub mod runner;
pub mod slots;

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};

use kv::checker;

use kv_components::replica::{KvError, Reply};
use kv_ports::ids::NodeId;
use kv_ports::kv::KvResult;
use kv_ports::membership::{slot_of, Slot};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use changes::Change;
use client::{client_idx, Client, Pending, MAX_TIMEOUTS, MAX_TRIES, TIMEOUT};
use faults::FaultStats;
use history::OpRecord;
use invariants::Invariants;
use moves::{MoveDriver, COORD};
use net::{Msg, Net};
use node::Node;
pub use params::Params;
use slots::SlotChecks;

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
    /// Two or three groups, slot moves between them, membership changes in each.
    pub moves: bool,
    /// TEST ONLY: replicas keep serving slots they froze (must be caught).
    pub serve_frozen: bool,
    /// TEST ONLY: the coordinator installs moved slots without the source's sessions (must
    /// be caught).
    pub strip_sessions: bool,
    /// TEST ONLY: the coordinator loses a move's first page of pairs (must be caught).
    pub skip_page: bool,
}

impl SimConfig {
    fn bugs(&self) -> node::Bugs {
        node::Bugs {
            skip_promise_check: self.broken,
            forget_sessions: self.forget_sessions,
            serve_frozen: self.serve_frozen,
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
            moves: false,
            serve_frozen: false,
            strip_sessions: false,
            skip_page: false,
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
    /// Groups side by side (slot-move schedules: 2 or 3).
    pub groups: usize,
    /// Slot moves completed (frozen, installed, published).
    pub moves: u64,
    /// Pages of pairs staged through `InstallPart` (all moves).
    pub pages: u64,
    /// Client commands a replica answered `Moved` (one per replica that applied it).
    pub moved: u64,
    /// Client commands that took effect, each checked against its slot's owner.
    pub served: u64,
}

/// A failing schedule: the seed, why, and the history so far.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub reason: String,
    pub history: String,
}

impl GroupSim {
    /// Group `g` with its first members; its membership plan (reconfiguration schedules: one
    /// or two changes; slot-move schedules: none or one) from a random stream of its own.
    fn new(cfg: &SimConfig, g: usize, members: Vec<NodeId>) -> Self {
        let mut recfg = SmallRng::seed_from_u64(cfg.seed ^ 0x5ec0_4f16_c0de_0001 ^ g as u64);
        let changes = if cfg.reconfig {
            if recfg.gen_bool(0.5) {
                1
            } else {
                2
            }
        } else if cfg.moves {
            usize::from(recfg.gen_bool(0.5))
        } else {
            0
        };
        let mut plan: Vec<usize> = (0..changes)
            .map(|_| recfg.gen_range(0..cfg.ops.max(1)))
            .collect();
        plan.sort_unstable();
        GroupSim {
            published: vec![(0, members)],
            inv: Invariants::default(),
            recfg,
            plan,
            change: None,
            changes_done: 0,
            crashes: 0,
        }
    }

    fn pending(&self) -> bool {
        self.changes_done < self.plan.len()
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
    pub nodes: Vec<Option<Node>>,
    pub net: Net,
    /// The groups (one but in slot-move schedules).
    pub groups: Vec<GroupSim>,
    /// The coordinator's slot moves (slot-move schedules).
    moves: Option<MoveDriver>,
    /// Checks across groups: one effect per command, one group serving a slot at a time.
    slots: SlotChecks,
    clients: Vec<Client>,
    pub history: Vec<OpRecord>,
    last_written: Vec<Option<String>>,
    pub faults: FaultStats,
    out: Vec<(NodeId, Msg)>,
    replies: Vec<Reply>,
    stopsign_tried: Option<u64>,
    stats: ReconfigStats,
    /// Client commands answered `Moved` (figures).
    moved_answers: u64,
}

/// One replication group of the simulation.
pub struct GroupSim {
    /// The published configurations `(id, members)`, oldest first: the clients' map.
    pub published: Vec<(u32, Vec<NodeId>)>,
    pub inv: Invariants,
    /// Membership changes: the driver's own random stream, its plan (the operation counts
    /// after which to change members) and the change in progress.
    recfg: SmallRng,
    plan: Vec<usize>,
    change: Option<Change>,
    changes_done: usize,
    /// Crashes among its nodes so far (each group has the schedule's crash budget).
    pub crashes: u64,
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
        let mut mrng = SmallRng::seed_from_u64(cfg.seed ^ 0x510e_c0de_0000_0007);
        let count = if cfg.moves { mrng.gen_range(2..=3) } else { 1 };
        if cfg.moves {
            params.keys = mrng.gen_range(2..=5);
            params.spread_timing(count);
        }
        if cfg.reconfig || cfg.moves {
            params.stopsign_after = None;
        }
        let n = params.nodes;
        let groups: Vec<GroupSim> = (0..count)
            .map(|g| {
                let members = (1..=n as u64).map(|i| NodeId(i + (g * n) as u64)).collect();
                GroupSim::new(&cfg, g, members)
            })
            .collect();
        let (initial, moves) = if cfg.moves {
            let (initial, driver) = Self::draw_moves(&cfg, mrng, params.keys, count);
            (initial, Some(driver))
        } else {
            (BTreeMap::new(), None)
        };
        let mut nodes = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let members = &group.published[0].1;
            for &id in members {
                let mut node = if cfg.moves {
                    let slots = Self::initial_slots(&initial, g);
                    Node::with_slots(id, g, members, slots, cfg.bugs())
                } else {
                    Node::new(id, 0, members, cfg.bugs(), cfg.check_ballots)
                };
                node.stale_reads = cfg.stale_reads;
                nodes.push(Some(node));
            }
        }
        let universe = (1..=nodes.len() as u64).map(NodeId).collect();
        let per_client = cfg.ops.div_ceil(params.clients);
        let clients = (0..params.clients)
            .map(|i| Client::new(i, per_client, params.keys, count))
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
            universe,
            nodes,
            groups,
            moves,
            slots: SlotChecks::new(initial),
            clients,
            history: Vec::new(),
            faults: FaultStats::default(),
            out: Vec::new(),
            replies: Vec::new(),
            stopsign_tried: None,
            stats: ReconfigStats::default(),
            moved_answers: 0,
        }
    }

    /// The movable slots (those of the keys) with their first owners, and the coordinator
    /// with its plan of 2 to 4 moves.
    fn draw_moves(
        cfg: &SimConfig,
        mut mrng: SmallRng,
        keys: usize,
        groups: usize,
    ) -> (BTreeMap<Slot, usize>, MoveDriver) {
        let mut initial = BTreeMap::new();
        for k in 0..keys {
            let s = slot_of(format!("k{k}").as_bytes());
            let g = mrng.gen_range(0..groups);
            initial.entry(s).or_insert(g);
        }
        let count = mrng.gen_range(2..=4);
        let mut plan: Vec<usize> = (0..count)
            .map(|_| mrng.gen_range(0..cfg.ops.max(1)))
            .collect();
        plan.sort_unstable();
        let driver = MoveDriver::new(
            mrng,
            plan,
            initial.clone(),
            groups,
            cfg.strip_sessions,
            cfg.skip_page,
        );
        (initial, driver)
    }

    /// Group `g`'s slots at the start: its movable slots, and every other slot for group 0.
    fn initial_slots(initial: &BTreeMap<Slot, usize>, g: usize) -> Vec<Slot> {
        let all = (0..kv_ports::membership::SLOTS as u16).map(Slot);
        all.filter(|s| initial.get(s).map_or(g == 0, |&o| o == g))
            .collect()
    }

    /// Whether clients follow redirects between configurations and groups (reconfiguration
    /// and slot-move schedules) instead of stopping at a sealed group.
    pub fn redirects(&self) -> bool {
        self.cfg.reconfig || self.cfg.moves
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

    /// The members of group `g`'s published configuration `config` (the newest if unknown).
    pub fn config_members(&self, g: usize, config: u32) -> &[NodeId] {
        let found = self.groups[g].published.iter().find(|(c, _)| *c == config);
        &found.unwrap_or_else(|| self.newest(g)).1
    }

    /// Group `g`'s newest published configuration.
    pub fn newest(&self, g: usize) -> &(u32, Vec<NodeId>) {
        let published = &self.groups[g].published;
        published.last().expect("configuration 0 is published")
    }

    /// The live nodes of group `g` running configuration `config`.
    fn active_in(&self, g: usize, config: u32) -> Vec<NodeId> {
        self.nodes
            .iter()
            .flatten()
            .filter(|n| n.gi == g && n.group.config() == Some(config))
            .map(|n| n.id)
            .collect()
    }

    /// Live nodes that may still crash: their group has crash budget left.
    pub fn crashable(&self) -> Vec<NodeId> {
        let budget = self.params.crashes as u64;
        let nodes = self.nodes.iter().flatten();
        let ok = nodes.filter(|n| self.groups[n.gi].crashes < budget);
        ok.map(|n| n.id).collect()
    }

    /// Crash `victim` (crash-stop): counted against its group's budget.
    pub fn crash(&mut self, victim: NodeId) {
        let gi = self.node(victim).expect("alive").gi;
        self.groups[gi].crashes += 1;
        self.faults.crashes += 1;
        self.nodes[(victim.0 - 1) as usize] = None;
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
            let inv = &mut self.groups[n.gi].inv;
            let retired = n.drain(
                &mut self.out,
                &mut self.replies,
                inv,
                &mut self.slots,
                self.now,
            )?;
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
                if id.client == COORD {
                    self.move_answer(id.seq, answer);
                } else if self.reply_lost() {
                    // The client's connection broke after the command was applied: it times
                    // out and retries, maybe at another group by then.
                    self.trace(|| format!("reply to {id:?} lost"));
                } else {
                    self.answer(client_idx(id.client), id.seq, answer);
                }
            }
        }
        if let Some(e) = self.moves.as_mut().and_then(|d| d.error.take()) {
            return Err(e);
        }
        Ok(())
    }

    /// Slot-move schedules lose client replies like messages (at the network's loss rate),
    /// so commands applied at a slot's source get retried at its destination.
    fn reply_lost(&mut self) -> bool {
        let p = self.net.params.drop_p;
        self.cfg.moves && p > 0.0 && self.rng.gen_bool(p)
    }

    fn pick_target(&mut self, hint: Option<NodeId>, g: usize, view: u32) -> NodeId {
        let usable = |h: &NodeId| self.node(*h).is_some_and(|n| n.gi == g) && self.started(*h);
        if let Some(h) = hint.filter(usable) {
            return h;
        }
        let members = self.config_members(g, view);
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
    /// The group the client's current operation goes to, by the map the client knows.
    fn op_group(&self, c: usize) -> usize {
        let (Some(d), Some(p)) = (&self.moves, &self.clients[c].cur) else {
            return 0;
        };
        let key = p.cmd.op.key().expect("client operations have a key");
        d.owner(self.clients[c].map, key)
    }

    /// A router refreshing a stale map: the newest configurations and slot map.
    fn refresh(&mut self, c: usize) {
        let newest: Vec<u32> = (0..self.groups.len()).map(|g| self.newest(g).0).collect();
        let client = &mut self.clients[c];
        client.views = newest;
        if let Some(d) = &self.moves {
            client.map = d.newest();
        }
    }

    fn send_current(&mut self, c: usize) {
        let hint = self.clients[c].hint;
        let g = self.op_group(c);
        let view = self.clients[c].views[g];
        let target = self.pick_target(hint, g, view);
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
                let redirects = self.cfg.reconfig || self.cfg.moves;
                if !(redirects && p.redirected) {
                    p.timeouts += 1;
                }
                p.redirected = false;
                // Redirects between configurations cost attempts too: allow more of them.
                let max_tries = if redirects { 2 * MAX_TRIES } else { MAX_TRIES };
                if p.timeouts >= MAX_TIMEOUTS || p.tries >= max_tries {
                    self.give_up(c);
                } else {
                    client.hint = None;
                    if redirects {
                        // Like a router refreshing a stale map after a timeout.
                        self.refresh(c);
                    }
                    self.send_current(c);
                }
            }
            _ => {}
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
        let redirects = self.redirects();
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
            Err(KvError::Sealed { next_config }) if redirects => {
                // Follow the redirect: retry soon at the next configuration's members, with
                // the same request id (the session table stops a second effect).
                p.deadline = self.now + 3;
                p.redirected = true;
                self.trace(|| format!("client {c} seq {seq}: sealed, go to c{next_config}"));
                let g = self.op_group(c);
                let client = &mut self.clients[c];
                client.views[g] = client.views[g].max(next_config);
                client.hint = None;
            }
            Err(KvError::Moved { epoch }) if self.cfg.moves => {
                // The slot moved: refresh the map and retry soon with the same request id.
                p.deadline = self.now + 3;
                p.redirected = true;
                self.moved_answers += 1;
                self.trace(|| format!("client {c} seq {seq}: moved at {epoch}, refresh"));
                self.refresh(c);
                self.clients[c].hint = None;
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

    fn describe(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .flatten()
            .map(|n| format!("g{} {}", n.gi, n.describe()))
            .collect();
        format!("t={} {}", self.now, nodes.join("\n"))
    }

    fn outcome(&self) -> Outcome {
        let sum = |f: fn(&GroupSim) -> u64| self.groups.iter().map(f).sum::<u64>();
        Outcome {
            nodes: self.params.nodes,
            ops: self.history.len(),
            ok: self.history.iter().filter(|r| r.ok == Some(true)).count(),
            unknown: self.history.iter().filter(|r| r.ok.is_none()).count(),
            ticks: self.now,
            decided: sum(|g| g.inv.chosen_total()),
            sent: self.net.sent,
            dropped: self.net.dropped,
            duplicated: self.net.duplicated,
            faults: self.faults.clone(),
            checker_gave_up: false,
            sealed: self.groups[0].inv.stopsign_idx(0).is_some() && !self.redirects(),
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
            changes: sum(|g| g.changes_done as u64),
            snapshot_installs: sum(|g| g.inv.snapshot_installs),
            catch_ups: sum(|g| g.inv.catch_ups),
            retired: self.stats.retired,
            groups: self.groups.len(),
            moves: self.moves.as_ref().map_or(0, |d| d.done as u64),
            pages: self.moves.as_ref().map_or(0, |d| d.pages),
            moved: self.moved_answers,
            served: self.slots.served,
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
