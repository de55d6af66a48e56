//! Global safety checks, per configuration and across configurations: one value per log index
//! (so decided prefixes agree), nothing after a StopSign, one state at each StopSign, each
//! command applied at most once in the whole history of the group.

use std::collections::{BTreeMap, HashMap};

use kv_components::reconfig::ConfigEvent;
use kv_components::sequence_paxos::{Entry, StopSign};
use kv_ports::ids::NodeId;
use kv_ports::kv::{KvCommand, RequestId};

/// The log of one configuration: the first entry decided at each index, by any node; every
/// later decision must match it.
#[derive(Default)]
pub struct ConfigLog {
    chosen: Vec<Entry<KvCommand>>,
    /// Per node (by id), the next index it must decide (decisions come in order, no gaps).
    next: Vec<u64>,
    stopsign: Option<u64>,
}

impl ConfigLog {
    fn decided(
        &mut self,
        config: u32,
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
                "{node} (c{config}): decided index {idx} out of order (expected {})",
                self.next[n]
            ));
        }
        self.next[n] += 1;
        let i = idx as usize;
        if i < self.chosen.len() {
            if &self.chosen[i] != entry {
                return Err(format!(
                    "{node} (c{config}): two values chosen at index {idx}: {:?} vs {entry:?}",
                    self.chosen[i]
                ));
            }
        } else {
            assert_eq!(i, self.chosen.len(), "someone decided in order before");
            if let Some(ss) = self.stopsign {
                return Err(format!(
                    "{node} (c{config}): entry chosen at {idx} after the StopSign at {ss}"
                ));
            }
            if entry.is_stopsign() {
                self.stopsign = Some(idx);
            }
            self.chosen.push(entry.clone());
        }
        Ok(())
    }

    fn chosen_stopsign(&self) -> Option<&StopSign> {
        match self.chosen.last() {
            Some(Entry::StopSign(ss)) => Some(ss),
            _ => None,
        }
    }
}

#[derive(Default)]
pub struct Invariants {
    logs: BTreeMap<u32, ConfigLog>,
    /// Where each command took effect: (configuration, log index).
    executed: HashMap<RequestId, (u32, u64)>,
    /// Per sealed configuration, the hash of the state at its StopSign.
    final_hash: BTreeMap<u32, u64>,
    /// Per configuration, the hash of the state it starts from.
    start_hash: BTreeMap<u32, u64>,
    /// States installed from a peer's snapshot (figures).
    pub snapshot_installs: u64,
    /// Members that learnt of their configuration's end from a peer (figures).
    pub catch_ups: u64,
}

impl Invariants {
    pub fn decided(
        &mut self,
        config: u32,
        node: NodeId,
        idx: u64,
        entry: &Entry<KvCommand>,
    ) -> Result<(), String> {
        self.logs
            .entry(config)
            .or_default()
            .decided(config, node, idx, entry)
    }

    /// `node` applied `id` with effect at `(config, idx)`: every node must agree on where,
    /// and no command may take effect in two places (in one log or across configurations).
    pub fn executed(
        &mut self,
        node: NodeId,
        id: RequestId,
        config: u32,
        idx: u64,
    ) -> Result<(), String> {
        match self.executed.insert(id, (config, idx)) {
            Some(prev) if prev != (config, idx) => Err(format!(
                "{node}: command {id:?} took effect at c{config}[{idx}] and before at c{}[{}]",
                prev.0, prev.1
            )),
            _ => Ok(()),
        }
    }

    /// A configuration change seen by `node`.
    pub fn config_event(&mut self, node: NodeId, ev: &ConfigEvent) -> Result<(), String> {
        match ev {
            ConfigEvent::Sealed {
                config,
                stopsign,
                hash,
                own,
            } => {
                self.snapshot_installs += u64::from(!own);
                let chosen = self.logs.get(config).and_then(ConfigLog::chosen_stopsign);
                if chosen != Some(stopsign) {
                    return Err(format!(
                        "{node}: sealed c{config} with {stopsign:?}, but the chosen StopSign is {chosen:?}"
                    ));
                }
                let first = *self.final_hash.entry(*config).or_insert(*hash);
                if first != *hash {
                    return Err(format!(
                        "{node}: state at c{config}'s StopSign differs: {hash:x} vs {first:x}"
                    ));
                }
                self.start_hash.insert(stopsign.next_config, *hash);
            }
            ConfigEvent::Started { config, hash, .. }
                if self.start_hash.get(config) != Some(hash) =>
            {
                return Err(format!(
                    "{node}: c{config} started from {hash:x}, not from the previous StopSign's state {:?}",
                    self.start_hash.get(config)
                ));
            }
            ConfigEvent::CatchingUp { .. } => self.catch_ups += 1,
            _ => {}
        }
        Ok(())
    }

    /// Where the StopSign of `config` was chosen, if it was.
    pub fn stopsign_idx(&self, config: u32) -> Option<u64> {
        self.logs.get(&config).and_then(|l| l.stopsign)
    }

    /// Length of the longest decided prefix seen in `config`.
    pub fn chosen_len(&self, config: u32) -> u64 {
        self.logs.get(&config).map_or(0, |l| l.chosen.len() as u64)
    }

    /// Entries chosen over all configurations.
    pub fn chosen_total(&self) -> u64 {
        self.logs.values().map(|l| l.chosen.len() as u64).sum()
    }
}
