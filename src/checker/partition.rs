//! P-compositionality: split the history by key and search the keys in parallel.
//!
//! Keys are handed out in order of first appearance. When a key fails, every key with a
//! larger index stops at once; keys with a smaller index (at most one per other worker) run
//! to their end, so the reported violation is always the one on the first failing key,
//! whatever the scheduling.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::history::History;
use super::model::{self, value_of};
use super::search::{search, KeyResult, SearchOp, SearchStats};
use super::verdict::{Counterexample, Options, Progress, ProgressFn, Stats, Verdict};

/// How often [`Options::progress`] is called.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Checks that the history is linearizable for a key-value register per key.
pub fn check_history(history: &History, options: Options) -> Verdict {
    check_with_stats(history, options).0
}

/// Like [`check_history`], also returning how much work the search did (for benchmarks and
/// for judging a `--timeout`).
pub fn check_with_stats(history: &History, mut options: Options) -> (Verdict, Stats) {
    let start = Instant::now();
    let keys = split(history);
    let shared = Shared {
        next: AtomicUsize::new(0),
        first_bad: AtomicUsize::new(usize::MAX),
        expired: AtomicBool::new(false),
        deadline: options.timeout.map(|t| start + t),
    };
    let threads = match options.threads {
        0 => thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, keys.len().max(1));
    let results = thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..threads {
            let tx = tx.clone();
            let (keys, shared) = (&keys, &shared);
            scope.spawn(move || worker(keys, shared, &tx));
        }
        drop(tx);
        collect(&rx, keys.len(), start, options.progress.as_mut())
    });
    let mut stats = Stats {
        keys: keys.len(),
        ..Stats::default()
    };
    for (_, key_stats) in results.iter().flatten() {
        stats.steps += key_stats.steps;
        stats.largest_memo = stats.largest_memo.max(key_stats.memo_entries);
        stats.memo_resets += key_stats.memo_resets;
    }
    (verdict(&results), stats)
}

/// Per-key operation lists (sorted by call), indexed by key id; operations that cannot affect
/// the verdict (failed ones, reads with unknown outcome) are left out.
fn split(history: &History) -> Vec<Vec<SearchOp>> {
    let mut keys: Vec<Vec<SearchOp>> = (0..history.key_count()).map(|_| Vec::new()).collect();
    for (id, op) in history.ops().iter().enumerate() {
        let Some(cmd) = model::command(op) else {
            continue;
        };
        keys[op.key as usize].push(SearchOp {
            id: u32::try_from(id).expect("fewer than 2^32 operations"),
            call: op.call,
            ret: op.ret,
            cmd,
        });
    }
    for ops in &mut keys {
        ops.sort_by_key(|op| (op.call, op.id));
    }
    keys
}

/// State shared by the workers.
struct Shared {
    /// Next key to hand out.
    next: AtomicUsize,
    /// Smallest key index found non-linearizable so far.
    first_bad: AtomicUsize,
    /// Set once the deadline has passed.
    expired: AtomicBool,
    deadline: Option<Instant>,
}

impl Shared {
    /// Whether the search of key `key` should give up.
    fn should_stop(&self, key: usize) -> bool {
        if self.first_bad.load(Ordering::Relaxed) < key || self.expired.load(Ordering::Relaxed) {
            return true;
        }
        let late = self.deadline.is_some_and(|d| Instant::now() >= d);
        if late {
            self.expired.store(true, Ordering::Relaxed);
        }
        late
    }
}

/// What a worker reports per key.
type KeyReport = (usize, (KeyResult, SearchStats));

fn worker(keys: &[Vec<SearchOp>], shared: &Shared, tx: &mpsc::Sender<KeyReport>) {
    loop {
        let key = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(ops) = keys.get(key) else {
            return;
        };
        let result = match shared.should_stop(key) {
            true => (KeyResult::Aborted, SearchStats::default()),
            false => search(ops, &|| shared.should_stop(key)),
        };
        if matches!(result.0, KeyResult::Violation { .. }) {
            shared.first_bad.fetch_min(key, Ordering::Relaxed);
        }
        if tx.send((key, result)).is_err() {
            return;
        }
    }
}

/// Gathers every key's result, reporting progress while waiting.
fn collect(
    rx: &mpsc::Receiver<KeyReport>,
    total: usize,
    start: Instant,
    mut progress: Option<&mut ProgressFn>,
) -> Vec<Option<(KeyResult, SearchStats)>> {
    let mut results = vec![None; total];
    let mut done = 0;
    let mut next_report = start + PROGRESS_EVERY;
    loop {
        let wait = next_report.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok((key, result)) => {
                done += 1;
                results[key] = Some(result);
            }
            Err(RecvTimeoutError::Disconnected) => return results,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(report) = progress.as_mut() {
                    report(&Progress {
                        keys_done: done,
                        keys_total: total,
                        elapsed: start.elapsed(),
                    });
                }
                next_report += PROGRESS_EVERY;
            }
        }
    }
}

/// The first violation (by key index) wins; otherwise any undecided key makes the answer
/// unknown.
fn verdict(results: &[Option<(KeyResult, SearchStats)>]) -> Verdict {
    let mut decided = 0;
    for (key, result) in results.iter().enumerate() {
        match result.as_ref().map(|r| &r.0) {
            Some(KeyResult::Violation {
                prefix,
                blocker,
                state,
            }) => {
                return Verdict::NotLinearizable(Box::new(Counterexample {
                    key: key as u32,
                    prefix: prefix.iter().map(|&id| id as usize).collect(),
                    blocker: *blocker as usize,
                    state: value_of(*state),
                }))
            }
            Some(KeyResult::Linearizable) => decided += 1,
            _ => {}
        }
    }
    match decided == results.len() {
        true => Verdict::Linearizable,
        false => Verdict::Unknown {
            keys_done: decided,
            keys_total: results.len(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Verdict {
        check_history(&History::parse_str(text).unwrap(), Options::default())
    }

    const TWO_KEYS_BAD_Y: &str = r#"{"client":0,"key":"x","op":"put","value":1,"call":0,"return":10,"ok":true}
{"client":1,"key":"y","op":"put","value":1,"call":0,"return":10,"ok":true}
{"client":1,"key":"y","op":"get","output":2,"call":20,"return":30,"ok":true}
{"client":0,"key":"x","op":"get","output":1,"call":20,"return":30,"ok":true}"#;

    #[test]
    fn keys_are_checked_independently() {
        let Verdict::NotLinearizable(cex) = check(TWO_KEYS_BAD_Y) else {
            panic!("violation expected")
        };
        assert_eq!(cex.key, 1);
        assert_eq!(cex.prefix, vec![1]);
        assert_eq!(cex.blocker, 2);
    }

    #[test]
    fn failed_operations_are_ignored() {
        let text = r#"{"client":0,"key":"x","op":"put","value":1,"call":0,"return":10,"ok":false}
{"client":1,"key":"x","op":"get","output":null,"call":20,"return":30,"ok":true}"#;
        assert_eq!(check(text), Verdict::Linearizable);
    }

    #[test]
    fn an_expired_deadline_answers_unknown() {
        let history = History::parse_str(TWO_KEYS_BAD_Y).unwrap();
        let options = Options {
            timeout: Some(Duration::ZERO),
            ..Options::default()
        };
        assert_eq!(
            check_history(&history, options),
            Verdict::Unknown {
                keys_done: 0,
                keys_total: 2
            }
        );
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert_eq!(check(""), Verdict::Linearizable);
    }
}
