//! Fault injection: cut a link, isolate a node, split the group, heal, crash (crash-stop).
//! Faults pick among every node the schedule ever started (old, current and joining members,
//! of every group); each group has the schedule's crash budget.

use kv_ports::ids::NodeId;
use rand::seq::SliceRandom;
use rand::Rng;

use super::Sim;

/// How many faults of each kind a schedule saw.
#[derive(Clone, Debug, Default)]
pub struct FaultStats {
    pub cuts: u64,
    pub isolations: u64,
    pub splits: u64,
    pub heals: u64,
    pub crashes: u64,
}

fn cut(sim: &mut Sim, a: NodeId, b: NodeId) {
    if a != b && sim.net.cut(a, b) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(n) = sim.node_mut(x) {
                n.group.connection_lost(y);
            }
        }
    }
}

fn restore(sim: &mut Sim, a: NodeId, b: NodeId) {
    if sim.net.restore(a, b) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(n) = sim.node_mut(x) {
                n.group.reconnected(y);
            }
        }
    }
}

pub fn heal_all(sim: &mut Sim) {
    for (a, b) in sim.net.cut_links() {
        restore(sim, a, b);
    }
}

fn random_member(sim: &mut Sim) -> NodeId {
    let i = sim.rng.gen_range(0..sim.universe.len());
    sim.universe[i]
}

/// The schedule's early crash (see `Params::early_crash`), within its crash budget; the
/// victim is drawn from the timing stream.
pub fn early_crash(sim: &mut Sim) {
    let alive = sim.crashable();
    if alive.is_empty() {
        return;
    }
    let victim = alive[sim.timing.gen_range(0..alive.len())];
    sim.trace(|| format!("early crash {victim}"));
    sim.crash(victim);
}

/// With the schedule's fault probability, inject one fault.
pub fn maybe_inject(sim: &mut Sim) {
    if !sim.rng.gen_bool(sim.params.fault_p) {
        return;
    }
    let members = sim.universe.clone();
    match sim.rng.gen_range(0..100) {
        0..30 => {
            sim.faults.heals += 1;
            sim.trace(|| "heal all".into());
            heal_all(sim);
        }
        30..50 => {
            let (a, b) = (random_member(sim), random_member(sim));
            sim.faults.cuts += 1;
            sim.trace(|| format!("cut {a}-{b}"));
            cut(sim, a, b);
        }
        50..65 => {
            let a = random_member(sim);
            sim.faults.isolations += 1;
            sim.trace(|| format!("isolate {a}"));
            for &b in &members {
                cut(sim, a, b);
            }
        }
        65..80 => {
            let mut shuffled = members.clone();
            shuffled.shuffle(&mut sim.rng);
            let k = sim.rng.gen_range(1..=(members.len() - 1) / 2);
            let (minority, majority) = shuffled.split_at(k);
            sim.faults.splits += 1;
            sim.trace(|| format!("split {minority:?} | {majority:?}"));
            for &a in minority {
                for &b in majority {
                    cut(sim, a, b);
                }
            }
        }
        80..90 => {
            let links = sim.net.cut_links();
            if !links.is_empty() {
                let (a, b) = links[sim.rng.gen_range(0..links.len())];
                sim.trace(|| format!("restore {a}-{b}"));
                restore(sim, a, b);
            }
        }
        _ => {
            let alive = sim.crashable();
            if !alive.is_empty() {
                let victim = alive[sim.rng.gen_range(0..alive.len())];
                sim.trace(|| format!("crash {victim}"));
                sim.crash(victim);
            }
        }
    }
}
