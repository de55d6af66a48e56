//! The coordinator's slot moves (slot-move schedules): when the plan says so, pick slots of one
//! group and another group, then `Freeze` them through the source's log (retrying at the
//! leader, following hints, until a `Frozen` answer), `Install` the data through the
//! destination's log likewise, and only then publish the new map. Clients route by the map
//! they know and refresh it on `Moved`.

use std::collections::BTreeMap;

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
    /// A move went wrong (a refused freeze or install): the schedule fails.
    pub error: Option<String>,
}

struct Move {
    rec: MoveRec,
    /// `None` while freezing; the source's data once frozen.
    data: Option<SlotData>,
    tried_at: Option<u64>,
    hint: Option<NodeId>,
    /// Sequence numbers of this phase's tries (answers to other tries are stale).
    seqs: Vec<u64>,
}

impl MoveDriver {
    /// `moves` moves over `groups` groups, from the initial map `initial`.
    pub fn new(
        rng: SmallRng,
        plan: Vec<usize>,
        initial: BTreeMap<Slot, usize>,
        groups: usize,
        strip_sessions: bool,
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
            error: None,
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
            d.cur = Some(Move {
                rec,
                data: None,
                tried_at: None,
                hint: None,
                seqs: Vec::new(),
            });
        }
        let cur = self.moves.as_ref().and_then(|d| d.cur.as_ref());
        if cur.is_some_and(|m| m.tried_at.is_none_or(|t| self.now >= t + RETRY)) {
            self.send_move();
        }
    }

    /// Send the current phase's command to the group's leader (or the hinted node, or any
    /// active member, which forwards it).
    fn send_move(&mut self) {
        let d = self.moves.as_ref().expect("moves");
        let m = d.cur.as_ref().expect("a move");
        let g = if m.data.is_none() {
            m.rec.from
        } else {
            m.rec.to
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
        let op = match &m.data {
            None => KvOp::Freeze {
                slots: m.rec.slots.clone(),
                epoch: m.rec.epoch,
            },
            Some(data) => KvOp::Install {
                slots: m.rec.slots.clone(),
                epoch: m.rec.epoch,
                data: data.clone(),
            },
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
        let strip = d.strip_sessions;
        let Some(m) = d.cur.as_mut().filter(|m| m.seqs.contains(&seq)) else {
            return;
        };
        match (answer, m.data.is_none()) {
            (Ok(KvResult::Frozen(mut data)), true) => {
                if strip {
                    data.sessions.clear();
                }
                m.data = Some(data);
                m.seqs.clear();
                m.hint = None;
                m.tried_at = None;
                self.trace(|| format!("coordinator: frozen (try {seq}); install"));
            }
            (Ok(KvResult::Installed), false) => {
                let rec = m.rec.clone();
                d.cur = None;
                d.done += 1;
                let mut map = d.maps.last().expect("a map").clone();
                for s in &rec.slots {
                    map.insert(*s, rec.to);
                }
                d.maps.push(map);
                self.trace(|| format!("coordinator: installed; map {} published", rec.epoch));
            }
            (Err(KvError::NotLeader { hint }), _) => {
                m.hint = hint;
                m.tried_at = Some(now.saturating_sub(RETRY - 3));
            }
            (Err(KvError::Sealed { .. }), _) => {
                m.hint = None;
                m.tried_at = Some(now.saturating_sub(RETRY - 3));
            }
            (other, _) => {
                let what = format!("coordinator: try {seq} of {:?} answered {other:?}", m.rec);
                d.error.get_or_insert(what);
            }
        }
    }
}
