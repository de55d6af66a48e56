//! Sequential semantics of a single key.
//!
//! Every operation touches exactly one key and keys never interact, so a history is
//! linearizable exactly when each key's sub-history is (P-compositionality). The state of one
//! key is just "absent" or an interned value, packed in a `u32` so that search states hash and
//! compare as integers.

use super::history::{OpKind, Operation, Outcome};
use super::value::ValueId;

/// The value of one key: [`ABSENT`] or `id + 1` for a present value `id`.
pub(crate) type State = u32;

/// The state of a key that was never written or was deleted.
pub(crate) const ABSENT: State = 0;

/// Packs an optional value into a [`State`].
pub(crate) fn state_of(value: Option<ValueId>) -> State {
    value.map_or(ABSENT, |v| v.0 + 1)
}

/// Unpacks a [`State`].
pub(crate) fn value_of(state: State) -> Option<ValueId> {
    state.checked_sub(1).map(ValueId)
}

/// An operation reduced to what the search needs: its effect and the result it must observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// A completed `get` that must observe this state.
    Read(State),
    /// A `put` (completed or not): always applicable.
    Write(State),
    /// A `cas`; `swapped` is the observed result, `None` when unknown.
    Cas {
        expected: State,
        new: State,
        swapped: Option<bool>,
    },
    /// A `delete`; `existed` is the observed result when reported.
    Delete { existed: Option<bool> },
}

impl Command {
    /// The state after applying `self` to `state`, or `None` when the recorded result is
    /// impossible in that state.
    #[inline]
    pub(crate) fn apply(self, state: State) -> Option<State> {
        match self {
            Command::Read(seen) => (seen == state).then_some(state),
            Command::Write(new) => Some(new),
            Command::Cas {
                expected,
                new,
                swapped,
            } => match swapped {
                Some(true) => (state == expected).then_some(new),
                Some(false) => (state != expected).then_some(state),
                None => Some(if state == expected { new } else { state }),
            },
            Command::Delete { existed } => match existed {
                Some(e) if e != (state != ABSENT) => None,
                _ => Some(ABSENT),
            },
        }
    }
}

impl Command {
    /// Whether every application that succeeds leaves the state as it was (reads, failed
    /// CAS, ...), which lets the search linearize it as soon as it is applicable.
    pub(crate) fn preserves_state(self) -> bool {
        match self {
            Command::Read(_) => true,
            Command::Write(_) => false,
            Command::Cas {
                expected,
                new,
                swapped,
            } => swapped == Some(false) || (swapped == Some(true) && expected == new),
            Command::Delete { existed } => existed == Some(false),
        }
    }
}

/// The command the search must linearize for `op`, or `None` when the operation neither
/// changed the state nor observed anything: failed operations (`ok: false`) and reads with an
/// unknown outcome.
pub(crate) fn command(op: &Operation) -> Option<Command> {
    let cmd = match op.kind {
        OpKind::Get { output } => Command::Read(state_of(output)),
        OpKind::Put { value } => Command::Write(state_of(Some(value))),
        OpKind::Cas {
            expected,
            value,
            swapped,
        } => Command::Cas {
            expected: state_of(expected),
            new: state_of(Some(value)),
            swapped,
        },
        OpKind::Delete { existed } => Command::Delete { existed },
    };
    match (op.outcome, cmd) {
        (Outcome::Failed, _) | (Outcome::Unknown, Command::Read(_)) => None,
        _ => Some(cmd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: State = 1;
    const B: State = 2;

    #[test]
    fn reads_observe_the_state() {
        assert_eq!(Command::Read(A).apply(A), Some(A));
        assert_eq!(Command::Read(A).apply(B), None);
        assert_eq!(Command::Read(ABSENT).apply(ABSENT), Some(ABSENT));
    }

    #[test]
    fn cas_follows_its_result() {
        let cas = |swapped| Command::Cas {
            expected: A,
            new: B,
            swapped,
        };
        assert_eq!(cas(Some(true)).apply(A), Some(B));
        assert_eq!(cas(Some(true)).apply(B), None);
        assert_eq!(cas(Some(false)).apply(A), None);
        assert_eq!(cas(Some(false)).apply(ABSENT), Some(ABSENT));
        assert_eq!(cas(None).apply(A), Some(B));
        assert_eq!(cas(None).apply(ABSENT), Some(ABSENT));
    }

    #[test]
    fn delete_checks_existence_when_reported() {
        let del = |existed| Command::Delete { existed };
        assert_eq!(del(None).apply(A), Some(ABSENT));
        assert_eq!(del(Some(true)).apply(A), Some(ABSENT));
        assert_eq!(del(Some(true)).apply(ABSENT), None);
        assert_eq!(del(Some(false)).apply(A), None);
        assert_eq!(del(Some(false)).apply(ABSENT), Some(ABSENT));
    }

    #[test]
    fn only_state_preserving_commands_are_pure() {
        assert!(Command::Read(A).preserves_state());
        assert!(!Command::Write(A).preserves_state());
        let cas = |new, swapped| Command::Cas {
            expected: A,
            new,
            swapped,
        };
        assert!(cas(B, Some(false)).preserves_state());
        assert!(cas(A, Some(true)).preserves_state());
        assert!(!cas(B, Some(true)).preserves_state());
        assert!(!cas(A, None).preserves_state());
        assert!(Command::Delete {
            existed: Some(false)
        }
        .preserves_state());
        assert!(!Command::Delete { existed: None }.preserves_state());
    }

    #[test]
    fn states_round_trip() {
        assert_eq!(value_of(state_of(None)), None);
        assert_eq!(value_of(state_of(Some(ValueId(7)))), Some(ValueId(7)));
    }
}
