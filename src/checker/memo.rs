//! The memo of visited search configurations, kept small by window compaction.
//!
//! A configuration is (set of linearized operations, state). Storing the set as a bitset over
//! the whole key history would cost O(n) bits per entry; instead, operations are numbered in
//! call order and the set is stored relative to a moving base: every operation below `base`
//! is linearized, none at or above `frontier` is, so only the bits of the window
//! `[base, frontier)` are stored. The search only linearizes operations called before the
//! earliest pending return, so the window spans roughly the operations concurrent with it.
//!
//! Operations with an unknown outcome may stay un-linearized forever, which would pin `base`.
//! They are therefore numbered in a second space with its own window, so that one stuck
//! unknown operation widens only that (sparse) window.

/// A set of operation numbers with the bookkeeping needed for a compact, canonical encoding.
#[derive(Debug)]
pub(crate) struct WindowSet {
    words: Vec<u64>,
    /// The smallest number not in the set.
    base: u32,
    /// One past the largest number in the set (0 when empty).
    frontier: u32,
}

impl WindowSet {
    /// An empty set able to hold numbers below `n`.
    pub(crate) fn new(n: usize) -> Self {
        WindowSet {
            words: vec![0; n.div_ceil(64) + 1],
            base: 0,
            frontier: 0,
        }
    }

    #[inline]
    fn contains(&self, i: u32) -> bool {
        self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Adds `i`; returns the previous frontier, which [`WindowSet::remove`] needs to undo it.
    #[inline]
    pub(crate) fn insert(&mut self, i: u32) -> u32 {
        debug_assert!(!self.contains(i), "operation {i} linearized twice");
        self.words[(i / 64) as usize] |= 1 << (i % 64);
        if i == self.base {
            self.advance_base();
        }
        let old = self.frontier;
        self.frontier = old.max(i + 1);
        old
    }

    /// Undoes the matching [`WindowSet::insert`]; undos must come in reverse order.
    #[inline]
    pub(crate) fn remove(&mut self, i: u32, old_frontier: u32) {
        debug_assert!(self.contains(i), "operation {i} was not linearized");
        self.words[(i / 64) as usize] &= !(1 << (i % 64));
        self.base = self.base.min(i);
        self.frontier = old_frontier;
    }

    fn advance_base(&mut self) {
        let mut w = (self.base / 64) as usize;
        let mut word = self.words[w] | ((1u64 << (self.base % 64)) - 1);
        while word == u64::MAX {
            w += 1;
            word = self.words[w];
        }
        self.base = w as u32 * 64 + word.trailing_ones();
    }

    /// Number of words [`WindowSet::encode`] appends.
    #[inline]
    fn window_words(&self) -> usize {
        (self.frontier.saturating_sub(self.base) as usize).div_ceil(64)
    }

    /// Appends the window bits, shifted so that `base` is bit 0.
    fn encode(&self, out: &mut Vec<u64>) {
        let shift = self.base % 64;
        let first = (self.base / 64) as usize;
        for k in 0..self.window_words() {
            let lo = self.words[first + k] >> shift;
            let hi = match shift {
                0 => 0,
                _ => self
                    .words
                    .get(first + k + 1)
                    .map_or(0, |w| w << (64 - shift)),
            };
            out.push(lo | hi);
        }
        debug_assert!(out.last().is_none_or(|&w| w != 0) || self.window_words() == 0);
    }
}

/// Hashes a memo key: a multiply-rotate pass over the words, then a full avalanche
/// (MurmurHash3's fmix64), because the table picks slots from the low bits and tags from the
/// high ones while multiplication only carries bits upwards.
#[inline]
fn hash_words(words: &[u64]) -> u64 {
    let mut h = words.len() as u64;
    for &w in words {
        h = (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Memory the memo of one key may use before it is emptied. Forgetting configurations only
/// costs repeated work, never a wrong answer, so this bounds memory on pathological histories
/// (which a `--timeout` then cuts short).
const BUDGET_BYTES: usize = 256 << 20;
/// Bits of a slot holding a hash tag, compared before touching the arena.
const TAG_BITS: u32 = 24;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
const INITIAL_SLOTS: usize = 1 << 10;

/// Configurations already explored, each stored exactly (a hash collision can never prune a
/// branch by mistake).
///
/// Keys live back to back in one arena (`[len, words...]`); an open-addressing table of
/// `u64` slots (`(offset + 1) << 24 | tag`, 0 for empty) points into it. Compared with a set
/// of boxed slices this halves memory, avoids one allocation per configuration and frees in
/// O(1).
pub(crate) struct Memo {
    arena: Vec<u64>,
    slots: Vec<u64>,
    len: usize,
    scratch: Vec<u64>,
    budget_words: usize,
    /// Times the memo was emptied for lack of budget.
    resets: u64,
}

impl Default for Memo {
    fn default() -> Self {
        Memo::with_budget(BUDGET_BYTES)
    }
}

impl Memo {
    /// A memo that empties itself when it would exceed about `bytes`.
    pub(crate) fn with_budget(bytes: usize) -> Self {
        Memo {
            arena: Vec::new(),
            slots: vec![0; INITIAL_SLOTS],
            len: 0,
            scratch: Vec::new(),
            budget_words: bytes / 8,
            resets: 0,
        }
    }

    /// Records the configuration; returns `false` if it was already there.
    #[inline]
    pub(crate) fn insert(&mut self, state: u32, done: &WindowSet, unsure: &WindowSet) -> bool {
        let mut key = std::mem::take(&mut self.scratch);
        key.clear();
        let words = done.window_words() as u64;
        key.push(u64::from(state) | words << 32);
        key.push(u64::from(done.base) | u64::from(unsure.base) << 32);
        done.encode(&mut key);
        unsure.encode(&mut key);
        let inserted = self.insert_key(&key);
        self.scratch = key;
        inserted
    }

    fn insert_key(&mut self, key: &[u64]) -> bool {
        let hash = hash_words(key);
        let tag = hash >> (64 - TAG_BITS);
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                break;
            }
            if slot & TAG_MASK == tag && self.key_at(slot) == key {
                return false;
            }
            i = (i + 1) & mask;
        }
        let needed = self.arena.len() + key.len() + 1 + self.slots.len();
        if needed > self.budget_words && !self.arena.is_empty() {
            self.reset();
            return self.insert_key(key);
        }
        let offset = self.arena.len() as u64;
        self.arena.push(key.len() as u64);
        self.arena.extend_from_slice(key);
        self.slots[i] = (offset + 1) << TAG_BITS | tag;
        self.len += 1;
        if self.len * 2 > self.slots.len() {
            self.grow();
        }
        true
    }

    /// The key a non-empty slot points to.
    #[inline]
    fn key_at(&self, slot: u64) -> &[u64] {
        let offset = (slot >> TAG_BITS) as usize - 1;
        let len = self.arena[offset] as usize;
        &self.arena[offset + 1..offset + 1 + len]
    }

    /// Doubles the table (keeping the load at most one half).
    fn grow(&mut self) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.slots.len() - 1;
        for slot in old.into_iter().filter(|&s| s != 0) {
            let mut i = hash_words(self.key_at(slot)) as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }

    /// Forgets everything (keeping the allocations, which the budget already bounds).
    fn reset(&mut self) {
        self.arena.clear();
        self.slots.fill(0);
        self.len = 0;
        self.resets += 1;
    }

    /// Times the memo was emptied for lack of budget.
    pub(crate) fn resets(&self) -> u64 {
        self.resets
    }

    /// Number of configurations stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(set: &WindowSet) -> Vec<u64> {
        let mut out = vec![];
        set.encode(&mut out);
        out
    }

    #[test]
    fn window_tracks_base_and_frontier() {
        let mut set = WindowSet::new(300);
        let f0 = set.insert(0);
        assert_eq!((set.base, set.frontier), (1, 1));
        let f2 = set.insert(2);
        assert_eq!((set.base, set.frontier), (1, 3));
        assert_eq!(encoded(&set), vec![0b10]);
        let f1 = set.insert(1);
        assert_eq!((set.base, set.frontier), (3, 3));
        assert!(encoded(&set).is_empty());
        set.remove(1, f1);
        set.remove(2, f2);
        set.remove(0, f0);
        assert_eq!((set.base, set.frontier), (0, 0));
    }

    #[test]
    fn window_encoding_crosses_word_boundaries() {
        let mut set = WindowSet::new(300);
        for i in 0..70 {
            set.insert(i);
        }
        set.insert(71);
        set.insert(200);
        assert_eq!(set.base, 70);
        let out = encoded(&set);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], 0b10);
        assert_eq!(out[2], 1 << (130 - 128));
    }

    #[test]
    fn memo_distinguishes_sets_and_states() {
        let mut memo = Memo::default();
        let mut done = WindowSet::new(10);
        let unsure = WindowSet::new(10);
        assert!(memo.insert(1, &done, &unsure));
        assert!(!memo.insert(1, &done, &unsure));
        assert!(memo.insert(2, &done, &unsure));
        done.insert(3);
        assert!(memo.insert(1, &done, &unsure));
        assert_eq!(memo.len(), 3);
    }

    #[test]
    fn memo_survives_growth() {
        let mut memo = Memo::default();
        let set = WindowSet::new(10);
        for state in 0..5000 {
            assert!(memo.insert(state, &set, &set));
        }
        for state in 0..5000 {
            assert!(!memo.insert(state, &set, &set));
        }
        assert_eq!(memo.len(), 5000);
    }

    #[test]
    fn memo_forgets_everything_when_over_budget() {
        let mut memo = Memo::with_budget(8 * (INITIAL_SLOTS + 10));
        let set = WindowSet::new(10);
        for state in 0..4 {
            assert!(memo.insert(state, &set, &set));
        }
        assert_eq!(memo.resets(), 1);
        assert_eq!(memo.len(), 1);
        assert!(memo.insert(0, &set, &set), "forgotten, so new again");
    }
}
