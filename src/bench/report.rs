//! The summary a bench run prints: throughput and, per operation kind, outcome counts and
//! latency percentiles.

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::config::Mix;
use super::stats::{KindStats, Stats};

/// Latency percentiles of the operations of one kind that completed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Latencies {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

/// One row of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindReport {
    /// `get`, `put`, `cas`, `delete`, or `all` for the total row.
    pub name: &'static str,
    /// Operations issued.
    pub count: u64,
    /// Completed with a result.
    pub ok: u64,
    /// Definitely without effect.
    pub failed: u64,
    /// Outcome unknown.
    pub unknown: u64,
    /// Percentiles over the completed operations; `None` when none completed.
    pub latency: Option<Latencies>,
}

impl KindReport {
    fn new(name: &'static str, stats: &KindStats) -> Self {
        let h = &stats.latency;
        let at = |q: f64| Duration::from_micros(h.value_at_quantile(q));
        let latency = (!h.is_empty()).then(|| Latencies {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: Duration::from_micros(h.max()),
        });
        KindReport {
            name,
            count: stats.count,
            ok: stats.ok,
            failed: stats.failed,
            unknown: stats.unknown,
            latency,
        }
    }
}

/// The result of a bench run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchReport {
    /// Concurrent clients.
    pub clients: usize,
    /// Wall-clock time from the first operation issued to the last answered.
    pub elapsed: Duration,
    /// One row per kind in the mix, in the order get, put, cas, delete.
    pub kinds: Vec<KindReport>,
    /// All kinds together.
    pub total: KindReport,
}

impl BenchReport {
    /// Builds the report from the merged statistics of every client.
    pub fn new(clients: usize, elapsed: Duration, mix: &Mix, stats: &Stats) -> Self {
        let kinds = mix
            .kinds()
            .into_iter()
            .map(|k| KindReport::new(k.name(), stats.kind(k)))
            .collect();
        BenchReport {
            clients,
            elapsed,
            kinds,
            total: KindReport::new("all", &stats.total()),
        }
    }

    /// Operations issued by all clients.
    pub fn total_ops(&self) -> u64 {
        self.total.count
    }

    /// Operations per second over the whole run.
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.total.count as f64 / secs
        } else {
            0.0
        }
    }

    /// The report as the text `kv bench` prints.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

const HEADER: [&str; 9] = [
    "kind", "count", "ok", "failed", "unknown", "p50 ms", "p90 ms", "p99 ms", "max ms",
];
const WIDTHS: [usize; 9] = [6, 10, 10, 8, 8, 9, 9, 9, 9];

fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn cells(row: &KindReport) -> [String; 9] {
    let lat =
        |f: fn(&Latencies) -> Duration| row.latency.as_ref().map_or("-".into(), |l| millis(f(l)));
    [
        row.name.to_owned(),
        row.count.to_string(),
        row.ok.to_string(),
        row.failed.to_string(),
        row.unknown.to_string(),
        lat(|l| l.p50),
        lat(|l| l.p90),
        lat(|l| l.p99),
        lat(|l| l.max),
    ]
}

fn write_row<S: AsRef<str>>(out: &mut String, cells: &[S; 9]) {
    for (i, (cell, width)) in cells.iter().zip(WIDTHS).enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let cell = cell.as_ref();
        // The kind column reads left to right; numbers line up on the right.
        let _ = match i {
            0 => write!(out, "{sep}{cell:<width$}"),
            _ => write!(out, "{sep}{cell:>width$}"),
        };
    }
    out.push('\n');
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} clients, {} ops in {:.3} s: {:.0} ops/s",
            self.clients,
            self.total_ops(),
            self.elapsed.as_secs_f64(),
            self.ops_per_sec()
        )?;
        let mut table = String::new();
        write_row(&mut table, &HEADER);
        for row in self.kinds.iter().chain([&self.total]) {
            write_row(&mut table, &cells(row));
        }
        f.write_str(&table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::config::Kind;
    use crate::bench::stats::Completion;

    #[test]
    fn renders_a_row_per_kind_and_a_total() {
        let mut stats = Stats::default();
        stats.record(Kind::Get, Completion::Ok, Duration::from_micros(1500));
        stats.record(Kind::Put, Completion::Unknown, Duration::from_secs(1));
        let mix: Mix = "get=1,put=1".parse().unwrap();
        let report = BenchReport::new(2, Duration::from_secs(2), &mix, &stats);
        assert_eq!(report.total_ops(), 2);
        assert_eq!(report.ops_per_sec(), 1.0);
        let text = report.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "2 clients, 2 ops in 2.000 s: 1 ops/s");
        assert!(lines[1].starts_with("kind "), "{text}");
        assert!(
            lines[2].starts_with("get ") && lines[2].contains("1.50"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("put ") && lines[3].ends_with("-"),
            "{text}"
        );
        assert!(lines[4].starts_with("all "), "{text}");
        assert_eq!(lines.len(), 5);
    }
}
