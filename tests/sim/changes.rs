//! The coordinator's membership changes (reconfiguration and slot-move schedules): per group,
//! when its plan says so, pick the next member set, publish it, start the new nodes (joining)
//! and ask the current leader to seal the configuration with a StopSign naming it; retry
//! until the StopSign is chosen. Also the single StopSign of the classic sealing schedules.

use kv_components::sequence_paxos::StopSign;
use kv_ports::ids::NodeId;
use rand::seq::SliceRandom;
use rand::Rng;

use super::node::Node;
use super::Sim;

/// A membership change the driver asked for and waits to see chosen.
#[derive(Clone, Debug)]
pub struct Change {
    from: u32,
    ss: StopSign,
    tried_at: Option<u64>,
}

impl Sim {
    /// In schedules that seal the group, propose the StopSign (again, until it is chosen): it
    /// names configuration 1 with the same members. Reconfiguration and slot-move schedules
    /// drive membership changes (and slot moves) instead.
    pub(super) fn maybe_reconfigure(&mut self) {
        if self.redirects() {
            for g in 0..self.groups.len() {
                self.drive_changes(g);
            }
            return self.drive_moves();
        }
        let Some(after) = self.params.stopsign_after else {
            return;
        };
        let due = self.stopsign_tried.is_none_or(|t| self.now >= t + 20);
        if self.history.len() < after || self.groups[0].inv.stopsign_idx(0).is_some() || !due {
            return;
        }
        let up = self.up();
        if up.is_empty() {
            return;
        }
        let target = up[self.rng.gen_range(0..up.len())];
        let ss = StopSign {
            next_config: 1,
            members: self.universe.clone(),
            metadata: vec![7],
        };
        if self.groups[0].published.len() == 1 {
            self.groups[0].published.push((1, ss.members.clone()));
        }
        let node = self.node_mut(target).expect("alive");
        if node.group.change_members(0, ss).is_ok() {
            self.stopsign_tried = Some(self.now);
            self.trace(|| format!("stopsign proposed at {target}"));
        }
    }

    fn drive_changes(&mut self, g: usize) {
        if let Some(ch) = &self.groups[g].change {
            if self.groups[g].inv.stopsign_idx(ch.from).is_some() {
                self.trace(|| format!("g{g} c{} sealed: c{} chosen", ch.from, ch.ss.next_config));
                self.groups[g].change = None;
                self.groups[g].changes_done += 1;
            } else if ch.tried_at.is_none_or(|t| self.now >= t + 20) {
                self.propose_change(g);
            }
            return;
        }
        let Some(&after) = self.groups[g].plan.get(self.groups[g].changes_done) else {
            return;
        };
        let (cur, members) = self.newest(g).clone();
        if self.history.len() < after || self.active_in(g, cur).is_empty() {
            return;
        }
        let next = self.next_members(g, &members);
        let id = cur + 1;
        let mut sources = members.clone();
        sources.extend(next.iter().copied().filter(|m| !members.contains(m)));
        let mut joiners: Vec<NodeId> = next
            .iter()
            .copied()
            .filter(|m| !members.contains(m))
            .collect();
        joiners.sort_unstable();
        for m in joiners {
            assert_eq!(m.0 as usize, self.nodes.len() + 1, "node ids are dense");
            let sources: Vec<NodeId> = sources.iter().copied().filter(|s| *s != m).collect();
            let mut node =
                Node::joining(m, cur, id, sources, self.cfg.bugs(), self.cfg.check_ballots);
            node.stale_reads = self.cfg.stale_reads;
            node.gi = g;
            self.nodes.push(Some(node));
            self.params.start_at.push(self.now);
            self.params.tick_skew.push((0.0, 0.0));
            self.universe.push(m);
        }
        self.trace(|| format!("g{g} change c{cur} {members:?} -> c{id} {next:?}"));
        self.groups[g].published.push((id, next.clone()));
        self.groups[g].change = Some(Change {
            from: cur,
            ss: StopSign {
                next_config: id,
                members: next,
                metadata: vec![],
            },
            tried_at: None,
        });
        self.propose_change(g);
    }

    /// The next member set: crashed members are replaced by new nodes first; then replace one
    /// (three members) or two (five), add one, or remove one, never going below
    /// `2 * crash budget + 1` members (so every configuration keeps a live majority) or above
    /// the initial size plus one.
    fn next_members(&mut self, g: usize, members: &[NodeId]) -> Vec<NodeId> {
        let budget = self.params.crashes;
        let min = (2 * budget + 1).max(3);
        let max = self.params.nodes + 1;
        let mut fresh = self.nodes.len() as u64;
        let mut new_id = || {
            fresh += 1;
            NodeId(fresh)
        };
        let mut next: Vec<NodeId> = Vec::new();
        for &m in members {
            next.push(if self.node(m).is_some() { m } else { new_id() });
        }
        let replaced = next.iter().filter(|m| !members.contains(m)).count();
        let recfg = &mut self.groups[g].recfg;
        let kind = recfg.gen_range(0..100);
        if kind < 15 && next.len() < max {
            next.push(new_id());
        } else if kind < 30 && next.len() > min {
            let i = recfg.gen_range(0..next.len());
            next.remove(i);
        } else {
            // Replace one member of three, two of five (crashed ones replaced above count).
            let k: usize = if self.params.nodes >= 5 { 2 } else { 1 };
            let mut old: Vec<usize> = (0..next.len())
                .filter(|&i| members.contains(&next[i]))
                .collect();
            old.shuffle(recfg);
            for &i in old.iter().take(k.saturating_sub(replaced)) {
                next[i] = new_id();
            }
        }
        // Number the new nodes densely (a removal may have dropped one just drawn).
        let mut fresh = self.nodes.len() as u64;
        for m in next.iter_mut().filter(|m| !members.contains(m)) {
            fresh += 1;
            *m = NodeId(fresh);
        }
        next
    }

    /// Ask the leader of the configuration being sealed (or any of its active members, which
    /// forwards it) to propose the StopSign.
    fn propose_change(&mut self, g: usize) {
        let Some(ch) = self.groups[g].change.clone() else {
            return;
        };
        let active = self.active_in(g, ch.from);
        if active.is_empty() {
            return;
        }
        let target = match self.leader_among(&active) {
            Some(l) => l,
            None => active[self.groups[g].recfg.gen_range(0..active.len())],
        };
        let node = self.node_mut(target).expect("active");
        let ok = node.group.change_members(ch.from, ch.ss.clone()).is_ok();
        if ok {
            if let Some(c) = self.groups[g].change.as_mut() {
                c.tried_at = Some(self.now);
            }
            self.trace(|| {
                format!(
                    "g{g} StopSign c{} -> c{} proposed at {target}",
                    ch.from, ch.ss.next_config
                )
            });
        }
    }

    /// The first of `nodes` that is an accepting leader.
    pub(super) fn leader_among(&self, nodes: &[NodeId]) -> Option<NodeId> {
        nodes.iter().copied().find(|&p| {
            self.node(p)
                .and_then(|n| n.group.member())
                .is_some_and(|m| m.sp().is_accepting_leader())
        })
    }
}
