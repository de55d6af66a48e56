//! Failure suspicions reported by the nodes' failure detectors, aged in ticks.
//!
//! A node is declared failed once some node has suspected it, without every reporter taking
//! the suspicion back, for `grace` ticks in a row. The grace period absorbs the EPFD's early
//! mistakes (it suspects too eagerly until its timeout has grown), because a failure costs a
//! reconfiguration.

use std::collections::{BTreeMap, BTreeSet};

use kv_ports::ids::NodeId;

/// One suspected node: who suspects it and for how long.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Suspicion {
    reporters: BTreeSet<NodeId>,
    ticks: u32,
}

/// The suspicions the coordinator has heard of.
#[derive(Clone, Debug, Default)]
pub struct Suspicions {
    grace: u32,
    open: BTreeMap<NodeId, Suspicion>,
}

impl Suspicions {
    /// No suspicions yet; a node is failed after `grace` ticks of suspicion.
    pub fn new(grace: u32) -> Self {
        Suspicions {
            grace,
            open: BTreeMap::new(),
        }
    }

    /// `reporter` suspects `node`.
    pub fn suspect(&mut self, reporter: NodeId, node: NodeId) {
        self.open
            .entry(node)
            .or_default()
            .reporters
            .insert(reporter);
    }

    /// `reporter` no longer suspects `node`; the suspicion ends when no reporter is left.
    pub fn restore(&mut self, reporter: NodeId, node: NodeId) {
        if let Some(s) = self.open.get_mut(&node) {
            s.reporters.remove(&reporter);
            if s.reporters.is_empty() {
                self.open.remove(&node);
            }
        }
    }

    /// Forget everything about `node`: it left, failed, or its reports no longer count.
    pub fn forget(&mut self, node: NodeId) {
        self.open.remove(&node);
        for s in self.open.values_mut() {
            s.reporters.remove(&node);
        }
        self.open.retain(|_, s| !s.reporters.is_empty());
    }

    /// One unit of time passes; returns the nodes whose grace period ran out (and forgets them).
    pub fn tick(&mut self) -> Vec<NodeId> {
        for s in self.open.values_mut() {
            s.ticks += 1;
        }
        let failed: Vec<NodeId> = self
            .open
            .iter()
            .filter(|(_, s)| s.ticks >= self.grace)
            .map(|(n, _)| *n)
            .collect();
        for n in &failed {
            self.forget(*n);
        }
        failed
    }

    /// The nodes suspected now, for `status`.
    pub fn suspected(&self) -> Vec<NodeId> {
        self.open.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspicion_matures_after_the_grace_period() {
        let mut s = Suspicions::new(3);
        s.suspect(NodeId(1), NodeId(9));
        assert!(s.tick().is_empty());
        assert!(s.tick().is_empty());
        assert_eq!(s.tick(), vec![NodeId(9)]);
        assert!(s.suspected().is_empty());
    }

    #[test]
    fn a_restore_by_every_reporter_cancels() {
        let mut s = Suspicions::new(2);
        s.suspect(NodeId(1), NodeId(9));
        s.suspect(NodeId(2), NodeId(9));
        s.restore(NodeId(1), NodeId(9));
        assert!(s.tick().is_empty());
        s.restore(NodeId(2), NodeId(9));
        assert!(s.tick().is_empty());
        assert!(s.tick().is_empty());
    }

    #[test]
    fn a_gone_reporter_no_longer_counts() {
        let mut s = Suspicions::new(1);
        s.suspect(NodeId(1), NodeId(9));
        s.forget(NodeId(1));
        assert!(s.tick().is_empty());
    }
}
