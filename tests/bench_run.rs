//! `kv::bench` end to end against in-memory services: histories are checkable and
//! linearizable, injected failures are recorded as the history format says, reports are
//! complete.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kv::bench::{self, BenchConfig, BenchError, ConfigError, Mix, Stop};
use kv::checker::{check_history, History, Options, Outcome, Verdict};
use kv::service::{KvService, MemoryService, Pending, ServiceError};
use kv_ports::kv::KvOp;

/// A unique temporary file for one test's history.
fn temp_history(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kv-bench-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.jsonl"))
}

fn config(stop: Stop, keys: u64, history: Option<PathBuf>) -> BenchConfig {
    let mut config = BenchConfig::new(stop);
    config.keys = keys;
    config.history = history;
    config.progress = false;
    config
}

fn sessions_over(service: &Arc<dyn KvService>, n: usize) -> Vec<Arc<dyn KvService>> {
    (0..n).map(|_| Arc::clone(service)).collect()
}

fn read_history(path: &PathBuf) -> History {
    let text = std::fs::read_to_string(path).unwrap();
    History::parse_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bench_history_is_linearizable() {
    let path = temp_history("memory");
    let service: Arc<dyn KvService> = Arc::new(MemoryService::new());
    let report = bench::run(
        config(Stop::Ops(16_000), 20, Some(path.clone())),
        sessions_over(&service, 8),
    )
    .await
    .unwrap();
    assert_eq!(report.total_ops(), 16_000);
    assert_eq!(report.total.ok, 16_000);
    let history = read_history(&path);
    assert_eq!(history.ops().len(), 16_000);
    assert_eq!(history.key_count(), 20);
    let cas_swapped = history
        .ops()
        .iter()
        .filter(|op| {
            matches!(
                op.kind,
                kv::checker::OpKind::Cas {
                    swapped: Some(true),
                    ..
                }
            )
        })
        .count();
    assert!(cas_swapped > 100, "only {cas_swapped} CAS swapped");
    assert_eq!(
        check_history(&history, Options::default()),
        Verdict::Linearizable
    );
    let _ = std::fs::remove_file(path);
}

/// Wraps a store and fails every `every`-th operation: alternately applying it and
/// answering `Unknown`, or not applying it and answering `Unavailable`.
struct Flaky {
    inner: MemoryService,
    every: u64,
    calls: AtomicU64,
}

impl KvService for Flaky {
    fn execute(&self, op: KvOp) -> Pending<'_> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if !n.is_multiple_of(self.every) {
            return self.inner.execute(op);
        }
        Box::pin(async move {
            if (n / self.every).is_multiple_of(2) {
                let _ = self.inner.execute(op).await;
                Err(ServiceError::Unknown("timed out after applying".into()))
            } else {
                Err(ServiceError::Unavailable("no leader".into()))
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_failures_are_recorded_and_stay_linearizable() {
    let path = temp_history("flaky");
    let service: Arc<dyn KvService> = Arc::new(Flaky {
        inner: MemoryService::new(),
        every: 7,
        calls: AtomicU64::new(0),
    });
    let report = bench::run(
        config(Stop::Ops(4_000), 10, Some(path.clone())),
        sessions_over(&service, 4),
    )
    .await
    .unwrap();
    let history = read_history(&path);
    let count = |outcome| {
        history
            .ops()
            .iter()
            .filter(|o| o.outcome == outcome)
            .count() as u64
    };
    let failures = 4_000 / 7;
    assert_eq!(count(Outcome::Unknown) + count(Outcome::Failed), failures);
    assert_eq!(count(Outcome::Unknown), report.total.unknown);
    assert_eq!(count(Outcome::Failed), report.total.failed);
    assert!(report.total.unknown > 200 && report.total.failed > 200);
    assert_eq!(
        check_history(&history, Options::default()),
        Verdict::Linearizable
    );
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn duration_mode_stops() {
    let service: Arc<dyn KvService> = Arc::new(MemoryService::new());
    let stop = Stop::Duration(Duration::from_millis(150));
    let report = bench::run(config(stop, 50, None), sessions_over(&service, 3))
        .await
        .unwrap();
    assert!(report.total_ops() > 0);
    assert!(report.elapsed >= Duration::from_millis(150));
    assert!(
        report.elapsed < Duration::from_secs(5),
        "{:?}",
        report.elapsed
    );
}

#[tokio::test]
async fn report_names_every_kind() {
    let service: Arc<dyn KvService> = Arc::new(MemoryService::new());
    let report = bench::run(
        config(Stop::Ops(2_000), 5, None),
        sessions_over(&service, 16),
    )
    .await
    .unwrap();
    let text = report.render();
    println!("{text}");
    for word in [
        "get", "put", "cas", "delete", "all", "p50 ms", "p99 ms", "ops/s",
    ] {
        assert!(text.contains(word), "{word} missing from\n{text}");
    }
    assert!(text.starts_with("16 clients, 2000 ops in "), "{text}");
}

#[tokio::test]
async fn invalid_input_is_refused_before_running() {
    assert_eq!(
        "get=50,nope=1".parse::<Mix>(),
        Err(ConfigError::MixKind("nope".into()))
    );
    let service: Arc<dyn KvService> = Arc::new(MemoryService::new());
    let mut bad = config(Stop::Ops(10), 0, None);
    let err = bench::run(bad.clone(), sessions_over(&service, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, BenchError::Config(ConfigError::NoKeys)));
    bad.keys = 1;
    let err = bench::run(bad, Vec::new()).await.unwrap_err();
    assert!(matches!(err, BenchError::NoClients));
    let unwritable = config(Stop::Ops(1), 1, Some("/nonexistent-dir/h.jsonl".into()));
    let err = bench::run(unwritable, sessions_over(&service, 1))
        .await
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("history file /nonexistent-dir/h.jsonl"));
}
