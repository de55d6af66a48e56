//! Benchmark of `kv check`: generates histories from a seeded, simulated linearizable
//! execution, writes them to temporary files and times parsing plus checking, each case in a
//! fresh child process so that its peak memory (VmHWM) is its own.
//!
//! Run with `cargo run --release --example checker_bench`. Also reports the verdicts on the
//! shared reference histories when `../shared/histories` exists.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kv::checker::{check_with_stats, History, Options, Verdict};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// One benchmark case.
struct Case {
    name: &'static str,
    ops: usize,
    keys: usize,
    clients: usize,
    unknown: f64,
}

const CASES: [Case; 5] = [
    Case {
        name: "1M ops, 1000 keys, 50 clients, 5% unknown",
        ops: 1_000_000,
        keys: 1000,
        clients: 50,
        unknown: 0.05,
    },
    Case {
        name: "20k ops, 1 key, 10 clients",
        ops: 20_000,
        keys: 1,
        clients: 10,
        unknown: 0.0,
    },
    Case {
        name: "2k ops, 1 key, 20 clients",
        ops: 2_000,
        keys: 1,
        clients: 20,
        unknown: 0.0,
    },
    Case {
        name: "2k ops, 1 key, 20 clients, 5% unknown",
        ops: 2_000,
        keys: 1,
        clients: 20,
        unknown: 0.05,
    },
    Case {
        name: "20k ops, 1 key, 10 clients, 5% unknown",
        ops: 20_000,
        keys: 1,
        clients: 10,
        unknown: 0.05,
    },
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 3 && args[1] == "--child" {
        let timeout = args.get(3).map(|s| s.parse()).transpose()?;
        return child(Path::new(&args[2]), timeout);
    }
    println!("| case | operations | verdict | parse + check | peak memory (VmHWM) |");
    println!("|---|---|---|---|---|");
    for (n, case) in CASES.iter().enumerate() {
        let path = std::env::temp_dir().join(format!("kv_checker_bench_{n}.jsonl"));
        generate(case, 42 + n as u64, &path)?;
        let row = run_child(&path, None)?;
        println!("| {} | {} | {row}", case.name, case.ops);
        std::fs::remove_file(&path)?;
    }
    let path = std::env::temp_dir().join("kv_checker_bench_pathological.jsonl");
    let ops = pathological(PATHOLOGICAL_WRITERS, &path)?;
    let row = run_child(&path, Some(PATHOLOGICAL_TIMEOUT_S))?;
    println!(
        "| pathological: {PATHOLOGICAL_WRITERS} overlapping puts, contradictory reads, \
         timeout {PATHOLOGICAL_TIMEOUT_S} s | {ops} | {row}"
    );
    std::fs::remove_file(&path)?;
    shared_histories()
}

/// Writers in the pathological case: the search space is about 2^n configurations.
const PATHOLOGICAL_WRITERS: usize = 24;
/// Its timeout, in seconds.
const PATHOLOGICAL_TIMEOUT_S: f64 = 5.0;

/// Runs the check of `path` in a child process; returns its table cells.
fn run_child(path: &Path, timeout: Option<f64>) -> Result<String> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--child").arg(path);
    if let Some(t) = timeout {
        cmd.arg(t.to_string());
    }
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("child failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// A worst case for the search: `n` puts of distinct values, all concurrent, then two reads
/// that disagree although nothing was written between them. Refuting it means trying every
/// subset of the puts.
fn pathological(n: usize, path: &Path) -> Result<usize> {
    let mut out = BufWriter::new(File::create(path)?);
    for i in 0..n {
        let put = json!({"client": i, "key": "x", "op": "put", "value": i,
                         "call": i, "return": 1000 + i, "ok": true});
        writeln!(out, "{put}")?;
    }
    for (i, value) in [0, 1].into_iter().enumerate() {
        let get = json!({"client": 0, "key": "x", "op": "get", "output": value,
                         "call": 2000 + 20 * i, "return": 2010 + 20 * i, "ok": true});
        writeln!(out, "{get}")?;
    }
    out.flush()?;
    Ok(n + 2)
}

/// Parses and checks one file; prints the rest of a table row.
fn child(path: &Path, timeout: Option<f64>) -> Result<()> {
    let start = Instant::now();
    let history = History::parse(BufReader::with_capacity(1 << 16, File::open(path)?))?;
    let parsed = start.elapsed();
    let options = Options {
        timeout: timeout.map(Duration::from_secs_f64),
        ..Options::default()
    };
    let (verdict, stats) = check_with_stats(&history, options);
    let total = start.elapsed();
    println!(
        "{} | {:.2} s (parse {:.2} s; {} steps, largest memo {}, memo resets {}) | {} MiB |",
        verdict.headline(),
        total.as_secs_f64(),
        parsed.as_secs_f64(),
        stats.steps,
        stats.largest_memo,
        stats.memo_resets,
        peak_mib()?
    );
    Ok(())
}

fn peak_mib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?;
    Ok(kib / 1024)
}

/// An operation of the simulation, before its result is known.
struct SimOp {
    client: usize,
    key: usize,
    call: u64,
    lin: u64,
    ret: u64,
    kind: u8,
    value: u64,
    expected: Option<u64>,
    unknown: bool,
    applied: bool,
}

/// Simulates `case`: each client runs one operation at a time with random latency; each
/// operation takes effect at a random point inside its interval on a sequential map. Unknown
/// outcomes take effect or not (half each) and are recorded without return.
fn generate(case: &Case, seed: u64, path: &PathBuf) -> Result<()> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut free = vec![0u64; case.clients];
    let mut ops = Vec::with_capacity(case.ops);
    for n in 0..case.ops {
        let client = n % case.clients;
        let call = free[client] + rng.gen_range(0..50);
        let latency = rng.gen_range(20..400);
        let lin = call + rng.gen_range(0..=latency);
        let unknown = rng.gen_bool(case.unknown);
        ops.push(SimOp {
            client,
            key: rng.gen_range(0..case.keys),
            call,
            lin,
            ret: call + latency,
            kind: rng.gen_range(0..10),
            value: rng.gen_range(0..8),
            expected: rng.gen_bool(0.9).then(|| rng.gen_range(0..8)),
            unknown,
            applied: !unknown || rng.gen_bool(0.5),
        });
        free[client] = call + latency;
    }
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].lin, i));
    let mut map: HashMap<usize, u64> = HashMap::new();
    let mut outputs: Vec<Value> = vec![Value::Null; ops.len()];
    for i in order {
        outputs[i] = apply(&ops[i], &mut map);
    }
    let mut out = BufWriter::new(File::create(path)?);
    for (op, output) in ops.iter().zip(outputs) {
        serde_json::to_writer(&mut out, &record(op, output))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Applies one operation to the map (if it takes effect) and returns its output.
fn apply(op: &SimOp, map: &mut HashMap<usize, u64>) -> Value {
    if !op.applied {
        return Value::Null;
    }
    let current = map.get(&op.key).copied();
    match op.kind {
        0..=4 => json!(current),
        5..=6 => {
            map.insert(op.key, op.value);
            Value::Null
        }
        7..=8 => {
            let swap = current == op.expected;
            if swap {
                map.insert(op.key, op.value);
            }
            json!(swap)
        }
        _ => {
            map.remove(&op.key);
            json!(current.is_some())
        }
    }
}

fn record(op: &SimOp, output: Value) -> Value {
    let name = ["get", "put", "cas", "delete"][match op.kind {
        0..=4 => 0,
        5..=6 => 1,
        7..=8 => 2,
        _ => 3,
    }];
    let mut rec = json!({
        "client": op.client,
        "key": format!("k{}", op.key),
        "op": name,
        "call": op.call,
    });
    if op.unknown {
        rec["ok"] = Value::Null;
    } else {
        rec["ok"] = json!(true);
        rec["return"] = json!(op.ret);
        rec["output"] = output;
    }
    match name {
        "put" => rec["value"] = json!(op.value),
        "cas" => {
            rec["value"] = json!(op.value);
            rec["expected"] = json!(op.expected);
        }
        _ => {}
    }
    rec
}

/// Verdict counts on the shared reference histories, and whether they match `EXPECTED`.
fn shared_histories() -> Result<()> {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/histories"));
    if !root.is_dir() {
        println!(
            "\n{} not found: skipping the reference histories",
            root.display()
        );
        return Ok(());
    }
    println!("\n| folder | files | linearizable | not linearizable | unknown | as expected | total time |");
    println!("|---|---|---|---|---|---|---|");
    for folder in ["jepsen-etcd", "handmade"] {
        let dir = root.join(folder);
        let expected = expected(&dir)?;
        let (mut counts, mut agree) = ([0usize; 3], 0);
        let start = Instant::now();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
        for file in &files {
            let history = History::parse(BufReader::new(File::open(file)?))?;
            let verdict = check_with_stats(&history, Options::default()).0;
            let slot = match verdict {
                Verdict::Linearizable => 0,
                Verdict::NotLinearizable(_) => 1,
                Verdict::Unknown { .. } => 2,
            };
            counts[slot] += 1;
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let want = expected.get(name).map(String::as_str).unwrap_or_else(|| {
                if name.starts_with("bad") {
                    "not-linearizable"
                } else {
                    "linearizable"
                }
            });
            agree += usize::from(verdict.headline().replace(' ', "-") == want);
        }
        println!(
            "| {folder} | {} | {} | {} | {} | {agree} | {:.2} s |",
            files.len(),
            counts[0],
            counts[1],
            counts[2],
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The `EXPECTED` file of a folder (empty if there is none).
fn expected(dir: &Path) -> Result<HashMap<String, String>> {
    let Ok(file) = File::open(dir.join("EXPECTED")) else {
        return Ok(HashMap::new());
    };
    let mut map = HashMap::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        if let Some((name, verdict)) = line.split_once(char::is_whitespace) {
            map.insert(name.to_owned(), verdict.trim().to_owned());
        }
    }
    Ok(map)
}
