//! Wing–Gong–Lowe search for one key.
//!
//! The call and return events of the key's operations form a doubly linked list sorted by
//! time. Scanning from the head, a call whose operation is applicable in the current state
//! (and leads to an unexplored configuration) is linearized: its call and return are unlinked
//! in O(1) and the scan restarts at the head. Reaching a return event means that operation
//! should already have been linearized, so the last choice is undone (its entries are relinked
//! in O(1)) and the scan resumes after it. Operations with an unknown outcome have no return
//! event: they may be linearized anywhere after their call, or never; the search succeeds as
//! soon as every completed operation is linearized.
//!
//! Two refinements keep the search small: a memo of visited configurations (see
//! [`super::memo`]), and a partial-order reduction that linearizes an applicable
//! state-preserving operation (a read, a failed CAS, ...) as the only choice, since any
//! linearization can be rearranged to place it first (see [`Search::force_read`]).

use super::memo::{Memo, WindowSet};
use super::model::{Command, State, ABSENT};

/// One operation of the key, ready for the search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchOp {
    /// Index in [`History::ops`](super::History::ops), to report back.
    pub id: u32,
    pub call: u64,
    /// `None` for an unknown outcome: the return is at infinity.
    pub ret: Option<u64>,
    pub cmd: Command,
}

/// Result of searching one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyResult {
    Linearizable,
    /// No linearization exists. `prefix` is the longest linearizable sequence the search found
    /// (history ids in linearization order), `blocker` the completed operation whose return was
    /// reached right after it, and `state` the state after `prefix`.
    Violation {
        prefix: Vec<u32>,
        blocker: u32,
        state: State,
    },
    /// Stopped from outside (timeout, or another key already failed).
    Aborted,
}

/// Counters for reporting.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SearchStats {
    pub steps: u64,
    pub memo_entries: u64,
    pub memo_resets: u64,
}

/// How often (in steps) the search polls `stop`.
const POLL_EVERY: u64 = 1 << 12;
/// Marker for "no entry".
const NONE: u32 = u32::MAX;

/// Searches for a linearization of `ops` (sorted by call time) from the absent state.
/// `stop` is polled now and then; when it returns true the search gives up.
pub(crate) fn search(ops: &[SearchOp], stop: &dyn Fn() -> bool) -> (KeyResult, SearchStats) {
    debug_assert!(ops.windows(2).all(|w| w[0].call <= w[1].call));
    let mut search = Search::new(ops);
    let result = search.run(stop);
    let stats = SearchStats {
        steps: search.steps,
        memo_entries: search.memo.len() as u64,
        memo_resets: search.memo.resets(),
    };
    (result, stats)
}

/// Circular doubly linked list of events with a sentinel (`head`) after the last event;
/// unlinked entries keep their own links, so relinking in reverse order restores the list
/// exactly.
struct EventList {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Per event: operation index << 1 | 1 for a return.
    event: Vec<u32>,
    head: u32,
}

impl EventList {
    /// Builds the list; returns it with the call and return entry of each operation.
    fn new(ops: &[SearchOp]) -> (Self, Vec<u32>, Vec<u32>) {
        let mut events: Vec<(u64, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, (i as u32) << 1));
            if let Some(ret) = op.ret {
                events.push((ret, (i as u32) << 1 | 1));
            }
        }
        // At equal times calls come first: touching intervals count as concurrent.
        events.sort_unstable_by_key(|&(time, ev)| (time, ev & 1, ev));
        let n = events.len() as u32;
        let head = n;
        let mut call_entry = vec![NONE; ops.len()];
        let mut ret_entry = vec![NONE; ops.len()];
        for (entry, &(_, ev)) in events.iter().enumerate() {
            let slot = if ev & 1 == 0 {
                &mut call_entry
            } else {
                &mut ret_entry
            };
            slot[(ev >> 1) as usize] = entry as u32;
        }
        let list = EventList {
            next: (0..=n).map(|e| (e + 1) % (n + 1)).collect(),
            prev: (0..=n).map(|e| (e + n) % (n + 1)).collect(),
            event: events.iter().map(|&(_, ev)| ev).collect(),
            head,
        };
        (list, call_entry, ret_entry)
    }

    #[inline]
    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    #[inline]
    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        self.prev[n as usize] = e;
    }

    #[inline]
    fn first(&self) -> u32 {
        self.next[self.head as usize]
    }
}

/// One linearization decision, with what is needed to undo it.
#[derive(Debug, Clone, Copy)]
struct Frame {
    op: u32,
    prev_state: State,
    prev_frontier: u32,
    /// Taken by the partial-order reduction: there was no alternative to try.
    forced: bool,
}

/// What [`Search::force_read`] did.
enum Forced {
    /// Linearized a state-preserving operation.
    Pushed,
    /// None is applicable: the configuration must be searched normally.
    NoRead,
    /// One is applicable but leads to an explored (hence failed) configuration, so this one
    /// fails too.
    Doomed,
}

/// The state of one key's search.
struct Search<'a> {
    ops: &'a [SearchOp],
    list: EventList,
    call_entry: Vec<u32>,
    ret_entry: Vec<u32>,
    /// Per operation: its number in the window set of its kind (completed or unknown).
    slot: Vec<u32>,
    /// Per operation: completed and never changes the state (see [`Search::force_read`]).
    pure: Vec<bool>,
    /// Linearized completed operations, by slot.
    done: WindowSet,
    /// Linearized operations with unknown outcome, by slot.
    unsure: WindowSet,
    memo: Memo,
    stack: Vec<Frame>,
    state: State,
    /// Completed operations not yet linearized.
    remaining: usize,
    steps: u64,
    best: BestPrefix,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [SearchOp]) -> Self {
        let (list, call_entry, ret_entry) = EventList::new(ops);
        let (mut completed, mut unsure) = (0u32, 0u32);
        let slot = ops
            .iter()
            .map(|op| {
                let counter = match op.ret {
                    Some(_) => &mut completed,
                    None => &mut unsure,
                };
                *counter += 1;
                *counter - 1
            })
            .collect();
        let pure = ops
            .iter()
            .map(|op| op.ret.is_some() && op.cmd.preserves_state())
            .collect();
        Search {
            ops,
            list,
            call_entry,
            ret_entry,
            slot,
            pure,
            done: WindowSet::new(completed as usize),
            unsure: WindowSet::new(unsure as usize),
            memo: Memo::default(),
            stack: Vec::new(),
            state: ABSENT,
            remaining: completed as usize,
            steps: 0,
            best: BestPrefix::default(),
        }
    }

    fn run(&mut self, stop: &dyn Fn() -> bool) -> KeyResult {
        let mut cur = self.list.first();
        // Whether the current configuration was just entered (and not yet scanned).
        let mut fresh = true;
        while self.remaining > 0 {
            self.steps += 1;
            if self.steps.is_multiple_of(POLL_EVERY) && stop() {
                return KeyResult::Aborted;
            }
            if std::mem::take(&mut fresh) {
                match self.force_read() {
                    Forced::Pushed => fresh = true,
                    Forced::NoRead => cur = self.list.first(),
                    Forced::Doomed => match self.backtrack() {
                        Some(resume) => cur = resume,
                        None => return self.violation(),
                    },
                }
                continue;
            }
            debug_assert_ne!(cur, self.list.head, "a completed operation is left");
            let event = self.list.event[cur as usize];
            let op = event >> 1;
            if event & 1 == 0 {
                match self.try_linearize(op, false) {
                    Some(true) => fresh = true,
                    _ => cur = self.list.next[cur as usize],
                }
                continue;
            }
            self.best.record(&self.stack, op, self.state);
            match self.backtrack() {
                Some(resume) => cur = resume,
                None => return self.violation(),
            }
        }
        KeyResult::Linearizable
    }

    /// Partial-order reduction: an operation that never changes the state (a read, a failed
    /// CAS, ...) and is applicable now can be moved to the front of any linearization that
    /// extends this configuration, so it is linearized at once and no alternative is tried.
    fn force_read(&mut self) -> Forced {
        let mut cur = self.list.first();
        while cur != self.list.head {
            let event = self.list.event[cur as usize];
            if event & 1 == 1 {
                break;
            }
            let op = event >> 1;
            if self.pure[op as usize] {
                match self.try_linearize(op, true) {
                    Some(true) => return Forced::Pushed,
                    Some(false) => return Forced::Doomed,
                    None => {}
                }
            }
            cur = self.list.next[cur as usize];
        }
        Forced::NoRead
    }

    /// Linearizes `op` next if it is applicable (`None` if not) and leads to an unexplored
    /// configuration (`Some(false)` if explored already).
    fn try_linearize(&mut self, op: u32, forced: bool) -> Option<bool> {
        let sop = self.ops[op as usize];
        let next = sop.cmd.apply(self.state)?;
        let completed = sop.ret.is_some();
        let slot = self.slot[op as usize];
        let prev_frontier = self.set_of(completed).insert(slot);
        if !self.memo.insert(next, &self.done, &self.unsure) {
            self.set_of(completed).remove(slot, prev_frontier);
            return Some(false);
        }
        self.stack.push(Frame {
            op,
            prev_state: self.state,
            prev_frontier,
            forced,
        });
        self.state = next;
        self.list.unlink(self.call_entry[op as usize]);
        if completed {
            self.list.unlink(self.ret_entry[op as usize]);
            self.remaining -= 1;
        }
        Some(true)
    }

    /// The current configuration has no linearization: undoes decisions up to the last one
    /// that had alternatives (forced ones had none) and returns the entry to resume the scan
    /// at, or `None` if no decision is left.
    fn backtrack(&mut self) -> Option<u32> {
        loop {
            let frame = self.undo()?;
            if !frame.forced {
                return Some(self.list.next[self.call_entry[frame.op as usize] as usize]);
            }
        }
    }

    /// Undoes the last decision and returns it.
    fn undo(&mut self) -> Option<Frame> {
        let frame = self.stack.pop()?;
        self.best.popped(self.stack.len());
        let op = frame.op as usize;
        let completed = self.ops[op].ret.is_some();
        if completed {
            self.list.relink(self.ret_entry[op]);
            self.remaining += 1;
        }
        self.list.relink(self.call_entry[op]);
        let slot = self.slot[op];
        self.set_of(completed).remove(slot, frame.prev_frontier);
        self.state = frame.prev_state;
        Some(frame)
    }

    fn set_of(&mut self, completed: bool) -> &mut WindowSet {
        match completed {
            true => &mut self.done,
            false => &mut self.unsure,
        }
    }

    fn violation(&self) -> KeyResult {
        debug_assert!(self.best.seen, "a failed search has met a dead end");
        let ids = |i: &u32| self.ops[*i as usize].id;
        KeyResult::Violation {
            prefix: self.best.ops.iter().map(ids).collect(),
            blocker: ids(&self.best.blocker),
            state: self.best.state,
        }
    }
}

/// The deepest dead end seen so far. It shares a prefix with the live stack, tracked in
/// `common`, so updating it costs only the frames pushed since they diverged.
#[derive(Default)]
struct BestPrefix {
    ops: Vec<u32>,
    blocker: u32,
    state: State,
    seen: bool,
    /// `stack[..common]` and `ops[..common]` agree.
    common: usize,
}

impl BestPrefix {
    fn record(&mut self, stack: &[Frame], blocker: u32, state: State) {
        if self.seen && stack.len() <= self.ops.len() {
            return;
        }
        self.ops.truncate(self.common);
        self.ops.extend(stack[self.common..].iter().map(|f| f.op));
        self.common = stack.len();
        self.blocker = blocker;
        self.state = state;
        self.seen = true;
    }

    fn popped(&mut self, depth: usize) {
        self.common = self.common.min(depth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u32, call: u64, ret: Option<u64>, cmd: Command) -> SearchOp {
        SearchOp { id, call, ret, cmd }
    }

    fn run(ops: &[SearchOp]) -> KeyResult {
        search(ops, &|| false).0
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert_eq!(run(&[]), KeyResult::Linearizable);
    }

    #[test]
    fn concurrent_write_may_precede_read() {
        let ops = [
            op(0, 0, Some(10), Command::Write(1)),
            op(1, 5, Some(8), Command::Read(1)),
        ];
        assert_eq!(run(&ops), KeyResult::Linearizable);
    }

    #[test]
    fn stale_read_is_caught_with_its_prefix() {
        let ops = [
            op(0, 0, Some(10), Command::Write(1)),
            op(1, 20, Some(30), Command::Write(2)),
            op(2, 40, Some(50), Command::Read(1)),
        ];
        let KeyResult::Violation {
            prefix,
            blocker,
            state,
        } = run(&ops)
        else {
            panic!("violation expected")
        };
        assert_eq!(prefix, vec![0, 1]);
        assert_eq!(blocker, 2);
        assert_eq!(state, 2);
    }

    #[test]
    fn unknown_write_may_apply_late_or_never() {
        let late = [
            op(0, 0, Some(10), Command::Write(1)),
            op(1, 5, None, Command::Write(2)),
            op(2, 20, Some(30), Command::Read(1)),
            op(3, 40, Some(50), Command::Read(2)),
        ];
        assert_eq!(run(&late), KeyResult::Linearizable);
        let never = [
            op(0, 0, Some(10), Command::Write(1)),
            op(1, 5, None, Command::Write(2)),
            op(2, 20, Some(30), Command::Read(1)),
        ];
        assert_eq!(run(&never), KeyResult::Linearizable);
        let flip = [
            op(0, 0, Some(10), Command::Write(1)),
            op(1, 5, None, Command::Write(2)),
            op(2, 20, Some(30), Command::Read(2)),
            op(3, 40, Some(50), Command::Read(1)),
        ];
        assert!(matches!(run(&flip), KeyResult::Violation { .. }));
    }

    #[test]
    fn stop_aborts_long_searches() {
        let ops: Vec<_> = (0..5000)
            .map(|i| {
                op(
                    i,
                    u64::from(i) * 10,
                    Some(u64::from(i) * 10 + 5),
                    Command::Write(1),
                )
            })
            .collect();
        assert_eq!(search(&ops, &|| true).0, KeyResult::Aborted);
    }
}
