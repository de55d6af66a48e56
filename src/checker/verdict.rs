//! What a check is asked ([`Options`]) and what it answers ([`Verdict`]).

use std::time::Duration;

use super::value::ValueId;

/// Knobs of [`check_history`](super::check_history).
#[derive(Default)]
pub struct Options {
    /// Give up (answer [`Verdict::Unknown`]) after this long; `None` searches to the end.
    /// Linearizability checking is NP-complete, so pathological histories need a bound.
    pub timeout: Option<Duration>,
    /// Worker threads; 0 uses one per available core.
    pub threads: usize,
    /// Called about once a second while the check runs (never for checks shorter than a
    /// second), so a command line can show that a long check is alive.
    pub progress: Option<ProgressFn>,
}

/// The progress callback of [`Options::progress`].
pub type ProgressFn = Box<dyn FnMut(&Progress) + Send>;

/// A snapshot of a running check, for [`Options::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Keys whose search has finished.
    pub keys_done: usize,
    /// Keys in the history.
    pub keys_total: usize,
    /// Time since the check started.
    pub elapsed: Duration,
}

/// The answer of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every key has a linearization.
    Linearizable,
    /// Some key has none; the counterexample explains where the search got stuck.
    NotLinearizable(Box<Counterexample>),
    /// The timeout expired before every key was decided and no violation was found.
    Unknown {
        /// Keys decided before the timeout.
        keys_done: usize,
        /// Keys in the history.
        keys_total: usize,
    },
}

impl Verdict {
    /// The one-line verdict the command prints first (and scripts grep for).
    pub fn headline(&self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable(_) => "not linearizable",
            Verdict::Unknown { .. } => "unknown",
        }
    }
}

/// Evidence of a violation on one key, in terms of the history's operations (indices into
/// [`History::ops`](super::History::ops)).
///
/// `prefix` is the longest sequence of the key's operations that the search could linearize
/// (respecting real time and the model); `blocker` is the completed operation whose return was
/// reached next: it cannot be linearized after `prefix`, and neither can anything else still
/// waiting, so no linearization extends `prefix`. Since the search tried every alternative,
/// no linearization exists at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterexample {
    /// The key (see [`History::key_name`](super::History::key_name)).
    pub key: u32,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<usize>,
    /// The first operation that cannot follow the prefix.
    pub blocker: usize,
    /// The key's value after the prefix (`None`: absent).
    pub state: Option<ValueId>,
}

/// How much work a check did, from [`check_with_stats`](super::check_with_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Keys in the history.
    pub keys: usize,
    /// Search steps (events visited) over all keys.
    pub steps: u64,
    /// Most configurations memoized for one key: the search's memory high-water mark.
    pub largest_memo: u64,
    /// Times a memo outgrew its memory budget and was emptied (only pathological histories
    /// get there; the search stays correct, just slower).
    pub memo_resets: u64,
}
