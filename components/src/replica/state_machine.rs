//! The key-value map and how each operation changes it.

use std::collections::BTreeMap;

use bytes::Bytes;
use kv_ports::kv::{pair_bytes, KvOp, KvResult, SlotPage};
use serde::{Deserialize, Serialize};

use super::ownership::OwnershipState;
use super::session::Session;
use kv_ports::ids::ClientId;
use kv_ports::membership::{slot_of, Slot};

/// The key-value state: a sorted map so snapshots are deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    map: BTreeMap<Bytes, Bytes>,
}

impl KvStore {
    /// Apply one operation and say what happened.
    pub fn apply(&mut self, op: &KvOp) -> KvResult {
        match op {
            KvOp::Get { key } => KvResult::Value(self.map.get(key).cloned()),
            KvOp::Put { key, value } => {
                self.map.insert(key.clone(), value.clone());
                KvResult::Written
            }
            KvOp::Cas { key, expected, new } => {
                let holds = self.map.get(key) == expected.as_ref();
                if holds {
                    self.map.insert(key.clone(), new.clone());
                }
                KvResult::Swapped(holds)
            }
            KvOp::Delete { key } => KvResult::Deleted(self.map.remove(key).is_some()),
            KvOp::Freeze { .. } | KvOp::InstallPart { .. } | KvOp::Install { .. } => {
                unreachable!("slot moves change ownership; the replica applies them")
            }
        }
    }

    /// The value of `key` (for inspection; clients read through the log).
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.map.get(key)
    }

    /// Number of keys present.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every pair, in key order.
    pub fn pairs(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.map.iter()
    }

    /// The pairs after key `after` (from the first key if `None`) whose keys hash into a slot
    /// `pick` accepts, in key order, up to `max_bytes` (see [`pair_bytes`]; always at least
    /// one pair when one is left, however large). Scans only as far as the page reaches, so
    /// reading all pages costs one pass over the store.
    pub fn page_where(
        &self,
        pick: impl Fn(Slot) -> bool,
        after: Option<&[u8]>,
        max_bytes: usize,
    ) -> SlotPage {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let range = self.map.range::<[u8], _>((start, Bound::Unbounded));
        let mut page = SlotPage::default();
        let mut size = 0u64;
        for (k, v) in range.filter(|(k, _)| pick(slot_of(k))) {
            let n = pair_bytes(k, v);
            if !page.pairs.is_empty() && size + n > max_bytes as u64 {
                page.more = true;
                break;
            }
            size += n;
            page.pairs.push((k.clone(), v.clone()));
        }
        page
    }

    /// How many pairs have keys hashing into a slot `pick` accepts, and their size (see
    /// [`pair_bytes`]).
    pub fn size_where(&self, pick: impl Fn(Slot) -> bool) -> (u64, u64) {
        let pairs = self.map.iter().filter(|(k, _)| pick(slot_of(k)));
        pairs.fold((0, 0), |(n, b), (k, v)| (n + 1, b + pair_bytes(k, v)))
    }

    /// Remove every pair whose key hashes into a slot `pick` accepts.
    pub fn remove_where(&mut self, pick: impl Fn(Slot) -> bool) {
        self.map.retain(|k, _| !pick(slot_of(k)));
    }

    /// Set `key` to `value` (slot installs; clients go through [`apply`](Self::apply)).
    pub fn insert(&mut self, key: Bytes, value: Bytes) {
        self.map.insert(key, value);
    }

    /// A store holding exactly `pairs`.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Bytes, Bytes)>) -> Self {
        KvStore {
            map: pairs.into_iter().collect(),
        }
    }
}

/// Everything a new member needs to continue from log index `applied`: the store and the
/// session table (without sessions a retried command could be applied twice after transfer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Entries below this log index are reflected in the snapshot.
    pub applied: u64,
    /// The key-value pairs, in key order.
    pub pairs: Vec<(Bytes, Bytes)>,
    /// Each client's latest applied command and its reply.
    pub sessions: Vec<(ClientId, Session)>,
    /// The slots the group serves and the last move of each slot that moved.
    pub ownership: OwnershipState,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn operations_follow_their_contract() {
        let mut s = KvStore::default();
        let k = b("k");
        let cases: Vec<(KvOp, KvResult)> = vec![
            (KvOp::Get { key: k.clone() }, KvResult::Value(None)),
            (
                KvOp::Cas {
                    key: k.clone(),
                    expected: Some(b("x")),
                    new: b("y"),
                },
                KvResult::Swapped(false),
            ),
            (
                KvOp::Cas {
                    key: k.clone(),
                    expected: None,
                    new: b("a"),
                },
                KvResult::Swapped(true),
            ),
            (KvOp::Get { key: k.clone() }, KvResult::Value(Some(b("a")))),
            (
                KvOp::Put {
                    key: k.clone(),
                    value: b("b"),
                },
                KvResult::Written,
            ),
            (
                KvOp::Cas {
                    key: k.clone(),
                    expected: Some(b("b")),
                    new: b("c"),
                },
                KvResult::Swapped(true),
            ),
            (KvOp::Delete { key: k.clone() }, KvResult::Deleted(true)),
            (KvOp::Delete { key: k.clone() }, KvResult::Deleted(false)),
            (KvOp::Get { key: k }, KvResult::Value(None)),
        ];
        for (op, want) in cases {
            assert_eq!(s.apply(&op), want, "{op:?}");
        }
        assert!(s.is_empty());
    }
}
