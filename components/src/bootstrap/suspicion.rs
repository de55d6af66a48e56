//! Failure suspicions reported by the nodes' failure detectors, aged in ticks.
//!
//! Every node's EPFD watches every other node of the map and reports each change of mind on
//! its session. One node's word is not enough to declare another failed: a node cut off from
//! the rest (but not from the coordinator) suspects everybody, and acting on it would remove
//! healthy members from every group. So a node counts as failing only while a **majority of
//! the voters** suspect it, voters being the nodes of the map (other than the suspect) whose
//! session to the coordinator is up now. A crashed reporter's session drops, so its stale
//! suspicions stop counting at once; a node cut off from everyone is outvoted by the rest.
//!
//! A failing node is declared failed once it has been failing for `grace` ticks in a row; a
//! tick without a majority starts the count over. The grace period absorbs the EPFD's early
//! mistakes (it suspects too eagerly until its timeout has grown), because a failure costs a
//! reconfiguration.
//!
//! Sizes: with δ = 2 or 3 and the usual handful of nodes, one crash is seen by every other
//! node, so the majority is there after one heartbeat timeout. Two voters need both; a
//! two-node cluster has one voter, whose word then suffices (nobody else could confirm it).

use std::collections::{BTreeMap, BTreeSet};

use kv_ports::ids::NodeId;

use crate::quorum::majority;

/// One suspected node: who suspects it and for how long a majority has.
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
    /// No suspicions yet; a node is failed after `grace` ticks of majority suspicion.
    pub fn new(grace: u32) -> Self {
        Suspicions {
            grace,
            open: BTreeMap::new(),
        }
    }

    /// `reporter` suspects `node`.
    pub fn suspect(&mut self, reporter: NodeId, node: NodeId) {
        if reporter != node {
            self.open
                .entry(node)
                .or_default()
                .reporters
                .insert(reporter);
        }
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

    /// One unit of time passes with `voters` able to vote; returns the nodes whose grace
    /// period ran out (and forgets them).
    pub fn tick(&mut self, voters: &BTreeSet<NodeId>) -> Vec<NodeId> {
        for (node, s) in self.open.iter_mut() {
            if has_majority(*node, &s.reporters, voters) {
                s.ticks += 1;
            } else {
                s.ticks = 0;
            }
        }
        let failed: Vec<NodeId> = self
            .open
            .iter()
            .filter(|(_, s)| s.ticks > 0 && s.ticks >= self.grace)
            .map(|(n, _)| *n)
            .collect();
        for n in &failed {
            self.forget(*n);
        }
        failed
    }

    /// The nodes some node suspects now, for `status`.
    pub fn suspected(&self) -> Vec<NodeId> {
        self.open.keys().copied().collect()
    }

    /// The nodes a majority of `voters` suspects now (failing, perhaps not yet failed).
    pub fn failing(&self, voters: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
        self.open
            .iter()
            .filter(|(n, s)| has_majority(**n, &s.reporters, voters))
            .map(|(n, _)| *n)
            .collect()
    }
}

/// Whether a majority of the voters other than `node` are among `reporters`.
fn has_majority(node: NodeId, reporters: &BTreeSet<NodeId>, voters: &BTreeSet<NodeId>) -> bool {
    let electorate = voters.iter().filter(|v| **v != node).count();
    let votes = reporters
        .iter()
        .filter(|r| **r != node && voters.contains(r))
        .count();
    electorate > 0 && votes >= majority(electorate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn a_suspicion_matures_after_the_grace_period() {
        let voters = set(&[1, 2, 3]);
        let mut s = Suspicions::new(3);
        s.suspect(NodeId(1), NodeId(9));
        s.suspect(NodeId(2), NodeId(9));
        assert!(s.tick(&voters).is_empty());
        assert!(s.tick(&voters).is_empty());
        assert_eq!(s.tick(&voters), vec![NodeId(9)]);
        assert!(s.suspected().is_empty());
    }

    #[test]
    fn one_reporter_of_many_is_not_enough() {
        // Node 1 is cut off from the others and suspects them all; they do not suspect
        // each other, so nobody is declared failed.
        let voters = set(&[1, 2, 3, 4]);
        let mut s = Suspicions::new(1);
        for n in 2..=4 {
            s.suspect(NodeId(1), NodeId(n));
        }
        assert!((0..5).all(|_| s.tick(&voters).is_empty()));
        assert_eq!(s.suspected(), vec![NodeId(2), NodeId(3), NodeId(4)]);
        // ... while the others outvote it.
        for n in 2..=4 {
            s.suspect(NodeId(n), NodeId(1));
        }
        assert_eq!(s.tick(&voters), vec![NodeId(1)]);
    }

    #[test]
    fn majorities_for_small_clusters() {
        // δ = 2, four nodes, node 4 crashed (its session is down): 2 of the 3 others suffice.
        let voters = set(&[1, 2, 3]);
        let mut s = Suspicions::new(1);
        s.suspect(NodeId(1), NodeId(4));
        assert!(s.tick(&voters).is_empty());
        s.suspect(NodeId(2), NodeId(4));
        assert_eq!(s.tick(&voters), vec![NodeId(4)]);
        // Two nodes: the only other one decides.
        let mut s = Suspicions::new(1);
        s.suspect(NodeId(1), NodeId(2));
        assert_eq!(s.tick(&set(&[1])), vec![NodeId(2)]);
        // No voter at all: nobody can be declared failed.
        let mut s = Suspicions::new(1);
        s.suspect(NodeId(1), NodeId(2));
        assert!(s.tick(&set(&[])).is_empty());
    }

    #[test]
    fn losing_the_majority_starts_the_count_over() {
        let mut voters = set(&[1, 2, 3]);
        let mut s = Suspicions::new(2);
        s.suspect(NodeId(1), NodeId(9));
        s.suspect(NodeId(2), NodeId(9));
        assert!(s.tick(&voters).is_empty());
        voters.remove(&NodeId(2)); // its session dropped: 1 of the 2 voters left is too few
        assert!(s.tick(&voters).is_empty());
        voters.insert(NodeId(2)); // back: the count starts over
        assert!(s.tick(&voters).is_empty(), "counted from one again");
        assert_eq!(s.tick(&voters), vec![NodeId(9)]);
    }

    #[test]
    fn a_restore_by_every_reporter_cancels() {
        let voters = set(&[1, 2]);
        let mut s = Suspicions::new(2);
        s.suspect(NodeId(1), NodeId(9));
        s.suspect(NodeId(2), NodeId(9));
        s.restore(NodeId(1), NodeId(9));
        assert_eq!(s.failing(&voters), set(&[]));
        assert!(s.tick(&voters).is_empty());
        s.restore(NodeId(2), NodeId(9));
        assert!(s.tick(&voters).is_empty());
        assert!(s.tick(&voters).is_empty());
        assert!(s.suspected().is_empty());
    }

    #[test]
    fn a_gone_reporter_no_longer_counts() {
        let mut s = Suspicions::new(1);
        s.suspect(NodeId(1), NodeId(9));
        s.forget(NodeId(1));
        assert!(s.tick(&set(&[1])).is_empty());
        s.suspect(NodeId(9), NodeId(9));
        assert!(s.suspected().is_empty(), "nobody suspects itself");
    }
}
