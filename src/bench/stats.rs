//! Per-kind counters and latency histograms, kept by each client and merged at the end so
//! clients never contend on a shared lock.

use std::time::Duration;

use hdrhistogram::Histogram;
use kv_ports::kv::KvResult;

use super::config::Kind;
use crate::service::ServiceError;

/// The largest latency recorded exactly: one hour, in microseconds. Longer ones saturate.
const MAX_MICROS: u64 = 3_600_000_000;

/// How an operation ended, as the history and the report classify it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Completed with a result.
    Ok,
    /// Definitely had no effect (unavailable or rejected).
    Failed,
    /// May or may not have taken effect.
    Unknown,
}

impl Completion {
    /// Classifies a service answer: only [`ServiceError::Unknown`] leaves the effect open.
    pub fn of(outcome: &Result<KvResult, ServiceError>) -> Self {
        match outcome {
            Ok(_) => Completion::Ok,
            Err(ServiceError::Unknown(_)) => Completion::Unknown,
            Err(ServiceError::Unavailable(_) | ServiceError::Rejected(_)) => Completion::Failed,
        }
    }
}

/// Counters and latencies of one operation kind.
#[derive(Clone, Debug)]
pub struct KindStats {
    /// Operations issued.
    pub count: u64,
    /// Operations that completed with a result.
    pub ok: u64,
    /// Operations that definitely had no effect.
    pub failed: u64,
    /// Operations whose outcome is unknown.
    pub unknown: u64,
    /// Latencies of the operations that completed, in microseconds. Failed and unknown ones
    /// are left out: their latency is that of an error path or a timeout, not of the store.
    pub latency: Histogram<u64>,
}

impl KindStats {
    fn new() -> Self {
        KindStats {
            count: 0,
            ok: 0,
            failed: 0,
            unknown: 0,
            latency: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("constant bounds are valid"),
        }
    }

    fn record(&mut self, completion: Completion, latency: Duration) {
        self.count += 1;
        match completion {
            Completion::Ok => {
                self.ok += 1;
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency.saturating_record(micros.max(1));
            }
            Completion::Failed => self.failed += 1,
            Completion::Unknown => self.unknown += 1,
        }
    }

    fn merge(&mut self, other: &KindStats) {
        self.count += other.count;
        self.ok += other.ok;
        self.failed += other.failed;
        self.unknown += other.unknown;
        self.latency
            .add(&other.latency)
            .expect("histograms with the same bounds always merge");
    }
}

/// Statistics of every kind.
#[derive(Clone, Debug)]
pub struct Stats {
    kinds: [KindStats; 4],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            kinds: std::array::from_fn(|_| KindStats::new()),
        }
    }
}

impl Stats {
    /// Counts one finished operation.
    pub fn record(&mut self, kind: Kind, completion: Completion, latency: Duration) {
        self.kinds[kind.index()].record(completion, latency);
    }

    /// Adds another client's statistics to these.
    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.kinds.iter_mut().zip(&other.kinds) {
            mine.merge(theirs);
        }
    }

    /// The statistics of one kind.
    pub fn kind(&self, kind: Kind) -> &KindStats {
        &self.kinds[kind.index()]
    }

    /// All kinds together, for the report's total row.
    pub fn total(&self) -> KindStats {
        let mut all = KindStats::new();
        for kind in &self.kinds {
            all.merge(kind);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_merges() {
        let mut a = Stats::default();
        a.record(Kind::Get, Completion::Ok, Duration::from_micros(100));
        a.record(Kind::Get, Completion::Unknown, Duration::from_secs(5));
        let mut b = Stats::default();
        b.record(Kind::Get, Completion::Ok, Duration::from_micros(300));
        b.record(Kind::Put, Completion::Failed, Duration::ZERO);
        a.merge(&b);
        let get = a.kind(Kind::Get);
        assert_eq!((get.count, get.ok, get.failed, get.unknown), (3, 2, 0, 1));
        assert_eq!(get.latency.len(), 2);
        assert!(get.latency.max() >= 300 && get.latency.max() < 301);
        assert_eq!(a.kind(Kind::Put).failed, 1);
        assert_eq!(a.total().count, 4);
    }
}
