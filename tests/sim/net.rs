//! The simulated network: seeded loss, duplication, delay (hence reordering) and partitions.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};

use kv_components::reconfig::GroupMsg;
use kv_ports::ids::NodeId;
use rand::rngs::SmallRng;
use rand::Rng;

/// A message between two nodes of the group (tagged with its configuration).
pub type Msg = GroupMsg;

/// One message in flight, ordered by delivery time then send order (deterministic).
struct InFlight {
    at: u64,
    seq: u64,
    from: NodeId,
    to: NodeId,
    msg: Msg,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse to pop the earliest first.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Per-schedule network behaviour.
#[derive(Clone, Debug)]
pub struct NetParams {
    /// Probability a message is lost.
    pub drop_p: f64,
    /// Probability a message is delivered twice.
    pub dup_p: f64,
    /// Delivery delay is uniform in `1..=max_delay` ticks (different delays reorder).
    pub max_delay: u64,
}

/// The network: in-flight messages and the set of cut links.
pub struct Net {
    pub params: NetParams,
    heap: BinaryHeap<InFlight>,
    seq: u64,
    down: BTreeSet<(u64, u64)>,
    /// Messages sent, dropped and duplicated (for the figures).
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

fn link(a: NodeId, b: NodeId) -> (u64, u64) {
    (a.0.min(b.0), a.0.max(b.0))
}

impl Net {
    pub fn new(params: NetParams) -> Self {
        Net {
            params,
            heap: BinaryHeap::new(),
            seq: 0,
            down: BTreeSet::new(),
            sent: 0,
            dropped: 0,
            duplicated: 0,
        }
    }

    pub fn is_up(&self, a: NodeId, b: NodeId) -> bool {
        !self.down.contains(&link(a, b))
    }

    /// Cut the link between `a` and `b`; true if it was up.
    pub fn cut(&mut self, a: NodeId, b: NodeId) -> bool {
        self.down.insert(link(a, b))
    }

    /// Restore the link; true if it was down.
    pub fn restore(&mut self, a: NodeId, b: NodeId) -> bool {
        self.down.remove(&link(a, b))
    }

    /// Every cut link.
    pub fn cut_links(&self) -> Vec<(NodeId, NodeId)> {
        self.down
            .iter()
            .map(|&(a, b)| (NodeId(a), NodeId(b)))
            .collect()
    }

    pub fn send(&mut self, rng: &mut SmallRng, now: u64, from: NodeId, to: NodeId, msg: Msg) {
        self.sent += 1;
        if !self.is_up(from, to) || rng.gen_bool(self.params.drop_p) {
            self.dropped += 1;
            return;
        }
        if rng.gen_bool(self.params.dup_p) {
            self.duplicated += 1;
            let at = now + rng.gen_range(1..=self.params.max_delay);
            self.push(at, from, to, msg.clone());
        }
        let at = now + rng.gen_range(1..=self.params.max_delay);
        self.push(at, from, to, msg);
    }

    fn push(&mut self, at: u64, from: NodeId, to: NodeId, msg: Msg) {
        self.seq += 1;
        self.heap.push(InFlight {
            at,
            seq: self.seq,
            from,
            to,
            msg,
        });
    }

    /// The next message due at or before `now` whose link is still up.
    pub fn pop_due(&mut self, now: u64) -> Option<(NodeId, NodeId, Msg)> {
        while self.heap.peek().is_some_and(|m| m.at <= now) {
            let m = self.heap.pop().expect("peeked");
            if self.is_up(m.from, m.to) {
                return Some((m.from, m.to, m.msg));
            }
            self.dropped += 1;
        }
        None
    }
}
