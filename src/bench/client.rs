//! One closed-loop client: issue an operation, wait for its answer, record it, repeat.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::ProgressBar;
use kv_ports::kv::{KvOp, KvResult};

use super::config::{BenchConfig, Kind, Stop};
use super::history::{HistorySink, Record};
use super::stats::{Completion, Stats};
use super::workload::{key_name, Planned, Workload};
use crate::service::{KvService, ServiceError};

/// Always-ready services (like `MemoryService`) would otherwise keep a client's task running
/// forever without giving the runtime a chance to schedule anything else.
const YIELD_EVERY: u32 = 64;

/// What all clients of a run share: the clock, the stop rule and the outputs.
pub(crate) struct Shared {
    start: Instant,
    stop: Stop,
    claimed: AtomicU64,
    progress: ProgressBar,
    history: Option<HistorySink>,
}

impl Shared {
    /// Starts the run's clock now.
    pub(crate) fn new(stop: Stop, progress: ProgressBar, history: Option<HistorySink>) -> Self {
        Shared {
            start: Instant::now(),
            stop,
            claimed: AtomicU64::new(0),
            progress,
            history,
        }
    }

    /// Time since the run started: the one clock every history entry uses.
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the caller may issue one more operation (and, in ops mode, takes its slot).
    fn claim(&self) -> bool {
        match self.stop {
            Stop::Ops(total) => self.claimed.fetch_add(1, Ordering::Relaxed) < total,
            Stop::Duration(limit) => self.elapsed() < limit,
        }
    }
}

/// One client: its session, its operation stream and what it learnt about each key.
pub(crate) struct Client {
    index: usize,
    session: Arc<dyn KvService>,
    workload: Workload,
    /// The last value this client saw for a key (read or written); absent entries and `None`
    /// both mean "absent". It is the expectation of the client's next CAS on that key.
    seen: HashMap<u64, Option<Bytes>>,
    stats: Stats,
}

impl Client {
    /// Client number `index` of a run configured by `config`.
    pub(crate) fn new(index: usize, session: Arc<dyn KvService>, config: &BenchConfig) -> Self {
        let workload = Workload::new(
            config.seed,
            index,
            config.mix.clone(),
            config.keys,
            config.value_size,
        );
        Client {
            index,
            session,
            workload,
            seen: HashMap::new(),
            stats: Stats::default(),
        }
    }

    /// Runs until the stop rule says no; returns the client's statistics.
    pub(crate) async fn run(mut self, shared: Arc<Shared>) -> Stats {
        let mut since_yield = 0;
        while shared.claim() {
            self.one(&shared).await;
            since_yield += 1;
            if since_yield == YIELD_EVERY {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
        self.stats
    }

    async fn one(&mut self, shared: &Shared) {
        let planned = self.workload.next_op();
        let op = self.build(&planned);
        let call = shared.now_nanos();
        let outcome = self.session.execute(op.clone()).await;
        let ret = shared.now_nanos();
        self.remember(planned.key, &op, &outcome);
        let latency = Duration::from_nanos(ret.saturating_sub(call));
        self.stats
            .record(planned.kind, Completion::of(&outcome), latency);
        if let Some(history) = &shared.history {
            history.push(&Record::new(self.index, &op, &outcome, call, ret));
        }
        shared.progress.inc(1);
    }

    fn build(&self, planned: &Planned) -> KvOp {
        let key = key_name(planned.key);
        let value = || planned.value.clone().unwrap_or_default();
        match planned.kind {
            Kind::Get => KvOp::Get { key },
            Kind::Put => KvOp::Put {
                key,
                value: value(),
            },
            Kind::Cas => KvOp::Cas {
                key,
                expected: self.seen.get(&planned.key).cloned().flatten(),
                new: value(),
            },
            Kind::Delete => KvOp::Delete { key },
        }
    }

    /// Updates what the client believes a key holds. An unknown write most likely took
    /// effect, so it is believed; a failed one changes nothing.
    fn remember(&mut self, key: u64, op: &KvOp, outcome: &Result<KvResult, ServiceError>) {
        let belief = match (op, outcome) {
            (_, Err(ServiceError::Unavailable(_) | ServiceError::Rejected(_))) => return,
            (KvOp::Get { .. }, Ok(KvResult::Value(v))) => v.clone(),
            (KvOp::Put { value, .. }, _) => Some(value.clone()),
            (KvOp::Cas { new, .. }, Ok(KvResult::Swapped(true)) | Err(_)) => Some(new.clone()),
            (KvOp::Delete { .. }, _) => None,
            _ => return,
        };
        self.seen.insert(key, belief);
    }
}
