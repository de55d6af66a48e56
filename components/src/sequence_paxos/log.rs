//! The replicated log with absolute indices and a compactable prefix.

use std::collections::VecDeque;

use super::messages::Entry;

/// A log whose prefix below `trimmed()` has been dropped; positions stay absolute.
#[derive(Clone, Debug)]
pub struct Log<T> {
    offset: u64,
    entries: VecDeque<Entry<T>>,
}

impl<T: Clone> Default for Log<T> {
    fn default() -> Self {
        Log {
            offset: 0,
            entries: VecDeque::new(),
        }
    }
}

impl<T: Clone> Log<T> {
    /// Absolute length: one past the last index.
    pub fn len(&self) -> u64 {
        self.offset + self.entries.len() as u64
    }

    /// Whether the log has never held an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first index still held (everything below was compacted).
    pub fn trimmed(&self) -> u64 {
        self.offset
    }

    /// The entry at absolute index `idx`, if held.
    pub fn get(&self, idx: u64) -> Option<&Entry<T>> {
        idx.checked_sub(self.offset)
            .and_then(|i| self.entries.get(i as usize))
    }

    /// The last entry, if held.
    pub fn last(&self) -> Option<&Entry<T>> {
        self.entries.back()
    }

    /// A copy of the entries in `[from, to)`; `from` must not be compacted.
    pub fn slice(&self, from: u64, to: u64) -> Vec<Entry<T>> {
        assert!(
            from >= self.offset,
            "slice from {from} below trim point {}",
            self.offset
        );
        let to = to.min(self.len());
        if from >= to {
            return Vec::new();
        }
        let (a, b) = ((from - self.offset) as usize, (to - self.offset) as usize);
        self.entries.range(a..b).cloned().collect()
    }

    /// A copy of the entries from `from` to the end.
    pub fn suffix(&self, from: u64) -> Vec<Entry<T>> {
        self.slice(from, self.len())
    }

    /// Drop every entry at index `len` and above; never cuts into the compacted prefix.
    pub fn truncate(&mut self, len: u64) {
        assert!(
            len >= self.offset,
            "truncate to {len} below trim point {}",
            self.offset
        );
        self.entries.truncate((len - self.offset) as usize);
    }

    /// Append entries at the end.
    pub fn extend<I: IntoIterator<Item = Entry<T>>>(&mut self, entries: I) {
        self.entries.extend(entries);
    }

    /// Drop the prefix below `idx` (never beyond the end).
    pub fn trim(&mut self, idx: u64) {
        let idx = idx.min(self.len());
        if idx > self.offset {
            self.entries.drain(..(idx - self.offset) as usize);
            self.offset = idx;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: u32) -> Log<u32> {
        let mut l = Log::default();
        l.extend((0..n).map(Entry::Cmd));
        l
    }

    #[test]
    fn indices_stay_absolute_after_trim() {
        let mut l = log(10);
        l.trim(4);
        assert_eq!(l.len(), 10);
        assert_eq!(l.trimmed(), 4);
        assert_eq!(l.get(3), None);
        assert_eq!(l.get(4), Some(&Entry::Cmd(4)));
        assert_eq!(l.suffix(8), vec![Entry::Cmd(8), Entry::Cmd(9)]);
        l.truncate(6);
        assert_eq!(l.len(), 6);
        l.trim(100);
        assert_eq!((l.trimmed(), l.len()), (6, 6));
    }

    #[test]
    #[should_panic]
    fn slice_below_trim_panics() {
        let mut l = log(5);
        l.trim(3);
        let _ = l.slice(1, 4);
    }
}
