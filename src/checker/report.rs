//! Plain-text rendering of a verdict, as printed by `kv check`.

use std::fmt::Write as _;

use serde_json::Value;

use super::history::{History, OpKind, Operation, Outcome};
use super::model::{self, state_of, Command};
use super::value::ValueId;
use super::verdict::{Counterexample, Verdict};

/// Prefix operations shown in full before eliding older ones.
const PREFIX_SHOWN: usize = 10;
/// Longest value rendering before truncation.
const VALUE_CHARS: usize = 40;

/// The report: the verdict on the first line, then (for a violation) the key, the end of the
/// longest linearizable prefix and the operation that cannot follow it.
pub fn render_report(history: &History, verdict: &Verdict) -> String {
    let mut out = format!("{}\n", verdict.headline());
    match verdict {
        Verdict::Linearizable => {}
        Verdict::Unknown {
            keys_done,
            keys_total,
        } => {
            let _ = writeln!(
                out,
                "timed out after deciding {keys_done} of {keys_total} keys"
            );
        }
        Verdict::NotLinearizable(cex) => violation(&mut out, history, cex),
    }
    out
}

fn violation(out: &mut String, history: &History, cex: &Counterexample) {
    let ops = history.ops();
    let key_ops = ops.iter().filter(|op| op.key == cex.key).count();
    let _ = writeln!(
        out,
        "key {} ({key_ops} operations): no linearization exists",
        json_str(history.key_name(cex.key))
    );
    let _ = writeln!(
        out,
        "longest linearizable prefix: {} operation(s)",
        cex.prefix.len()
    );
    let skipped = cex.prefix.len().saturating_sub(PREFIX_SHOWN);
    if skipped > 0 {
        let _ = writeln!(out, "  ... {skipped} earlier operation(s) not shown");
    }
    for (n, &id) in cex.prefix.iter().enumerate().skip(skipped) {
        let _ = writeln!(out, "  {:>4}. {}", n + 1, describe(history, &ops[id]));
    }
    let _ = writeln!(
        out,
        "value after the prefix: {}",
        state_text(history, cex.state)
    );
    let blocker = &ops[cex.blocker];
    let _ = writeln!(out, "first operation that cannot follow it:");
    let _ = writeln!(out, "        {}", describe(history, blocker));
    let _ = writeln!(out, "  because {}", why(history, blocker, cex.state));
    match (expected_value(blocker), last_writer(history, cex)) {
        (Some(_), Some(writer)) => {
            let _ = writeln!(out, "the value it expects was last written by:");
            let _ = writeln!(out, "        {}", describe(history, &ops[writer]));
        }
        (Some(_), None) => {
            let _ = writeln!(
                out,
                "no operation that could precede it writes the value it expects"
            );
        }
        _ => {}
    }
}

/// The present value an operation needs to find, if any (reads of a value, swapping CAS).
fn expected_value(op: &Operation) -> Option<ValueId> {
    match op.kind {
        OpKind::Get { output } => output,
        OpKind::Cas {
            expected,
            swapped: Some(true),
            ..
        } => expected,
        _ => None,
    }
}

/// The latest operation (by call) on the key, called before the blocker returned, that
/// writes the value the blocker expects to find, if it expects a present value. Shown because
/// it is usually the other half of the story (and is often far back in time).
pub(crate) fn last_writer(history: &History, cex: &Counterexample) -> Option<usize> {
    let ops = history.ops();
    let blocker = &ops[cex.blocker];
    let wanted = expected_value(blocker)?;
    let horizon = blocker.ret.unwrap_or(u64::MAX);
    let writes = |op: &Operation| match op.kind {
        OpKind::Put { value } | OpKind::Cas { value, .. } => value == wanted,
        _ => false,
    };
    (0..ops.len())
        .filter(|&i| i != cex.blocker && ops[i].key == cex.key && ops[i].call <= horizon)
        .filter(|&i| ops[i].outcome != Outcome::Failed && writes(&ops[i]))
        .max_by_key(|&i| (ops[i].call, i))
}

/// One operation on one line: where it is, who ran it, what it did and when.
pub(crate) fn describe(history: &History, op: &Operation) -> String {
    let ret = op.ret.map_or("-".to_owned(), |r| r.to_string());
    format!(
        "line {:<6} client {:<4} {:<32} [{} .. {}]",
        op.line,
        history.client_name(op.client),
        action(history, op),
        op.call,
        ret
    )
}

/// What the operation did and saw, e.g. `cas 1 -> 5: failed`.
pub(crate) fn action(history: &History, op: &Operation) -> String {
    let v = |id: ValueId| short(history.value(id));
    let known = op.outcome == Outcome::Ok;
    let text = match op.kind {
        OpKind::Get { output } if known => format!("get -> {}", state_text(history, output)),
        OpKind::Get { .. } => "get".to_owned(),
        OpKind::Put { value } => format!("put {}", v(value)),
        OpKind::Cas {
            expected,
            value,
            swapped,
        } => {
            let result = match swapped {
                Some(true) => ": swapped",
                Some(false) => ": not swapped",
                None => "",
            };
            format!(
                "cas {} -> {}{result}",
                state_text(history, expected),
                v(value)
            )
        }
        OpKind::Delete { existed } => match existed {
            Some(true) => "delete: existed".to_owned(),
            Some(false) => "delete: absent".to_owned(),
            None => "delete".to_owned(),
        },
    };
    match op.outcome {
        Outcome::Ok => text,
        Outcome::Failed => format!("{text} (failed)"),
        Outcome::Unknown => format!("{text} (unknown outcome)"),
    }
}

/// Why the blocker cannot be applied in `state` (the search guarantees it cannot).
fn why(history: &History, op: &Operation, state: Option<ValueId>) -> String {
    let now = state_text(history, state);
    let Some(cmd) = model::command(op) else {
        return "it has no effect (this is a bug in the checker)".to_owned();
    };
    if cmd.apply(state_of(state)).is_some() {
        // Applicable, yet every continuation was already explored and failed.
        return format!("every continuation after it fails (value {now})");
    }
    match cmd {
        Command::Read(_) => format!("the value is {now}"),
        Command::Cas {
            swapped: Some(true),
            ..
        } => format!("the swap needs the expected value, but the value is {now}"),
        Command::Cas { .. } => format!("the value {now} equals the expected one, so it must swap"),
        Command::Delete { .. } => format!("the existence it reports contradicts the value {now}"),
        Command::Write(_) => unreachable!("writes always apply"),
    }
}

fn state_text(history: &History, state: Option<ValueId>) -> String {
    state.map_or("absent".to_owned(), |id| short(history.value(id)))
}

/// Compact JSON, cut to [`VALUE_CHARS`] characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(VALUE_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{check_history, Options};

    #[test]
    fn violation_report_names_key_prefix_and_blocker() {
        let text = r#"{"client":0,"key":"x","op":"put","value":1,"call":0,"return":10,"ok":true}
{"client":1,"key":"x","op":"cas","expected":1,"value":5,"output":false,"call":20,"return":30,"ok":true}"#;
        let history = History::parse_str(text).unwrap();
        let verdict = check_history(&history, Options::default());
        let report = render_report(&history, &verdict);
        let lines: Vec<_> = report.lines().collect();
        assert_eq!(lines[0], "not linearizable");
        assert!(lines[1].starts_with("key \"x\" (2 operations)"), "{report}");
        assert!(report.contains("longest linearizable prefix: 1 operation(s)"));
        assert!(report.contains("put 1"));
        assert!(report.contains("cas 1 -> 5: not swapped"));
        assert!(report.contains("because the value 1 equals the expected one"));
        assert!(!report.contains("last written by"));
    }

    #[test]
    fn violation_report_names_the_writer_of_a_stale_value() {
        let text = r#"{"client":0,"key":"x","op":"put","value":1,"call":0,"return":10,"ok":true}
{"client":0,"key":"x","op":"put","value":2,"call":20,"return":30,"ok":true}
{"client":1,"key":"x","op":"get","output":1,"call":40,"return":50,"ok":true}"#;
        let history = History::parse_str(text).unwrap();
        let report = render_report(&history, &check_history(&history, Options::default()));
        let tail: Vec<_> = report.lines().rev().take(2).collect();
        assert!(tail[1].contains("last written by"), "{report}");
        assert!(tail[0].contains("line 1 "), "{report}");
    }

    #[test]
    fn linearizable_report_is_one_line() {
        let history = History::parse_str("").unwrap();
        let verdict = check_history(&history, Options::default());
        assert_eq!(render_report(&history, &verdict), "linearizable\n");
    }
}
