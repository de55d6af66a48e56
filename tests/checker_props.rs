//! Property tests of the checker: histories recorded from a real (simulated) sequential
//! execution with random overlap are linearizable, and each kind of corruption is caught with
//! a counterexample that holds up.

use std::collections::HashMap;

use kv::checker::{check_history, Counterexample, History, OpKind, Options, Outcome, Verdict};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Shape of a generated history.
#[derive(Debug, Clone, Copy)]
struct Shape {
    seed: u64,
    ops: usize,
    keys: usize,
    clients: usize,
    /// Longest operation latency; larger means more overlap.
    latency: u64,
    /// Percentage of operations with unknown outcome.
    unknown: u32,
    /// Percentage of failed operations.
    failed: u32,
}

/// An executed operation, with its true result and its linearization point.
#[derive(Debug, Clone)]
struct Exec {
    client: usize,
    key: String,
    call: u64,
    lin: u64,
    ret: u64,
    action: Action,
    outcome: Outcome,
    /// Whether an operation with unknown outcome took effect.
    applied: bool,
    output: Value,
}

#[derive(Debug, Clone)]
enum Action {
    Get,
    Put(Value),
    Cas(Value, Value),
    Delete,
}

/// A simulated execution: clients run one operation at a time; each takes effect at a
/// random point inside its interval on a sequential map.
struct Sim {
    rng: SmallRng,
    shape: Shape,
    free: Vec<u64>,
    ops: Vec<Exec>,
}

impl Sim {
    fn new(shape: Shape) -> Self {
        Sim {
            rng: SmallRng::seed_from_u64(shape.seed),
            shape,
            free: vec![0; shape.clients],
            ops: Vec::new(),
        }
    }

    fn value(&mut self) -> Value {
        json!(self.rng.gen_range(0..4))
    }

    /// Runs `n` random operations from the clients.
    fn random_ops(&mut self, n: usize) {
        for _ in 0..n {
            let client = self.rng.gen_range(0..self.shape.clients);
            let call = self.free[client] + self.rng.gen_range(0..5);
            let latency = self.rng.gen_range(1..=self.shape.latency);
            let action = match self.rng.gen_range(0..10) {
                0..=3 => Action::Get,
                4..=6 => Action::Put(self.value()),
                7..=8 => Action::Cas(self.value(), self.value()),
                _ => Action::Delete,
            };
            let roll = self.rng.gen_range(0..100);
            let outcome = if roll < self.shape.unknown {
                Outcome::Unknown
            } else if roll < self.shape.unknown + self.shape.failed {
                Outcome::Failed
            } else {
                Outcome::Ok
            };
            let applied = match outcome {
                Outcome::Ok => true,
                Outcome::Failed => false,
                Outcome::Unknown => self.rng.gen_bool(0.5),
            };
            let key = format!("k{}", self.rng.gen_range(0..self.shape.keys));
            let lin = call + self.rng.gen_range(0..=latency);
            self.push(
                client,
                key,
                (call, lin, call + latency),
                action,
                outcome,
                applied,
            );
        }
    }

    fn push(
        &mut self,
        client: usize,
        key: String,
        (call, lin, ret): (u64, u64, u64),
        action: Action,
        outcome: Outcome,
        applied: bool,
    ) {
        self.free[client] = self.free[client].max(ret + 1);
        self.ops.push(Exec {
            client,
            key,
            call,
            lin,
            ret,
            action,
            outcome,
            applied,
            output: Value::Null,
        });
    }

    /// Lets every client finish; returns a time after everything completed.
    fn quiesce(&mut self) -> u64 {
        let end = self.ops.iter().map(|op| op.ret).max().unwrap_or(0) + 10;
        self.free.iter_mut().for_each(|f| *f = end);
        end
    }

    /// Computes every output by applying the operations in linearization order.
    fn execute(&mut self) {
        let mut order: Vec<usize> = (0..self.ops.len()).collect();
        order.sort_by_key(|&i| (self.ops[i].lin, i));
        let mut map: HashMap<String, Value> = HashMap::new();
        for i in order {
            let op = &mut self.ops[i];
            if op.applied {
                op.output = apply(&mut map, &op.key, &op.action);
            }
        }
    }

    fn records(&self) -> Vec<Value> {
        self.ops.iter().map(record).collect()
    }
}

fn apply(map: &mut HashMap<String, Value>, key: &str, action: &Action) -> Value {
    let current = map.get(key).cloned();
    match action {
        Action::Get => current.unwrap_or(Value::Null),
        Action::Put(v) => {
            map.insert(key.to_owned(), v.clone());
            Value::Null
        }
        Action::Cas(expected, v) => {
            let swap = current.as_ref() == Some(expected);
            if swap {
                map.insert(key.to_owned(), v.clone());
            }
            json!(swap)
        }
        Action::Delete => json!(map.remove(key).is_some()),
    }
}

fn record(op: &Exec) -> Value {
    let mut rec = json!({"client": op.client, "key": op.key, "call": op.call});
    match &op.action {
        Action::Get => rec["op"] = json!("get"),
        Action::Put(v) => {
            rec["op"] = json!("put");
            rec["value"] = v.clone();
        }
        Action::Cas(e, v) => {
            rec["op"] = json!("cas");
            rec["expected"] = e.clone();
            rec["value"] = v.clone();
        }
        Action::Delete => rec["op"] = json!("delete"),
    }
    match op.outcome {
        Outcome::Ok => {
            rec["ok"] = json!(true);
            rec["return"] = json!(op.ret);
            if !matches!(op.action, Action::Put(_)) {
                rec["output"] = op.output.clone();
            }
        }
        Outcome::Failed => {
            rec["ok"] = json!(false);
            rec["return"] = json!(op.ret);
        }
        Outcome::Unknown => rec["ok"] = Value::Null,
    }
    rec
}

fn check(records: &[Value]) -> (History, Verdict) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    let history = History::parse_str(&text).expect("generated histories parse");
    let verdict = check_history(&history, Options::default());
    (history, verdict)
}

/// The kinds of corruption, each injected in a quiet stretch of an otherwise real execution
/// with values written nowhere else, so that no interleaving can explain them.
#[derive(Debug, Clone, Copy)]
enum Corruption {
    StaleRead,
    LostWrite,
    CasShouldHaveFailed,
    NeverWritten,
    FlipBack,
}

const CORRUPTIONS: [Corruption; 5] = [
    Corruption::StaleRead,
    Corruption::LostWrite,
    Corruption::CasShouldHaveFailed,
    Corruption::NeverWritten,
    Corruption::FlipBack,
];

/// Runs a scripted, sequential segment on `key` at time `t` (after the history so far) and
/// returns the index of the operation whose recorded result is then falsified.
fn segment(sim: &mut Sim, kind: Corruption, key: &str, t: u64) -> usize {
    let fresh = |n: u32| json!(format!("fresh-{n}"));
    let (a, b, c) = (fresh(1), fresh(2), fresh(3));
    let script: Vec<(Action, u64, u64, u64)> = match kind {
        Corruption::StaleRead => vec![
            (Action::Put(a.clone()), 0, 5, 10),
            (Action::Put(b.clone()), 20, 25, 30),
            (Action::Get, 40, 45, 50),
        ],
        Corruption::LostWrite => vec![
            (Action::Put(a.clone()), 0, 5, 10),
            (Action::Cas(a.clone(), b.clone()), 20, 25, 30),
            (Action::Get, 40, 45, 50),
        ],
        Corruption::CasShouldHaveFailed => vec![
            (Action::Put(a.clone()), 0, 5, 10),
            (Action::Put(b.clone()), 20, 25, 30),
            (Action::Cas(a.clone(), c.clone()), 40, 45, 50),
        ],
        Corruption::NeverWritten => vec![(Action::Get, 0, 5, 10)],
        Corruption::FlipBack => vec![
            (Action::Put(a.clone()), 0, 5, 10),
            (Action::Put(b.clone()), 20, 22, 100),
            (Action::Get, 30, 35, 40),
            (Action::Get, 50, 55, 60),
        ],
    };
    for (n, (action, call, lin, ret)) in script.into_iter().enumerate() {
        let client = n % sim.shape.clients;
        let times = (t + call, t + lin, t + ret);
        sim.push(client, key.to_owned(), times, action, Outcome::Ok, true);
    }
    sim.ops.len() - 1
}

/// The falsified result for the last operation of the segment.
fn falsify(op: &mut Exec, kind: Corruption) {
    op.output = match kind {
        Corruption::StaleRead | Corruption::LostWrite | Corruption::FlipBack => json!("fresh-1"),
        Corruption::CasShouldHaveFailed => json!(true),
        Corruption::NeverWritten => json!("never-written"),
    };
}

/// Checks that a counterexample is genuine evidence: the prefix respects real time and the
/// model, and the blocker cannot follow it.
fn assert_valid(history: &History, cex: &Counterexample) {
    let ops = history.ops();
    let mut state: Option<Value> = None;
    for (n, &id) in cex.prefix.iter().enumerate() {
        let op = &ops[id];
        assert_eq!(op.key, cex.key);
        for &later in &cex.prefix[n + 1..] {
            assert!(
                ops[later].ret.is_none_or(|r| r >= op.call),
                "real-time order broken"
            );
        }
        state = step(history, &op.kind, op.outcome, state).expect("prefix replays");
    }
    assert_eq!(state.as_ref(), cex.state.map(|v| history.value(v)));
    let blocker = &ops[cex.blocker];
    assert_eq!(blocker.key, cex.key);
    assert_eq!(blocker.outcome, Outcome::Ok);
    assert!(!cex.prefix.contains(&cex.blocker));
    assert!(step(history, &blocker.kind, blocker.outcome, state).is_none());
}

/// A reference model, independent of the checker's: `None` if the result is impossible.
fn step(
    history: &History,
    kind: &OpKind,
    outcome: Outcome,
    state: Option<Value>,
) -> Option<Option<Value>> {
    let val = |id| history.value(id).clone();
    let known = outcome == Outcome::Ok;
    match *kind {
        OpKind::Get { output } => (!known || state == output.map(val)).then_some(state),
        OpKind::Put { value } => Some(Some(val(value))),
        OpKind::Cas {
            expected,
            value,
            swapped,
        } => {
            let matches = state == expected.map(val);
            match swapped {
                Some(s) if s != matches => None,
                _ if matches => Some(Some(val(value))),
                _ => Some(state),
            }
        }
        OpKind::Delete { existed } => match existed {
            Some(e) if e != state.is_some() => None,
            _ => Some(None),
        },
    }
}

/// A random single-key history of a few operations with arbitrary (often impossible) results.
fn random_small_history(seed: u64, n: usize) -> Vec<Value> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let small = |rng: &mut SmallRng| json!(rng.gen_range(0..2));
    (0..n)
        .map(|i| {
            let call = rng.gen_range(0..30u64);
            let mut rec = json!({"client": i, "key": "x", "call": call,
                                 "return": call + rng.gen_range(0..15)});
            match rng.gen_range(0..4) {
                0 => {
                    rec["op"] = json!("get");
                    rec["output"] = if rng.gen_bool(0.3) {
                        Value::Null
                    } else {
                        small(&mut rng)
                    };
                }
                1 => {
                    rec["op"] = json!("put");
                    rec["value"] = small(&mut rng);
                }
                2 => {
                    rec["op"] = json!("cas");
                    rec["expected"] = if rng.gen_bool(0.2) {
                        Value::Null
                    } else {
                        small(&mut rng)
                    };
                    rec["value"] = small(&mut rng);
                    rec["output"] = json!(rng.gen_bool(0.5));
                }
                _ => {
                    rec["op"] = json!("delete");
                    if rng.gen_bool(0.5) {
                        rec["output"] = json!(rng.gen_bool(0.5));
                    }
                }
            }
            rec["ok"] = match rng.gen_range(0..10) {
                0 | 1 => Value::Null,
                2 => json!(false),
                _ => json!(true),
            };
            rec
        })
        .collect()
}

/// Exhaustive reference: tries every order of every subset of the unknown operations.
fn brute_force(history: &History) -> bool {
    let ops: Vec<_> = history
        .ops()
        .iter()
        .filter(|op| op.outcome != Outcome::Failed)
        .collect();
    fn go(
        history: &History,
        ops: &[&kv::checker::Operation],
        left: u32,
        state: Option<Value>,
    ) -> bool {
        let open = |i: usize| left & (1 << i) != 0;
        if (0..ops.len()).all(|i| !open(i) || ops[i].outcome == Outcome::Unknown) {
            return true;
        }
        (0..ops.len()).filter(|&i| open(i)).any(|i| {
            let minimal =
                (0..ops.len()).all(|j| !open(j) || ops[j].ret.is_none_or(|r| r >= ops[i].call));
            minimal
                && step(history, &ops[i].kind, ops[i].outcome, state.clone())
                    .is_some_and(|next| go(history, ops, left & !(1 << i), next))
        })
    }
    go(history, &ops, (1u32 << ops.len()) - 1, None)
}

fn shapes() -> impl Strategy<Value = Shape> {
    (
        any::<u64>(),
        1usize..120,
        1usize..4,
        1usize..7,
        1u64..60,
        0u32..15,
        0u32..10,
    )
        .prop_map(
            |(seed, ops, keys, clients, latency, unknown, failed)| Shape {
                seed,
                ops,
                keys,
                clients,
                latency,
                unknown,
                failed,
            },
        )
}

fn config() -> Config {
    Config {
        cases: 96,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x006b_7663_6865_636b),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn real_executions_are_linearizable(shape in shapes()) {
        let mut sim = Sim::new(shape);
        sim.random_ops(shape.ops);
        sim.execute();
        let (_, verdict) = check(&sim.records());
        prop_assert_eq!(verdict, Verdict::Linearizable);
    }

    #[test]
    fn corruptions_are_caught(shape in shapes(), kind in 0usize..CORRUPTIONS.len(), split in 0.0f64..1.0) {
        let kind = CORRUPTIONS[kind];
        let mut sim = Sim::new(shape);
        let before = (shape.ops as f64 * split) as usize;
        sim.random_ops(before);
        let t = sim.quiesce();
        let key = format!("k{}", shape.seed as usize % shape.keys);
        let target = segment(&mut sim, kind, &key, t);
        sim.quiesce();
        sim.random_ops(shape.ops - before);
        sim.execute();
        falsify(&mut sim.ops[target], kind);
        let (history, verdict) = check(&sim.records());
        let Verdict::NotLinearizable(cex) = verdict else {
            return Err(TestCaseError::fail(format!("{kind:?} not caught: {verdict:?}")));
        };
        prop_assert_eq!(history.key_name(cex.key), key.as_str());
        assert_valid(&history, &cex);
    }

    #[test]
    fn agrees_with_brute_force_on_small_histories(seed in any::<u64>(), n in 1usize..8) {
        let (history, verdict) = check(&random_small_history(seed, n));
        let expected = brute_force(&history);
        match verdict {
            Verdict::Linearizable => prop_assert!(expected, "checker: linearizable"),
            Verdict::NotLinearizable(cex) => {
                prop_assert!(!expected, "checker: not linearizable");
                assert_valid(&history, &cex);
            }
            Verdict::Unknown { .. } => prop_assert!(false, "no timeout was set"),
        }
    }

    #[test]
    fn many_concurrent_clients_on_one_key_are_fast_enough(seed in any::<u64>()) {
        let shape = Shape { seed, ops: 400, keys: 1, clients: 20, latency: 80, unknown: 5, failed: 2 };
        let mut sim = Sim::new(shape);
        sim.random_ops(shape.ops);
        sim.execute();
        let (_, verdict) = check(&sim.records());
        prop_assert_eq!(verdict, Verdict::Linearizable);
    }
}
