//! Linearizability checking of recorded key-value histories (`kv check`).
//!
//! A history is a set of operations (`get`, `put`, `cas`, `delete`), each with the interval in
//! which it ran and what the client learnt. It is linearizable when every operation can be
//! given a point inside its interval such that the operations, applied in that order to a map
//! that starts empty, produce the results the clients saw. The check splits the history by key
//! (P-compositionality), runs a Wing–Gong–Lowe search with a memo of visited configurations on
//! each key in parallel, and stops at the first violation.
//!
//! ```
//! use kv::checker::{check_history, History, Options, Verdict};
//!
//! let history = History::parse_str(
//!     r#"{"client":1,"key":"x","op":"put","value":1,"call":0,"return":10,"ok":true}
//! {"client":2,"key":"x","op":"get","output":1,"call":5,"return":8,"ok":true}"#,
//! )
//! .unwrap();
//! assert_eq!(check_history(&history, Options::default()), Verdict::Linearizable);
//! ```

pub mod cli;
mod history;
mod html;
mod memo;
mod model;
mod partition;
mod report;
mod search;
mod value;
mod verdict;

pub use history::{History, OpKind, Operation, Outcome, ParseError};
pub use html::render_html;
pub use partition::{check_history, check_with_stats};
pub use report::render_report;
pub use value::ValueId;
pub use verdict::{Counterexample, Options, Progress, ProgressFn, Stats, Verdict};
