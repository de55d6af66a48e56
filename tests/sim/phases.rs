//! The end of a run: the final heal, the last operations, the read-back of every key, and the
//! liveness checks (every change and move done, every node settled in its group's newest
//! configuration, serving the slots of the last map).

use super::moves::MoveDriver;
use super::node::Node;
use super::{faults, GroupSim, Sim};

impl Sim {
    /// Heal every link and stop losing messages; give each client one more operation.
    fn heal_for_good(&mut self) {
        faults::heal_all(self);
        self.net.params.drop_p = 0.0;
        self.net.params.dup_p = 0.0;
        if self.params.stopsign_after.is_some() {
            return;
        }
        for c in self.clients.iter_mut() {
            c.remaining += 1;
        }
    }

    /// Changes, moves or a StopSign still to come.
    fn pending(&self) -> bool {
        let sealing = self.params.stopsign_after.is_some();
        sealing && self.groups[0].inv.stopsign_idx(0).is_none()
            || self.groups.iter().any(GroupSim::pending)
            || self.moves.as_ref().is_some_and(MoveDriver::pending)
    }

    pub(super) fn run_phases(&mut self) -> Result<(), String> {
        let limit = self.cfg.ops as u64 * 300 + 2_000;
        while !self.all_done() && self.now < limit {
            self.step(true)?;
        }
        if !self.all_done() {
            return Err("clients still busy at the end of the faulty phase".into());
        }
        let final_from = self.history.len();
        self.heal_for_good();
        let limit = self.now + 3_000;
        while (!self.all_done() || self.pending()) && self.now < limit {
            self.step(false)?;
        }
        if self.cfg.harsh {
            return Ok(());
        }
        if self.cfg.moves {
            // Read every key back (after the last move): no acknowledged write is lost.
            self.read_back();
            let limit = self.now + 1_000;
            while !self.all_done() && self.now < limit {
                self.step(false)?;
            }
        }
        let lost = self.history[final_from..]
            .iter()
            .filter(|r| r.ok != Some(true))
            .count();
        if lost > 0 {
            return Err(format!(
                "liveness: {lost} operation(s) after the final heal did not complete\n{}",
                self.describe()
            ));
        }
        if self.pending() {
            return Err(format!(
                "liveness: a StopSign or slot move was never completed after the heal\n{}",
                self.describe()
            ));
        }
        // Members of the newest configuration all run it; everyone else retires.
        let limit = self.now + 2_000;
        while !self.settled() && self.now < limit {
            self.step(false)?;
        }
        for _ in 0..100 {
            self.step(false)?;
        }
        for n in self.nodes.iter().flatten() {
            self.check_settled(n)?;
        }
        Ok(())
    }

    /// One read of every key, spread over the clients.
    fn read_back(&mut self) {
        let clients = self.clients.len();
        for k in 0..self.params.keys {
            let c = &mut self.clients[k % clients];
            c.forced.push(k);
            c.remaining += 1;
        }
    }

    /// After the heal: `n` runs its group's newest configuration and has decided its whole
    /// chosen log (and, with slot moves, serves exactly the slots the last map gives its group).
    fn check_settled(&self, n: &Node) -> Result<(), String> {
        let (config, members) = self.newest(n.gi).clone();
        let chosen = self.groups[n.gi].inv.chosen_len(config);
        if !members.contains(&n.id) {
            return Err(format!(
                "liveness: {} is in no configuration but did not retire\n{}",
                n.id,
                self.describe()
            ));
        }
        let Some(m) = n
            .group
            .member()
            .filter(|_| n.group.config() == Some(config))
        else {
            return Err(format!(
                "liveness: {} does not run c{config} after heal\n{}",
                n.id,
                self.describe()
            ));
        };
        if m.sp().decided_idx() != chosen {
            let (id, ld) = (n.id, m.sp().decided_idx());
            return Err(format!(
                "liveness: {id} decided {ld} of {chosen} entries of c{config} after heal\n{}",
                self.describe()
            ));
        }
        if let Some(d) = &self.moves {
            let owned = m.replica().ownership();
            for (&s, &g) in d.maps.last().expect("a map") {
                if owned.owns(s) != (g == n.gi) {
                    return Err(format!(
                        "{}: g{} serves {s}: {}, but the last map gives it to g{g}",
                        n.id,
                        n.gi,
                        owned.owns(s)
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every live node runs its group's newest configuration if it is a member, else has
    /// retired.
    pub(super) fn settled(&self) -> bool {
        self.nodes.iter().flatten().all(|n| {
            let (config, members) = self.newest(n.gi);
            members.contains(&n.id) && n.group.config() == Some(*config)
        })
    }
}
