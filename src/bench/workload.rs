//! Seeded operation generation: which kind, which key, which value.
//!
//! `rand` is only a dev-dependency, and a benchmark needs neither cryptographic quality nor
//! many distributions, so a SplitMix64 generator (a few lines, statistically good enough for
//! uniform choices) keeps runs reproducible from one seed.

use bytes::Bytes;

use super::config::{Kind, Mix};

/// A small seeded pseudo-random generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0); the modulo bias is negligible for key counts.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// One planned operation, before the client fills in what it remembers (the CAS expectation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// What to do.
    pub kind: Kind,
    /// Index of the key (`k{index}`).
    pub key: u64,
    /// The value to write, for puts and CAS.
    pub value: Option<Bytes>,
}

/// The operation stream of one client.
#[derive(Clone, Debug)]
pub struct Workload {
    rng: SplitMix64,
    mix: Mix,
    keys: u64,
    value_size: usize,
    client: usize,
    writes: u64,
}

impl Workload {
    /// The stream of client `client`; each client's seed derives from the run's seed and its
    /// index so clients do not repeat each other.
    pub fn new(seed: u64, client: usize, mix: Mix, keys: u64, value_size: usize) -> Self {
        let mut mixer = SplitMix64::new(seed ^ (client as u64).wrapping_mul(0xa076_1d64_78bd_642f));
        Workload {
            rng: SplitMix64::new(mixer.next_u64()),
            mix,
            keys,
            value_size,
            client,
            writes: 0,
        }
    }

    /// The next operation of this client.
    pub fn next_op(&mut self) -> Planned {
        let kind = self.mix.pick(self.rng.next_u64());
        let key = self.rng.below(self.keys);
        let value = matches!(kind, Kind::Put | Kind::Cas).then(|| self.next_value());
        Planned { kind, key, value }
    }

    /// A value no other write of the run uses: `c{client}-{n}-` padded with `x` to the
    /// configured size. Unique values let the checker tell every write apart.
    fn next_value(&mut self) -> Bytes {
        self.writes += 1;
        let mut text = format!("c{}-{}-", self.client, self.writes);
        if text.len() < self.value_size {
            text.extend(std::iter::repeat_n('x', self.value_size - text.len()));
        }
        Bytes::from(text)
    }
}

/// The name of key `index`.
pub fn key_name(index: u64) -> Bytes {
    Bytes::from(format!("k{index}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_clients_differ() {
        let make = |client| Workload::new(7, client, Mix::default(), 20, 8);
        let ops = |mut w: Workload| (0..50).map(|_| w.next_op()).collect::<Vec<_>>();
        assert_eq!(ops(make(0)), ops(make(0)));
        assert_ne!(ops(make(0)), ops(make(1)));
    }

    #[test]
    fn values_are_unique_and_padded() {
        let mix: Mix = "put=1".parse().unwrap();
        let mut w = Workload::new(1, 3, mix, 5, 10);
        let first = w.next_op();
        assert_eq!(first.value.as_deref(), Some(&b"c3-1-xxxxx"[..]));
        let second = w.next_op();
        assert_eq!(second.value.as_deref(), Some(&b"c3-2-xxxxx"[..]));
        assert!(first.key < 5);
    }

    #[test]
    fn keys_cover_the_range_uniformly_enough() {
        let mut w = Workload::new(9, 0, Mix::default(), 4, 1);
        let mut seen = [0u32; 4];
        for _ in 0..4000 {
            seen[w.next_op().key as usize] += 1;
        }
        assert!(seen.iter().all(|n| (800..1200).contains(n)), "{seen:?}");
    }

    #[test]
    fn key_names() {
        assert_eq!(key_name(17), Bytes::from_static(b"k17"));
    }
}
