//! Online reconfiguration with real `kv` processes (issue 7): groups appear and vanish as nodes
//! join and leave under a 16-client bench, a group member is killed while slots move, and seed
//! 001's `update_view` adds and removes nodes through HTTP. Every bench history is checked
//! linearizable, and every key is read back at the end and checked against the history.
//!
//! Run with `-- --nocapture` to see the measured figures (how long each change took, the
//! throughput during and outside changes, the key spread after each change). The tests run one
//! at a time: each starts up to nine processes, and the machine may have two cores.

mod cluster_support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv::bench::{self, BenchConfig, BenchReport, Stop};
use kv::checker::{check_history, History, OpKind, Options, Outcome, Verdict};
use kv::client::{Client, ClientConfig, ClusterStatus, Connection};
use kv::coordinator::fetch_map;
use kv::native::{AdminAnswer, AdminRequest, NodeRef, StatusReport};
use kv::service::KvService;
use kv_ports::ids::GroupId;
use kv_ports::kv::{KvOp, KvResult};
use kv_ports::membership::{Epoch, SlotMap, SLOTS};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use cluster_support::{Cluster, ClusterOptions, JoinWith};

/// The bench's keys: `k0` .. `k{KEYS-1}`.
const KEYS: u64 = 200;
/// Bench clients.
const CLIENTS: usize = 16;
/// How long one change may take before the test fails.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// One test at a time (see the module documentation). An async lock: each test holds it
/// across its awaits, and a failed test does not poison it for the others.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One reconfiguration as the test saw it, on the bench's clock.
#[derive(Clone, Debug)]
struct Change {
    what: String,
    /// When it was asked for (the new processes started, or the removal sent).
    from: Duration,
    /// When the coordinator answered (the new map published, no plan in flight).
    to: Duration,
    /// When every live node routed by the new map.
    everywhere: Duration,
    /// The map it ended at.
    map: SlotMap,
}

impl Change {
    fn took(&self) -> Duration {
        self.to - self.from
    }
}

/// The bench running in the background and the clock its history uses.
struct Load {
    started: Instant,
    history: PathBuf,
    task: JoinHandle<BenchReport>,
}

impl Load {
    /// Starts `CLIENTS` clients over `KEYS` keys for `secs`, recording into `dir`.
    fn start(cluster: &Cluster, secs: u64, dir: &Path) -> Load {
        let history = dir.join("history.jsonl");
        let mut config = BenchConfig::new(Stop::Duration(Duration::from_secs(secs)));
        config.keys = KEYS;
        config.history = Some(history.clone());
        config.progress = false;
        let sessions: Vec<Arc<dyn KvService>> = (0..CLIENTS)
            .map(|_| Arc::new(cluster.client()) as Arc<dyn KvService>)
            .collect();
        let started = Instant::now();
        let task = tokio::spawn(async move { bench::run(config, sessions).await.expect("bench") });
        Load {
            started,
            history,
            task,
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Checks that `map` is what ⌊n/δ⌋ groups of δ look like with the slots spread within 10% of
/// even; returns a one-line summary for the figures.
fn assert_shape(map: &SlotMap, n: usize) -> String {
    let delta = map.replication as usize;
    assert_eq!(map.nodes.len(), n, "{map:?}");
    assert_eq!(map.groups.len(), n / delta, "groups for {n} nodes: {map:?}");
    for g in &map.groups {
        assert_eq!(g.members.len(), delta, "group {} of {map:?}", g.id.0);
    }
    assert_eq!(map.standbys.len(), n - delta * (n / delta), "{map:?}");
    describe(map)
}

/// Checks that the slots are spread within 10% of even; describes `map` in one line.
fn describe(map: &SlotMap) -> String {
    let counts = map.slot_counts();
    assert_eq!(counts.values().sum::<usize>(), SLOTS);
    let deviation = map.spread_deviation();
    assert!(
        deviation <= 0.10,
        "slot spread {counts:?} is {deviation:.3} off even"
    );
    let slots: Vec<String> = counts.values().map(ToString::to_string).collect();
    let members: Vec<String> = map
        .groups
        .iter()
        .map(|g| g.members.len().to_string())
        .collect();
    format!(
        "epoch {}: {} nodes, {} groups of [{}] members, {} standby(s), slots [{}] ({:.1}% off even)",
        map.epoch.0,
        map.nodes.len(),
        map.groups.len(),
        members.join(", "),
        map.standbys.len(),
        slots.join(", "),
        deviation * 100.0
    )
}

/// How many of `keys` keys named `{prefix}{i}` each group holds under `map`, by group.
fn key_spread(map: &SlotMap, keys: u64, prefix: &str) -> String {
    let mut spread: BTreeMap<GroupId, usize> = map.groups.iter().map(|g| (g.id, 0)).collect();
    for k in 0..keys {
        let group = map
            .group_of_key(format!("{prefix}{k}").as_bytes())
            .expect("formed");
        *spread.entry(group).or_default() += 1;
    }
    let counts: Vec<String> = spread.values().map(ToString::to_string).collect();
    counts.join(", ")
}

/// The coordinator's published map.
async fn coordinator_map(cluster: &Cluster) -> SlotMap {
    fetch_map(cluster.coordinator, Epoch(0), Duration::from_secs(2))
        .await
        .expect("the coordinator answers")
        .expect("a formed map")
}

/// Waits until every live node routes by `epoch` or a newer map; returns when.
async fn wait_everywhere(cluster: &Cluster, epoch: Epoch) {
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    for addr in cluster
        .seeds()
        .iter()
        .filter(|a| **a != cluster.coordinator)
    {
        loop {
            if node_epoch(*addr).await.is_some_and(|e| e >= epoch) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {addr} never got epoch {}",
                epoch.0
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The epoch of the map the node at `addr` routes by.
async fn node_epoch(addr: SocketAddr) -> Option<Epoch> {
    let mut conn = Connection::open(addr, Duration::from_millis(500))
        .await
        .ok()?;
    match conn.fetch_status().await.ok()? {
        StatusReport::Node(s) => Some(s.epoch),
        StatusReport::Coordinator(_) => None,
    }
}

/// Waits until every group of the published map has a leader among live nodes and no plan is
/// in flight.
async fn wait_settled(cluster: &Cluster) -> ClusterStatus {
    let client = cluster.client();
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    loop {
        if let Ok(status) = client.cluster_status().await {
            if status.all_groups_led() && status.reconfiguring.is_none() {
                return status;
            }
        }
        assert!(Instant::now() < deadline, "the cluster did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks the coordinator to wait for the node at `native` to be placed.
async fn await_node(cluster: &Cluster, native: SocketAddr) -> SlotMap {
    let request = AdminRequest::AwaitNode(NodeRef::Addr(native));
    match cluster.client().admin(request).await {
        Ok(AdminAnswer::Done(map)) => map,
        other => panic!("node {native} not placed: {other:?}"),
    }
}

/// Records a change that ran from `from` until now, once every node has its map.
async fn finish_change(cluster: &Cluster, load: &Load, what: &str, from: Duration) -> Change {
    let to = load.now();
    let map = coordinator_map(cluster).await;
    finished_at(cluster, load, what, from, to, map).await
}

/// Records a change that ran from `from` to `to` and ended at `map`, once every node routes
/// by `map` (or a newer one: another change, a failure's, may follow at once).
async fn finished_at(
    cluster: &Cluster,
    load: &Load,
    what: &str,
    from: Duration,
    to: Duration,
    map: SlotMap,
) -> Change {
    wait_everywhere(cluster, map.epoch).await;
    Change {
        what: what.to_owned(),
        from,
        to,
        everywhere: load.now(),
        map,
    }
}

/// Adds two nodes (with `how`) and waits until both are placed.
async fn add_two(cluster: &mut Cluster, load: &Load, how: JoinWith) -> Change {
    let from = load.now();
    let new = [cluster.add_node(how), cluster.add_node(how)];
    for index in new {
        match how {
            JoinWith::Node => {
                await_node(cluster, cluster.nodes[index].native).await;
            }
            JoinWith::Join => {
                let line = cluster.wait_placed(index, CHANGE_TIMEOUT).await;
                println!("  kv join: {line}");
            }
        }
    }
    let n = cluster.seeds().len() - 1;
    let verb = match how {
        JoinWith::Node => "kv node --bootstrap + AwaitNode",
        JoinWith::Join => "kv join",
    };
    finish_change(cluster, load, &format!("add 2 ({verb}) -> {n}"), from).await
}

/// Removes the node at `native` with `kv leave`, then kills it.
async fn leave(cluster: &mut Cluster, load: &Load, native: SocketAddr) -> Change {
    let from = load.now();
    let said = cluster.leave(native, CHANGE_TIMEOUT).await;
    println!("  kv leave --addr {native}: {}", said.trim());
    cluster.kill(native);
    let n = cluster.seeds().len() - 1;
    finish_change(cluster, load, &format!("kv leave -> {n}"), from).await
}

/// What the checker says about a history file, and the history.
fn check_file(path: &Path) -> (Verdict, History, Duration) {
    let text = std::fs::read_to_string(path).expect("history written");
    let history = History::parse_str(&text).expect("history parses");
    let started = Instant::now();
    let verdict = check_history(&history, Options::default());
    (verdict, history, started.elapsed())
}

/// Reads every bench key through a fresh client after the bench and appends the reads to the
/// history (as one more client, after every bench operation), so the checker decides whether
/// each value read back is one the history allows. Also checks directly that no key with an
/// acknowledged write reads back absent unless a delete may have removed it. Returns the
/// combined history's path and a summary.
async fn read_back(cluster: &Cluster, history: &Path, history_ops: &History) -> (PathBuf, String) {
    let client = Client::connect(cluster.seeds(), ClientConfig::default()).expect("seeds");
    let end = history_ops
        .ops()
        .iter()
        .map(|op| op.ret.unwrap_or(op.call))
        .max()
        .unwrap_or(0);
    let mut lines = std::fs::read_to_string(history).expect("history");
    let mut read = BTreeMap::new();
    for k in 0..KEYS {
        let key = format!("k{k}");
        let get = KvOp::Get {
            key: Bytes::from(key.clone()),
        };
        let value = match client.execute(get).await {
            Ok(KvResult::Value(v)) => v.map(|b| String::from_utf8_lossy(&b).into_owned()),
            other => panic!("reading {key} back: {other:?}"),
        };
        let call = end + 1_000 + 2 * k;
        let line = json!({"client": 1000, "key": key, "op": "get", "output": value,
            "call": call, "return": call + 1, "ok": true});
        let _ = writeln!(lines, "{line}");
        read.insert(key, value);
    }
    let summary = acknowledged_writes_present(history_ops, &read);
    let combined = history.with_file_name("history-with-read-back.jsonl");
    std::fs::write(&combined, lines).expect("write combined history");
    (combined, summary)
}

/// Every key with an acknowledged write (put, or CAS that swapped) reads back present unless
/// some delete on it may have taken effect; a present value is one written to that key.
fn acknowledged_writes_present(
    history: &History,
    read: &BTreeMap<String, Option<String>>,
) -> String {
    let mut written: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut acknowledged: BTreeSet<&str> = BTreeSet::new();
    let mut deleted: BTreeSet<&str> = BTreeSet::new();
    for op in history.ops() {
        let key = history.key_name(op.key);
        let effect = op.outcome != Outcome::Failed;
        match op.kind {
            OpKind::Put { value } | OpKind::Cas { value, .. } if effect => {
                written
                    .entry(key)
                    .or_default()
                    .insert(value_text(history, value));
                let swapped = !matches!(
                    op.kind,
                    OpKind::Cas {
                        swapped: Some(false),
                        ..
                    }
                );
                if op.outcome == Outcome::Ok && swapped {
                    acknowledged.insert(key);
                }
            }
            OpKind::Delete { .. } if effect => {
                deleted.insert(key);
            }
            _ => {}
        }
    }
    let mut present = 0;
    for (key, value) in read {
        match value {
            Some(v) => {
                let allowed = written.get(key.as_str()).is_some_and(|w| w.contains(v));
                assert!(allowed, "{key} reads back {v:?}, which no write put there");
                present += 1;
            }
            None => assert!(
                !acknowledged.contains(key.as_str()) || deleted.contains(key.as_str()),
                "{key} had an acknowledged write and no delete, but reads back absent"
            ),
        }
    }
    format!(
        "{} keys read back: {present} present, {} absent; {} keys had an acknowledged write",
        read.len(),
        read.len() - present,
        acknowledged.len()
    )
}

fn value_text(history: &History, id: kv::checker::ValueId) -> String {
    match history.value(id) {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Completed operations per second in `[from, to)` on the bench clock (by return time).
fn rate(history: &History, from: Duration, to: Duration) -> f64 {
    let (a, b) = (from.as_nanos() as u64, to.as_nanos() as u64);
    let n = history
        .ops()
        .iter()
        .filter(|op| op.outcome == Outcome::Ok)
        .filter(|op| op.ret.is_some_and(|r| r >= a && r < b))
        .count();
    n as f64 / (to - from).as_secs_f64().max(1e-3)
}

/// Completed operations per second in each half second of the run; `*` marks the half
/// seconds a change overlaps.
fn timeline(history: &History, changes: &[Change], end: Duration) -> String {
    let step = Duration::from_millis(500);
    let mut cells = Vec::new();
    let mut at = Duration::ZERO;
    while at + step <= end {
        let next = at + step;
        let busy = changes.iter().any(|c| c.from < next && c.everywhere > at);
        let mark = if busy { "*" } else { "" };
        cells.push(format!("{:.0}{mark}", rate(history, at, next)));
        at = next;
    }
    format!(
        "ops/s per 0.5 s (* = a change under way): {}",
        cells.join(" ")
    )
}

/// The figures of a run: each change, throughput during and outside changes, the history.
fn figures(history: &History, changes: &[Change], end: Duration, checked: &str) -> String {
    let mut out = String::new();
    let mut busy = Duration::ZERO;
    let mut busy_ops = 0.0;
    for c in changes {
        let during = rate(history, c.from, c.everywhere);
        busy += c.everywhere - c.from;
        busy_ops += during * (c.everywhere - c.from).as_secs_f64();
        let _ = writeln!(
            out,
            "  {}: {:.0} ms to the answer, {:.0} ms until every node routes by epoch {}; \
             {during:.0} ops/s during; keys per group: bench's {KEYS} [{}], 10,000 others [{}]",
            c.what,
            c.took().as_secs_f64() * 1e3,
            (c.everywhere - c.from).as_secs_f64() * 1e3,
            c.map.epoch.0,
            key_spread(&c.map, KEYS, "k"),
            key_spread(&c.map, 10_000, "user:"),
        );
    }
    let total = rate(history, Duration::ZERO, end) * end.as_secs_f64();
    let quiet = end.saturating_sub(busy);
    let outside = (total - busy_ops) / quiet.as_secs_f64().max(1e-3);
    let during = busy_ops / busy.as_secs_f64().max(1e-3);
    let _ = writeln!(out, "  {}", timeline(history, changes, end));
    let count = |o: Outcome| history.ops().iter().filter(|op| op.outcome == o).count();
    let _ = writeln!(
        out,
        "  throughput: {during:.0} ops/s during changes ({:.1} s), {outside:.0} ops/s outside \
         ({:.1} s)\n  history: {} ops ({} ok, {} failed, {} unknown); {checked}",
        busy.as_secs_f64(),
        quiet.as_secs_f64(),
        history.ops().len(),
        count(Outcome::Ok),
        count(Outcome::Failed),
        count(Outcome::Unknown),
    );
    out
}

/// Stops the load, checks its history and the read-back, prints the figures.
async fn finish(cluster: &Cluster, load: Load, changes: &[Change], title: &str) {
    let started = load.started;
    let report = load.task.await.expect("bench task");
    let end = started.elapsed();
    assert!(report.total_ops() > 500, "{}", report.render());
    let (verdict, history, took) = check_file(&load.history);
    assert_eq!(verdict, Verdict::Linearizable, "{}", load.history.display());
    let (combined, summary) = read_back(cluster, &load.history, &history).await;
    let (with_reads, _, _) = check_file(&combined);
    assert_eq!(with_reads, Verdict::Linearizable, "{}", combined.display());
    let checked = format!(
        "linearizable (checked in {:.1} s), and with the read-back appended; {summary}",
        took.as_secs_f64()
    );
    println!(
        "== {title}\n{}",
        figures(&history, changes, end.min(report.elapsed), &checked)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_appear_and_vanish_under_load_and_the_history_stays_linearizable() {
    let _one = SERIAL.lock().await;
    let options = ClusterOptions::replication(2);
    let mut cluster = Cluster::start_options("reconfig-grow", 4, options);
    cluster.wait_until_led().await;
    let first = coordinator_map(&cluster).await;
    println!("== grow and shrink: start {}", assert_shape(&first, 4));

    let dir = cluster.log_dir().to_path_buf();
    let load = Load::start(&cluster, 24, &dir);
    let mut changes = Vec::new();
    tokio::time::sleep(Duration::from_secs(2)).await;

    changes.push(add_two(&mut cluster, &load, JoinWith::Node).await);
    println!("  {}", assert_shape(&changes[0].map, 6));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    changes.push(add_two(&mut cluster, &load, JoinWith::Join).await);
    println!("  {}", assert_shape(&changes[1].map, 8));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // One member of the first group (its group dissolves: ⌊7/2⌋ = 3), then one of the newest
    // group (the standby takes its place).
    let map = &changes[1].map;
    let first_group = map.groups.first().expect("groups").members[0];
    let victim = map.node(first_group).expect("named").client;
    changes.push(leave(&mut cluster, &load, victim).await);
    println!("  {}", assert_shape(&changes[2].map, 7));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let map = &changes[2].map;
    let newest = map.groups.last().expect("groups").members[0];
    let victim = map.node(newest).expect("named").client;
    changes.push(leave(&mut cluster, &load, victim).await);
    println!("  {}", assert_shape(&changes[3].map, 6));
    wait_settled(&cluster).await;

    let last = changes.last().expect("changes").to;
    assert!(
        last < load.now(),
        "the bench ended before the last change: lengthen it"
    );
    finish(
        &cluster,
        load,
        &changes,
        "grow 4 -> 6 -> 8, shrink 8 -> 7 -> 6 (δ = 2)",
    )
    .await;
}

/// The first of `members` whose log shows a `Freeze` directive: the member serving the move.
fn freezing(cluster: &Cluster, members: &[SocketAddr]) -> Option<SocketAddr> {
    members.iter().copied().find(|addr| {
        let node = &cluster.nodes[cluster.index_of(*addr)];
        node.log()
            .and_then(|log| std::fs::read_to_string(log).ok())
            .is_some_and(|text| {
                text.lines()
                    .any(|l| l.contains("directive") && l.contains("Freeze"))
            })
    })
}

/// How many `Install` directives the logs of `nodes` show.
fn installs(cluster: &Cluster, nodes: &[usize]) -> usize {
    nodes
        .iter()
        .filter_map(|&i| cluster.nodes[i].log())
        .filter_map(|log| std::fs::read_to_string(log).ok())
        .map(|text| {
            text.lines()
                .filter(|l| l.contains("directive id=") && l.contains("Install"))
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_while_slots_move_does_not_stop_the_change() {
    let _one = SERIAL.lock().await;
    let mut options = ClusterOptions::replication(3);
    options.coordinator_flags = vec!["--grace-ms".into(), "1500".into()];
    let mut cluster = Cluster::start_options("reconfig-kill", 3, options);
    let status = cluster.wait_until_led().await;
    let first = coordinator_map(&cluster).await;
    println!("== kill mid-move: start {}", assert_shape(&first, 3));
    let members: Vec<SocketAddr> = status.groups[0].members.iter().map(|m| m.addr).collect();

    let dir = cluster.log_dir().to_path_buf();
    let load = Load::start(&cluster, 16, &dir);
    let mut changes = Vec::new();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Two standbys first; the third node makes a group that takes half of the slots, moved
    // in batches (freeze at the source, install at the new group). The source member that
    // serves the first freeze is killed as soon as its log shows it.
    let from = load.now();
    for _ in 0..2 {
        let index = cluster.add_node(JoinWith::Node);
        await_node(&cluster, cluster.nodes[index].native).await;
    }
    changes.push(finish_change(&cluster, &load, "add 2 standbys -> 5", from).await);
    println!("  {}", assert_shape(&changes[0].map, 5));
    let from = load.now();
    let third = cluster.add_node(JoinWith::Node);
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    let victim = loop {
        if let Some(victim) = freezing(&cluster, &members) {
            break victim;
        }
        assert!(
            Instant::now() < deadline,
            "no Freeze reached the source group"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let killed_at = load.now();
    cluster.kill(victim);
    let victim_id = changes[0].map.nodes.iter().find(|n| n.client == victim);
    let victim_id = victim_id.expect("the victim is in the map").id;
    let new_group: Vec<usize> = (cluster.nodes.len() - 3..cluster.nodes.len()).collect();
    println!(
        "  killed {victim}, the source member serving the freeze, {:.0} ms after the third node \
         started ({} install directive(s) had reached the new group)",
        (killed_at - from).as_secs_f64() * 1e3,
        installs(&cluster, &new_group)
    );
    // The failure plan may follow at once (a slow change outlasts the grace period): the map
    // checked is the one the placement was answered with.
    let placed = await_node(&cluster, cluster.nodes[third].native).await;
    let what = "add 1 (a new group; the freezing source member killed) -> 6";
    let to = load.now();
    changes.push(finished_at(&cluster, &load, what, from, to, placed).await);
    // Six nodes, or five when the failure plan ran before the placement was answered: then
    // the killed member is gone and its group has two members until the next node fills it.
    let map = &changes[1].map;
    let shape = match map.nodes.len() {
        6 => assert_shape(map, 6),
        _ => {
            assert!(map.node(victim_id).is_none(), "{map:?}");
            assert_eq!(map.groups.len(), 2, "{map:?}");
            describe(map)
        }
    };
    println!("  {shape}");

    // The killed member is declared failed; with no standby its group is under-replicated
    // until a new node fills it.
    let client = cluster.client();
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    loop {
        let status = client.cluster_status().await.expect("status");
        if !status.under_replicated.is_empty() && status.reconfiguring.is_none() {
            println!(
                "  {:.0} ms after the kill the failure is handled: under-replicated groups {:?}",
                (load.now() - killed_at).as_secs_f64() * 1e3,
                status.under_replicated
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failure was never handled: {}",
            status.render()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let from = load.now();
    let filler = cluster.add_node(JoinWith::Node);
    await_node(&cluster, cluster.nodes[filler].native).await;
    changes.push(
        finish_change(
            &cluster,
            &load,
            "add 1 (fills the failed member's place) -> 6 live",
            from,
        )
        .await,
    );
    let map = &changes[2].map;
    println!("  {}", assert_shape(map, 6));
    let status = wait_settled(&cluster).await;
    assert!(status.under_replicated.is_empty(), "{}", status.render());
    assert!(status.unreachable.is_empty(), "{}", status.render());

    finish(
        &cluster,
        load,
        &changes,
        "kill -9 of the source member serving the freeze while slots move (δ = 3)",
    )
    .await;
}

/// An HTTP answer: status and JSON body.
struct Answer {
    status: u16,
    body: Value,
}

/// `method target` with a form body, as curl sends it, on a fresh connection.
async fn http(addr: SocketAddr, method: &str, target: &str, form: &str) -> Answer {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        answer
    };
    let answer = tokio::time::timeout(CHANGE_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no HTTP answer from {addr}"));
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let start = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
    let body = serde_json::from_str(&text[start..]).unwrap_or(Value::Null);
    Answer { status, body }
}

/// Every live node's HTTP address.
fn http_addrs(cluster: &Cluster) -> Vec<SocketAddr> {
    cluster
        .nodes
        .iter()
        .filter(|n| !n.is_killed())
        .map(|n| n.http.expect("HTTP served"))
        .collect()
}

/// Right after a view change answered: every node routes by the coordinator's map and lists
/// `partitions` partitions.
async fn published_everywhere(cluster: &Cluster, partitions: usize) -> SlotMap {
    let map = coordinator_map(cluster).await;
    for node in cluster.nodes.iter().filter(|n| !n.is_killed()) {
        let epoch = node_epoch(node.native).await;
        assert_eq!(
            epoch,
            Some(map.epoch),
            "node {} right after the answer",
            node.native
        );
        let ids = http(
            node.http.expect("HTTP"),
            "GET",
            "/kv-store/get_all_partition_ids",
            "",
        )
        .await;
        let list = ids.body["partition_id_list"].as_array().map(Vec::len);
        assert_eq!(list, Some(partitions), "{}", ids.body);
    }
    map
}

/// Every key reads back its value through every live node.
async fn readable_everywhere(cluster: &Cluster, keys: &[(String, String)]) {
    for addr in http_addrs(cluster) {
        for (key, value) in keys {
            let got = http(addr, "GET", &format!("/kv-store/{key}"), "").await;
            assert_eq!(got.status, 200, "GET {key} via {addr}: {}", got.body);
            assert_eq!(got.body["value"], json!(value), "GET {key} via {addr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_update_view_adds_and_removes_nodes_through_http() {
    let _one = SERIAL.lock().await;
    let mut options = ClusterOptions::replication(2);
    options.http = true;
    let mut cluster = Cluster::start_options("reconfig-http", 4, options);
    cluster.wait_until_led().await;
    let entry = cluster.nodes[0].http.expect("HTTP");
    let keys: Vec<(String, String)> = (0..40)
        .map(|i| (format!("key{i}"), format!("v{i}")))
        .collect();
    for (i, (key, value)) in keys.iter().enumerate() {
        let via = http_addrs(&cluster)[i % 4];
        let put = http(
            via,
            "PUT",
            &format!("/kv-store/{key}"),
            &format!("val={value}"),
        )
        .await;
        assert_eq!(put.status, 200, "{}", put.body);
    }
    readable_everywhere(&cluster, &keys).await;

    let mut timings = Vec::new();
    // Node 5 becomes a standby (a seed 001 proxy), node 6 makes a third partition with it.
    for (expect_partition, partitions) in [(false, 2), (true, 3)] {
        let index = cluster.add_node(JoinWith::Node);
        let new = cluster.nodes[index].http.expect("HTTP");
        let started = Instant::now();
        let added = http(
            entry,
            "PUT",
            "/kv-store/update_view?type=add",
            &format!("ip_port={new}"),
        )
        .await;
        timings.push(("add", started.elapsed()));
        assert_eq!(added.status, 200, "{}", added.body);
        assert_eq!(added.body["result"], "success", "{}", added.body);
        assert_eq!(
            added.body["number_of_partitions"],
            json!(partitions),
            "{}",
            added.body
        );
        let map = published_everywhere(&cluster, partitions).await;
        let id = added.body["partition_id"].as_i64().expect("partition_id");
        let native = cluster.nodes[index].native;
        let placed = map
            .nodes
            .iter()
            .find(|n| n.client == native)
            .expect("in the map");
        match map.group_of_node(placed.id) {
            Some(g) if expect_partition => assert_eq!(id, i64::from(g.0)),
            None if !expect_partition => assert_eq!(id, -1),
            other => panic!("node placed in {other:?}, answer {}", added.body),
        }
        readable_everywhere(&cluster, &keys).await;
    }

    // Removing a member of the first partition: ⌊5/2⌋ = 2 partitions again.
    let map = coordinator_map(&cluster).await;
    let gone = map.node(map.groups[0].members[1]).expect("named");
    let gone_http = gone.http.expect("HTTP");
    let via = http_addrs(&cluster)
        .into_iter()
        .find(|a| *a != gone_http)
        .expect("another");
    let started = Instant::now();
    let removed = http(
        via,
        "PUT",
        "/kv-store/update_view?type=remove",
        &format!("ip_port={gone_http}"),
    )
    .await;
    timings.push(("remove", started.elapsed()));
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(
        removed.body,
        json!({"result": "success", "number_of_partitions": 2})
    );
    cluster.kill(gone.client);
    let map = published_everywhere(&cluster, 2).await;
    println!("== seed 001 update_view: {}", assert_shape(&map, 5));
    readable_everywhere(&cluster, &keys).await;
    for (what, took) in timings {
        println!(
            "  update_view?type={what}: answered in {:.0} ms",
            took.as_secs_f64() * 1e3
        );
    }
}
