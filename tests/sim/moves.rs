//! The coordinator's slot moves (slot-move schedules): when the plan says so, pick slots of one
//! group and another group, then `Freeze` them through the source's log (retrying at the
//! leader, following hints, until a `Frozen` answer), move their pairs in small pages (each
//! read from a member of the source that applied the freeze, then staged through the
//! destination's log with `InstallPart`, retried likewise), `Install` the last page with the
//! sessions through the destination's log, and only then publish the new map. Pages are a few
//! few bytes (mostly one pair), the freeze's first page is sometimes ignored, and now and
//! then the coordinator starts the pages over: repeated parts must change nothing. Clients
//! route by the map they know and refresh it on `Moved`.

use std::collections::BTreeMap;

use bytes::Bytes;
use kv_ports::ids::{ClientId, NodeId};
use kv_ports::kv::{KvCommand, KvError, KvOp, KvResult, RequestId, SlotData};
use kv_ports::membership::{slot_of, Epoch, Slot};
use rand::rngs::SmallRng;
use rand::Rng;
use uuid::Uuid;

use super::slots::MoveRec;
use super::Sim;

/// The coordinator's client id (its commands bypass the session table; each try is new).
pub const COORD: ClientId = ClientId(Uuid::from_u128(0xC00D_0000_0000));

/// Ticks between tries of one freeze or install.
const RETRY: u64 = 20;

/// The slot map as the simulated coordinator publishes it, and the move in progress.
pub struct MoveDriver {
    rng: SmallRng,
    /// The operation counts after which to start each move.
    plan: Vec<usize>,
    /// Published maps of the movable slots (the others stay with group 0), oldest first: map
    /// `i` has epoch `i + 1`.
    pub maps: Vec<BTreeMap<Slot, usize>>,
    groups: usize,
    cur: Option<Move>,
    pub done: usize,
    seq: u64,
    /// TEST ONLY: install without the source's sessions (must be caught).
    strip_sessions: bool,
    /// TEST ONLY: skip the first page read after the freeze (must be caught).
    skip_page: bool,
    /// A move went wrong (a refused freeze or install): the schedule fails.
    pub error: Option<String>,
    /// Pages staged through `InstallPart`, all moves (figures).
    pub pages: u64,
}

struct Move {
    rec: MoveRec,
    /// `None` while freezing; the freeze's summary (sessions, sizes; no pairs) once frozen.
    data: Option<SlotData>,
    /// What is being done once frozen.
    phase: Phase,
    /// The last key staged at the destination: the next page starts after it.
    after: Option<Bytes>,
    /// This move's page size.
    page_bytes: usize,
    /// Pages staged (figures).
    parts: u64,
    tried_at: Option<u64>,
    hint: Option<NodeId>,
    /// Sequence numbers of this phase's tries (answers to other tries are stale).
    seqs: Vec<u64>,
}

/// A frozen move's step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Read the next page from a member of the source.
    Read,
    /// Stage this page at the destination (`InstallPart`).
    Part(Vec<(Bytes, Bytes)>),
    /// Install with this last page.
    Install(Vec<(Bytes, Bytes)>),
}

impl MoveDriver {
    /// `moves` moves over `groups` groups, from the initial map `initial`.
    pub fn new(
        rng: SmallRng,
        plan: Vec<usize>,
        initial: BTreeMap<Slot, usize>,
        groups: usize,
        strip_sessions: bool,
        skip_page: bool,
    ) -> Self {
        MoveDriver {
            rng,
            plan,
            maps: vec![initial],
            groups,
            cur: None,
            done: 0,
            seq: 0,
            strip_sessions,
            skip_page,
            error: None,
            pages: 0,
        }
    }

    /// The group serving `key` in published map `map`.
    pub fn owner(&self, map: usize, key: &[u8]) -> usize {
        self.maps[map].get(&slot_of(key)).copied().unwrap_or(0)
    }

    /// Whether a move is under way or still planned.
    pub fn pending(&self) -> bool {
        self.cur.is_some() || self.done < self.plan.len()
    }

    /// The newest map.
    pub fn newest(&self) -> usize {
        self.maps.len() - 1
    }

    /// Draw the next move: a slot, its owner, another group; sometimes more of the owner's
    /// slots along.
    fn draw(&mut self) -> MoveRec {
        let map = self.maps.last().expect("a map");
        let movable: Vec<Slot> = map.keys().copied().collect();
        let first = movable[self.rng.gen_range(0..movable.len())];
        let from = map[&first];
        let mut to = self.rng.gen_range(0..self.groups - 1);
        if to >= from {
            to += 1;
        }
        let mut slots = vec![first];
        for (&s, &g) in map {
            if s != first && g == from && self.rng.gen_bool(0.5) {
                slots.push(s);
            }
        }
        slots.sort();
        MoveRec {
            epoch: Epoch(self.maps.len() as u64 + 1),
            slots,
            from,
            to,
        }
    }
}

impl Sim {
    /// Start the next planned move when due; (re)send the current phase's command.
    pub(super) fn drive_moves(&mut self) {
        let Some(d) = self.moves.as_mut() else {
            return;
        };
        if d.cur.is_none() {
            let Some(&after) = d.plan.get(d.done) else {
                return;
            };
            if self.history.len() < after {
                return;
            }
            let rec = d.draw();
            self.trace(|| format!("move {rec:?}: freeze"));
            self.slots.start_move(rec.clone());
            let d = self.moves.as_mut().expect("moves");
            let page_bytes = d.rng.gen_range(1..16);
            d.cur = Some(Move {
                rec,
                data: None,
                phase: Phase::Read,
                after: None,
                page_bytes,
                parts: 0,
                tried_at: None,
                hint: None,
                seqs: Vec::new(),
            });
        }
        let cur = self.moves.as_ref().and_then(|d| d.cur.as_ref());
        if cur.is_some_and(|m| m.tried_at.is_none_or(|t| self.now >= t + RETRY)) {
            self.send_move();
        }
        // Reads are not logged: a few in one tick are fine (a refusal retries next tick).
        for _ in 0..3 {
            let cur = self.moves.as_ref().and_then(|d| d.cur.as_ref());
            if !cur.is_some_and(|m| m.data.is_some() && m.phase == Phase::Read) {
                break;
            }
            if !self.read_page() {
                break;
            }
        }
    }

    /// Read the next page of the frozen pairs from a random live member of the source; false
    /// when none could answer (not started, or it has not applied the freeze yet).
    fn read_page(&mut self) -> bool {
        let d = self.moves.as_ref().expect("moves");
        let m = d.cur.as_ref().expect("a move");
        let (from, slots, epoch) = (m.rec.from, m.rec.slots.clone(), m.rec.epoch);
        let (after, max) = (m.after.clone(), m.page_bytes);
        let members: Vec<NodeId> = self
            .nodes
            .iter()
            .flatten()
            .filter(|n| n.gi == from && n.group.member().is_some() && self.started(n.id))
            .map(|n| n.id)
            .collect();
        if members.is_empty() {
            return false;
        }
        let d = self.moves.as_mut().expect("moves");
        let at = members[d.rng.gen_range(0..members.len())];
        let node = self.node_mut(at).expect("listed");
        let member = node.group.member().expect("listed");
        let page = member
            .replica()
            .frozen_page(&slots, epoch, after.as_deref(), max);
        let Ok(page) = page else {
            self.trace(|| format!("coordinator: {at} cannot read the frozen page: {page:?}"));
            return false;
        };
        self.trace(|| {
            format!(
                "coordinator: read {} pairs at {at}, more: {}",
                page.pairs.len(),
                page.more
            )
        });
        let d = self.moves.as_mut().expect("moves");
        let m = d.cur.as_mut().expect("a move");
        m.hand_over(page.pairs, page.more);
        true
    }

    /// Send the current phase's command to the group's leader (or the hinted node, or any
    /// active member, which forwards it).
    fn send_move(&mut self) {
        let d = self.moves.as_ref().expect("moves");
        let m = d.cur.as_ref().expect("a move");
        let g = match (&m.data, &m.phase) {
            (None, _) => m.rec.from,
            (Some(_), Phase::Read) => return,
            (Some(_), _) => m.rec.to,
        };
        let active: Vec<NodeId> = self
            .nodes
            .iter()
            .flatten()
            .filter(|n| n.gi == g && n.group.config().is_some() && self.started(n.id))
            .map(|n| n.id)
            .collect();
        let hinted = m.hint.filter(|h| active.contains(h));
        let target = match hinted.or_else(|| self.leader_among(&active)) {
            Some(t) => t,
            None if active.is_empty() => return,
            None => {
                let i = self
                    .moves
                    .as_mut()
                    .expect("moves")
                    .rng
                    .gen_range(0..active.len());
                active[i]
            }
        };
        let d = self.moves.as_mut().expect("moves");
        d.seq += 1;
        let seq = d.seq;
        let m = d.cur.as_mut().expect("a move");
        m.tried_at = Some(self.now);
        m.seqs.push(seq);
        let (slots, epoch) = (m.rec.slots.clone(), m.rec.epoch);
        let op = match (&m.data, &m.phase) {
            (None, _) => KvOp::Freeze { slots, epoch },
            (Some(_), Phase::Part(pairs)) => KvOp::InstallPart {
                slots,
                epoch,
                pairs: pairs.clone(),
            },
            (Some(data), Phase::Install(last)) => KvOp::Install {
                slots,
                epoch,
                data: SlotData {
                    pairs: last.clone(),
                    ..data.clone()
                },
            },
            (Some(_), Phase::Read) => unreachable!("reads are not sent"),
        };
        let cmd = KvCommand {
            id: RequestId { client: COORD, seq },
            op,
        };
        self.trace(|| format!("coordinator try {seq} at {target}"));
        let node = self.node_mut(target).expect("active");
        if let Some(answer) = node.client_request(cmd) {
            self.move_answer(seq, answer);
        }
    }

    /// An answer to one of the coordinator's tries.
    pub(super) fn move_answer(&mut self, seq: u64, answer: Result<KvResult, KvError>) {
        let now = self.now;
        let Some(d) = self.moves.as_mut() else {
            return;
        };
        let (strip, skip) = (d.strip_sessions, d.skip_page);
        let Some(m) = d.cur.as_mut().filter(|m| m.seqs.contains(&seq)) else {
            return;
        };
        let freezing = m.data.is_none();
        let phase = m.phase.clone();
        match (answer, freezing, phase) {
            (Ok(KvResult::Frozen(mut data)), true, _) => {
                if strip {
                    data.sessions.clear();
                }
                let first = std::mem::take(&mut data.pairs);
                let more = std::mem::replace(&mut data.more, false);
                m.data = Some(data);
                m.seqs.clear();
                m.hint = None;
                m.tried_at = None;
                if skip {
                    // TEST ONLY: the first page is lost on its way to the destination.
                    m.after = first.last().map(|(k, _)| k.clone());
                    m.phase = if more {
                        Phase::Read
                    } else {
                        Phase::Install(Vec::new())
                    };
                } else if d.rng.gen_bool(0.3) {
                    m.hand_over(first, more);
                } else {
                    // The first page is dropped and every page read (after none).
                    m.phase = Phase::Read;
                }
                self.trace(|| format!("coordinator: frozen (try {seq}); pages"));
            }
            (Ok(KvResult::Installed), false, Phase::Part(_)) => {
                m.seqs.clear();
                m.hint = None;
                m.tried_at = None;
                m.parts += 1;
                d.pages += 1;
                m.phase = Phase::Read;
                if d.rng.gen_bool(0.1) {
                    // Start the pages over: the parts staged again must change nothing.
                    m.after = None;
                }
                self.trace(|| format!("coordinator: part staged (try {seq})"));
            }
            (Ok(KvResult::Installed), false, Phase::Install(_)) => {
                let rec = m.rec.clone();
                let parts = m.parts;
                d.cur = None;
                d.done += 1;
                let mut map = d.maps.last().expect("a map").clone();
                for s in &rec.slots {
                    map.insert(*s, rec.to);
                }
                d.maps.push(map);
                self.trace(|| {
                    format!(
                        "coordinator: installed after {parts} parts; map {} published",
                        rec.epoch
                    )
                });
            }
            (Err(KvError::NotLeader { hint }), _, _) => {
                m.hint = hint;
                m.tried_at = Some(now.saturating_sub(RETRY - 3));
            }
            (Err(KvError::Sealed { .. }), _, _) => {
                m.hint = None;
                m.tried_at = Some(now.saturating_sub(RETRY - 3));
            }
            (other, _, _) => {
                let what = format!("coordinator: try {seq} of {:?} answered {other:?}", m.rec);
                d.error.get_or_insert(what);
            }
        }
    }
}

impl Move {
    /// A page read from the source: staged next while more follow, else installed.
    fn hand_over(&mut self, pairs: Vec<(Bytes, Bytes)>, more: bool) {
        if !more {
            self.phase = Phase::Install(pairs);
            return;
        }
        assert!(!pairs.is_empty(), "a page followed by more holds a pair");
        self.after = pairs.last().map(|(k, _)| k.clone());
        self.phase = Phase::Part(pairs);
    }
}
