//! Process-wide metrics in the Prometheus text format, served by the HTTP front end on
//! `GET /metrics`.
//!
//! [`install`] puts a `metrics-exporter-prometheus` recorder behind the `metrics` facade (once
//! per process; later calls return the same handle) and starts a small thread that drains
//! histogram samples every few seconds, so memory stays bounded when nobody scrapes.
//! [`render`] prints the current values. Before `install`, every metric call anywhere in the
//! process is a no-op and `render` answers an empty (valid) exposition.
//!
//! | metric | type | labels | recorded by |
//! |---|---|---|---|
//! | `kv_ops_total` | counter | `kind`, `outcome`, `frontend` | [`record_op`]: HTTP front end, gateway, native endpoint |
//! | `kv_op_latency_seconds` | histogram ([`LATENCY_BUCKETS`]) | `kind`, `frontend` | [`record_op`] |
//! | `kv_leader_changes_total` | counter | `group` | each group member, per change of the leader it follows to a new one (a new configuration elects anew) |
//! | `kv_config_events_total` | counter | `group`, `event` | each group member, per configuration event: `sealed`, `started`, `leaving`, `catching-up`, `retired` |
//! | `kv_accept_batches_total` | counter | | a leader's Sequence Paxos, per accept batch sent |
//! | `kv_proposals_batched_total` | counter | | the same, entries in those batches (their ratio is the mean batch size) |
//! | `kv_decided_entries_total` | counter | | every group member, per log entry decided |
//! | `kv_link_reconnects_total` | counter | | the perfect link, per redial after a lost connection |
//! | `kv_peer_down_total` | counter | | the perfect link, per peer reported down |
//!
//! Front ends: `http` counts each seed 000 / seed 001 operation as the HTTP client sees it;
//! `gateway` counts operations of the in-process gateway (what RESP and HTTP run on a node),
//! end to end with retries; `native` counts each command attempt a native client sends to this
//! node (a client's retry at another node is another attempt there).
//!
//! Operation metrics cost no allocation per operation: the label values are fixed enums, and
//! each label combination's counter and histogram are registered once, on first use after
//! [`install`], then kept.

use std::sync::OnceLock;
use std::time::Duration;

use kv_ports::kv::{KvError, KvOp, KvResult};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::service::ServiceError;

/// The handle [`install`] keeps: renders the recorder's metrics.
pub type Handle = PrometheusHandle;

/// Operations by kind, outcome and front end (counter).
pub const OPS_TOTAL: &str = "kv_ops_total";
/// Operation latency by kind and front end (histogram, seconds).
pub const OP_LATENCY_SECONDS: &str = "kv_op_latency_seconds";
/// Leaders elected, by group (counter).
pub const LEADER_CHANGES_TOTAL: &str = "kv_leader_changes_total";
/// Configuration events of group members, by group and event (counter).
pub const CONFIG_EVENTS_TOTAL: &str = "kv_config_events_total";
/// Entries sent in accept batches by a leader (counter).
pub const PROPOSALS_BATCHED_TOTAL: &str = "kv_proposals_batched_total";
/// Accept batches sent by a leader (counter).
pub const ACCEPT_BATCHES_TOTAL: &str = "kv_accept_batches_total";
/// Log entries decided (counter).
pub const DECIDED_ENTRIES_TOTAL: &str = "kv_decided_entries_total";
/// Redials of the perfect link after a lost connection (counter).
pub const LINK_RECONNECTS_TOTAL: &str = "kv_link_reconnects_total";
/// Peers the perfect link reported down (counter).
pub const PEER_DOWN_TOTAL: &str = "kv_peer_down_total";

/// Upper bounds of the `kv_op_latency_seconds` buckets: from 100 µs (an in-memory answer) to
/// 10 s (past every deadline), about three per decade.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often the upkeep thread drains histogram samples into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Handle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder, once, and returns its
/// handle; every later call returns the same handle (safe from any thread, any number of
/// times, inside or outside a Tokio runtime).
///
/// If some other recorder was installed first, ours cannot replace it: a warning is logged and
/// [`render`] shows only what reaches our recorder (nothing).
pub fn install() -> &'static Handle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(OP_LATENCY_SECONDS.into()), &LATENCY_BUCKETS)
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => describe(),
            Err(e) => tracing::warn!(error = %e, "another metrics recorder is installed"),
        }
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        if let Err(e) = spawned {
            // Rendering drains histograms too; only an unscraped process accumulates samples.
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    })
}

/// Whether [`install`] has run in this process.
pub fn installed() -> bool {
    HANDLE.get().is_some()
}

/// The metrics in the Prometheus text exposition format; empty before [`install`].
pub fn render() -> String {
    HANDLE.get().map(Handle::render).unwrap_or_default()
}

/// The counters and what each counts, for the exposition's `# HELP` lines.
const COUNTERS: [(&str, &str); 8] = [
    (
        OPS_TOTAL,
        "Key-value operations by kind, outcome and front end",
    ),
    (LEADER_CHANGES_TOTAL, "Leaders elected, by group"),
    (
        CONFIG_EVENTS_TOTAL,
        "Group configuration events (sealed, started, leaving, catching-up, retired)",
    ),
    (ACCEPT_BATCHES_TOTAL, "Accept batches sent by a leader"),
    (
        PROPOSALS_BATCHED_TOTAL,
        "Log entries sent in accept batches by a leader",
    ),
    (DECIDED_ENTRIES_TOTAL, "Log entries decided"),
    (
        LINK_RECONNECTS_TOTAL,
        "Perfect-link redials after a lost connection",
    ),
    (PEER_DOWN_TOTAL, "Peers the perfect link reported down"),
];

fn describe() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(name, help);
    }
    metrics::describe_histogram!(
        OP_LATENCY_SECONDS,
        metrics::Unit::Seconds,
        "Key-value operation latency by kind and front end"
    );
}

/// Where an operation entered the node (the `frontend` label).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Frontend {
    /// The HTTP front end (seed 000 and seed 001 APIs).
    Http,
    /// The in-process gateway (RESP and HTTP on a data node), retries included.
    Gateway,
    /// One native-protocol command attempt at this node's client endpoint.
    Native,
}

impl Frontend {
    const ALL: usize = 3;

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Frontend::Http => "http",
            Frontend::Gateway => "gateway",
            Frontend::Native => "native",
        }
    }
}

/// What an operation was (the `kind` label).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// A read.
    Get,
    /// An unconditional write.
    Put,
    /// A compare-and-swap.
    Cas,
    /// A removal.
    Delete,
    /// A slot move's freeze, install part or install (the coordinator's, through a group's log).
    SlotMove,
}

impl OpKind {
    const ALL: usize = 5;

    /// The kind of `op`.
    pub fn of(op: &KvOp) -> OpKind {
        match op {
            KvOp::Get { .. } => OpKind::Get,
            KvOp::Put { .. } => OpKind::Put,
            KvOp::Cas { .. } => OpKind::Cas,
            KvOp::Delete { .. } => OpKind::Delete,
            KvOp::Freeze { .. } | KvOp::InstallPart { .. } | KvOp::Install { .. } => {
                OpKind::SlotMove
            }
        }
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Cas => "cas",
            OpKind::Delete => "delete",
            OpKind::SlotMove => "slot_move",
        }
    }
}

/// How an operation ended (the `outcome` label).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It completed with a result (a missing key is a result too).
    Ok,
    /// It may or may not have taken effect (a timeout).
    Unknown,
    /// It surely did not take effect (no leader, no quorum, shutting down).
    Unavailable,
    /// It was refused as invalid (oversized, malformed).
    Rejected,
    /// This node could not get it decided and named another (native attempts only).
    NotLeader,
    /// The group's configuration was sealed (native attempts only).
    Sealed,
    /// A newer command of the same client replaced it (native attempts only).
    Superseded,
    /// The key's slot had moved to another group (native attempts only).
    Moved,
}

impl Outcome {
    const ALL: usize = 8;

    /// The outcome of a [`KvService`](crate::service::KvService) call.
    pub fn of_service(result: &Result<KvResult, ServiceError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(ServiceError::Unknown(_)) => Outcome::Unknown,
            Err(ServiceError::Unavailable(_)) => Outcome::Unavailable,
            Err(ServiceError::Rejected(_)) => Outcome::Rejected,
        }
    }

    /// The outcome of one command at a group (a `KvPort` reply).
    pub fn of_reply(result: &Result<KvResult, KvError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(KvError::NotLeader { .. }) => Outcome::NotLeader,
            Err(KvError::Sealed { .. }) => Outcome::Sealed,
            Err(KvError::Moved { .. }) => Outcome::Moved,
            Err(KvError::Superseded) => Outcome::Superseded,
        }
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Unknown => "unknown",
            Outcome::Unavailable => "unavailable",
            Outcome::Rejected => "rejected",
            Outcome::NotLeader => "not_leader",
            Outcome::Sealed => "sealed",
            Outcome::Superseded => "superseded",
            Outcome::Moved => "moved",
        }
    }
}

/// One counter per (front end, kind, outcome) and one histogram per (front end, kind),
/// registered on first use.
struct OpMetrics {
    counts: [[[OnceLock<Counter>; Outcome::ALL]; OpKind::ALL]; Frontend::ALL],
    latency: [[OnceLock<Histogram>; OpKind::ALL]; Frontend::ALL],
}

static OPS: OpMetrics = OpMetrics {
    counts: [const { [const { [const { OnceLock::new() }; Outcome::ALL] }; OpKind::ALL] };
        Frontend::ALL],
    latency: [const { [const { OnceLock::new() }; OpKind::ALL] }; Frontend::ALL],
};

/// Counts one operation in `kv_ops_total` and its latency in `kv_op_latency_seconds`. A no-op
/// before [`install`] (nothing is registered then, so nothing is lost to a no-op recorder).
pub fn record_op(frontend: Frontend, kind: OpKind, outcome: Outcome, elapsed: Duration) {
    if !installed() {
        return;
    }
    let (f, k, o) = (frontend as usize, kind as usize, outcome as usize);
    OPS.counts[f][k][o]
        .get_or_init(|| {
            metrics::counter!(OPS_TOTAL,
                "kind" => kind.label(),
                "outcome" => outcome.label(),
                "frontend" => frontend.label())
        })
        .increment(1);
    OPS.latency[f][k]
        .get_or_init(|| {
            metrics::histogram!(OP_LATENCY_SECONDS,
                "kind" => kind.label(),
                "frontend" => frontend.label())
        })
        .record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_is_idempotent_and_render_shows_recorded_ops() {
        let first: *const Handle = install();
        let second: *const Handle = install();
        assert_eq!(first, second);
        record_op(
            Frontend::Native,
            OpKind::Cas,
            Outcome::Sealed,
            Duration::from_millis(3),
        );
        let text = render();
        assert!(
            text.contains(r#"kv_ops_total{kind="cas",outcome="sealed",frontend="native"}"#),
            "{text}"
        );
        assert!(text.contains("kv_op_latency_seconds_bucket"), "{text}");
    }

    #[test]
    fn labels_are_distinct() {
        let outcomes = [
            Outcome::Ok,
            Outcome::Unknown,
            Outcome::Unavailable,
            Outcome::Rejected,
            Outcome::NotLeader,
            Outcome::Sealed,
            Outcome::Superseded,
            Outcome::Moved,
        ];
        assert_eq!(outcomes.len(), Outcome::ALL);
        for (i, o) in outcomes.iter().enumerate() {
            assert_eq!(*o as usize, i);
        }
        let labels: std::collections::BTreeSet<_> = outcomes.iter().map(|o| o.label()).collect();
        assert_eq!(labels.len(), Outcome::ALL);
    }
}
