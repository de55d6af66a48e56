//! Global safety checks: one value per log index, decided prefixes agree.

use kv_components::sequence_paxos::Entry;
use kv_ports::ids::NodeId;
use kv_ports::kv::KvCommand;

/// The first entry decided at each index, by any node; every later decision must match it.
#[derive(Default)]
pub struct Invariants {
    chosen: Vec<Entry<KvCommand>>,
    /// Per node (by id), the next index it must decide (decisions come in order, no gaps).
    next: Vec<u64>,
    stopsign: Option<u64>,
}

impl Invariants {
    pub fn decided(
        &mut self,
        node: NodeId,
        idx: u64,
        entry: &Entry<KvCommand>,
    ) -> Result<(), String> {
        let n = node.0 as usize;
        if self.next.len() <= n {
            self.next.resize(n + 1, 0);
        }
        if self.next[n] != idx {
            return Err(format!(
                "{node}: decided index {idx} out of order (expected {})",
                self.next[n]
            ));
        }
        self.next[n] += 1;
        let i = idx as usize;
        if i < self.chosen.len() {
            if &self.chosen[i] != entry {
                return Err(format!(
                    "{node}: two values chosen at index {idx}: {:?} vs {entry:?}",
                    self.chosen[i]
                ));
            }
        } else {
            assert_eq!(i, self.chosen.len(), "someone decided in order before");
            if let Some(ss) = self.stopsign {
                return Err(format!(
                    "{node}: entry chosen at {idx} after the StopSign at {ss}"
                ));
            }
            if entry.is_stopsign() {
                self.stopsign = Some(idx);
            }
            self.chosen.push(entry.clone());
        }
        Ok(())
    }

    /// Where the StopSign was chosen, if it was.
    pub fn stopsign_idx(&self) -> Option<u64> {
        self.stopsign
    }

    /// Length of the longest decided prefix seen.
    pub fn chosen_len(&self) -> u64 {
        self.chosen.len() as u64
    }
}
