//! Real clusters for integration tests: the built `kv` binary started as a coordinator and
//! data nodes on loopback ports that were free a moment ago. Every process is killed when
//! the [`Cluster`] is dropped, also when the test fails; a failing test prints the tail of
//! every process's log.
#![allow(dead_code)] // each test file uses a different subset

mod process;

pub use process::{free_addrs, print_tail, Proc};

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kv::client::{Client, ClientConfig, ClusterStatus};

/// How long a cluster may take to form and elect its leaders.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// A data node process and its endpoints.
pub struct NodeProc {
    /// The native endpoint.
    pub native: SocketAddr,
    /// The RESP endpoint.
    pub resp: SocketAddr,
    /// The HTTP endpoint, when the cluster serves HTTP ([`ClusterOptions::http`]).
    pub http: Option<SocketAddr>,
    /// Where its standard output goes (`kv join` prints its placement there).
    pub stdout: Option<PathBuf>,
    proc: Option<Proc>,
}

impl NodeProc {
    /// Whether the process has been killed by the test.
    pub fn is_killed(&self) -> bool {
        self.proc.is_none()
    }

    /// The node's log file.
    pub fn log(&self) -> Option<&Path> {
        self.proc.as_ref().map(|p| p.log.as_path())
    }

    /// What the process wrote on standard output so far (`kv join` prints its placement).
    pub fn output(&self) -> String {
        self.stdout
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }
}

/// How a [`Cluster`] is started.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The replication degree δ the coordinator asks for.
    pub replication: u32,
    /// Whether every node also serves seed 001's HTTP API (`--http`).
    pub http: bool,
    /// More flags for the coordinator (e.g. `--grace-ms 1000`).
    pub coordinator_flags: Vec<String>,
}

impl ClusterOptions {
    /// δ = `replication`, no HTTP, the coordinator's defaults.
    pub fn replication(replication: u32) -> ClusterOptions {
        ClusterOptions {
            replication,
            http: false,
            coordinator_flags: Vec::new(),
        }
    }
}

/// How a node joins a running cluster ([`Cluster::add_node`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum JoinWith {
    /// `kv node --bootstrap`: the node checks in; nobody waits for its placement.
    Node,
    /// `kv join`: the node checks in and prints its placement on standard output
    /// ([`Cluster::wait_for_output`] and [`Cluster::wait_placed`] read it).
    Join,
}

/// A coordinator and data nodes; see the module documentation.
pub struct Cluster {
    /// The coordinator's address.
    pub coordinator: SocketAddr,
    /// The data nodes, in start order.
    pub nodes: Vec<NodeProc>,
    coordinator_proc: Proc,
    dir: PathBuf,
    dead: Vec<Proc>,
    options: ClusterOptions,
}

impl Cluster {
    /// Starts a coordinator for `replication` waiting for `nodes` nodes, and the nodes.
    pub fn start(name: &str, nodes: usize, replication: u32) -> Cluster {
        Cluster::start_options(name, nodes, ClusterOptions::replication(replication))
    }

    /// Like [`Cluster::start`], with more flags for the coordinator (e.g. `--grace-ms`).
    pub fn start_with(name: &str, nodes: usize, replication: u32, extra: &[&str]) -> Cluster {
        let mut options = ClusterOptions::replication(replication);
        options.coordinator_flags = extra.iter().map(|a| a.to_string()).collect();
        Cluster::start_options(name, nodes, options)
    }

    /// Starts a coordinator waiting for `nodes` nodes, and the nodes, as `options` say.
    pub fn start_options(name: &str, nodes: usize, options: ClusterOptions) -> Cluster {
        let dir = std::env::temp_dir().join(format!("kv-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create log dir");
        let coordinator = free_addrs(1)[0];
        let coordinator_proc = Proc::spawn(
            "coordinator",
            &coordinator_args(coordinator, &options, nodes),
            &dir,
        );
        let mut cluster = Cluster {
            coordinator,
            nodes: Vec::new(),
            coordinator_proc,
            dir,
            dead: Vec::new(),
            options,
        };
        for _ in 0..nodes {
            cluster.add_node(JoinWith::Node);
        }
        cluster
    }

    /// Starts one more node on fresh ports, checking in with the coordinator; returns its
    /// index in [`Cluster::nodes`].
    pub fn add_node(&mut self, how: JoinWith) -> usize {
        let addrs = free_addrs(3);
        let (native, resp) = (addrs[0], addrs[1]);
        let http = self.options.http.then_some(addrs[2]);
        let command = match how {
            JoinWith::Node => "node",
            JoinWith::Join => "join",
        };
        let mut args: Vec<String> = vec![
            command.into(),
            "--listen".into(),
            native.to_string(),
            "--bootstrap".into(),
            self.coordinator.to_string(),
            "--resp".into(),
            resp.to_string(),
        ];
        if let Some(http) = http {
            args.extend(["--http".into(), http.to_string()]);
        }
        let i = self.nodes.len();
        let name = format!("node {}", i + 1);
        let (proc, stdout) = match how {
            JoinWith::Node => (Proc::spawn(&name, &args, &self.dir), None),
            JoinWith::Join => {
                let out = self.dir.join(format!("node-{}.out", i + 1));
                let file = File::create(&out).expect("create output file");
                let proc = Proc::spawn_to(&name, &args, &self.dir, Stdio::from(file));
                (proc, Some(out))
            }
        };
        self.nodes.push(NodeProc {
            native,
            resp,
            http,
            stdout,
            proc: Some(proc),
        });
        i
    }

    /// Starts one more data node with `kv join` (it checks in with the running cluster's
    /// coordinator, which places it); returns its index in [`Cluster::nodes`].
    pub fn join(&mut self) -> usize {
        self.add_node(JoinWith::Join)
    }

    /// Waits until node `i`'s standard output has a line containing `text`; returns it.
    pub async fn wait_for_output(&self, i: usize, text: &str) -> String {
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            let out = self.nodes[i].output();
            if let Some(line) = out.lines().find(|l| l.contains(text)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "node {} printed no {text:?} within {FORM_TIMEOUT:?}; it printed:\n{out}",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `kv ARGS` to its end (off the async runtime's threads) and returns its output.
    pub async fn run_kv(args: Vec<String>) -> std::process::Output {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_kv"))
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .expect("kv runs")
        })
        .await
        .expect("the kv command's thread")
    }

    /// Waits until the `kv join` node at `index` prints its placement; returns that line.
    pub async fn wait_placed(&self, index: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let output = self.nodes[index].output();
            if let Some(line) = output
                .lines()
                .find(|l| l.contains(" placed in group ") || l.contains(" is a standby "))
            {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "kv join (node {}) printed no placement within {timeout:?}: {output:?}",
                index + 1
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `kv leave --addr <native>` against the coordinator (waiting at most `timeout`
    /// for the change) and returns what it printed; panics with its error output if it fails.
    pub async fn leave(&self, native: SocketAddr, timeout: Duration) -> String {
        let args = vec![
            "leave".to_owned(),
            "--bootstrap".into(),
            self.coordinator.to_string(),
            "--addr".into(),
            native.to_string(),
            "--timeout".into(),
            timeout.as_secs().max(1).to_string(),
        ];
        let output = Cluster::run_kv(args).await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kv leave --addr {native} failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Waits (at most `timeout`) for the process of node `i` to exit by itself and returns
    /// its exit status; `None` if it still runs (or the test killed it).
    pub async fn wait_exit(
        &mut self,
        i: usize,
        timeout: Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let proc = self.nodes[i].proc.as_mut()?;
            if let Some(status) = proc.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls the cluster's status until every group has a leader and `done` holds; panics
    /// with the last status seen after `timeout`.
    pub async fn status_until(
        &self,
        timeout: Duration,
        done: impl Fn(&ClusterStatus) -> bool,
    ) -> ClusterStatus {
        let client = self.client();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(status) = client.cluster_status().await {
                if status.all_groups_led() && done(&status) {
                    return status;
                }
                assert!(
                    Instant::now() < deadline,
                    "not reached within {timeout:?}:\n{}",
                    status.render()
                );
            }
            assert!(Instant::now() < deadline, "no status within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The index of the node whose native endpoint is `native`.
    pub fn index_of(&self, native: SocketAddr) -> usize {
        self.nodes
            .iter()
            .position(|n| n.native == native)
            .expect("a node of this cluster")
    }

    /// Native addresses of the nodes still running, then the coordinator's.
    pub fn seeds(&self) -> Vec<SocketAddr> {
        let mut seeds: Vec<SocketAddr> = self
            .nodes
            .iter()
            .filter(|n| !n.is_killed())
            .map(|n| n.native)
            .collect();
        seeds.push(self.coordinator);
        seeds
    }

    /// A client session on the cluster.
    pub fn client(&self) -> Client {
        Client::connect(self.seeds(), ClientConfig::default()).expect("seeds given")
    }

    /// Waits until every group has a leader (among live nodes); returns that status.
    pub async fn wait_until_led(&self) -> ClusterStatus {
        let client = self.client();
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            if let Ok(status) = client.cluster_status().await {
                if status.all_groups_led() {
                    return status;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader in every group within {FORM_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9` of the node whose native endpoint is `native`.
    pub fn kill(&mut self, native: SocketAddr) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.native == native)
            .expect("a node of this cluster");
        let mut proc = node.proc.take().expect("node still running");
        proc.kill();
        self.dead.push(proc);
    }

    /// `kill -9` of the coordinator, then a new one on the same address.
    pub fn restart_coordinator(&mut self, replication: u32, min_nodes: usize) {
        self.coordinator_proc.kill();
        let mut options = self.options.clone();
        options.replication = replication;
        let args = coordinator_args(self.coordinator, &options, min_nodes);
        let fresh = Proc::spawn("coordinator-2", &args, &self.dir);
        let old = std::mem::replace(&mut self.coordinator_proc, fresh);
        self.dead.push(old);
    }

    /// The directory holding every process's log.
    pub fn log_dir(&self) -> &Path {
        &self.dir
    }
}

/// `kv bootstrap` on `listen` as `options` say, forming once `min_nodes` nodes checked in.
fn coordinator_args(listen: SocketAddr, options: &ClusterOptions, min_nodes: usize) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "bootstrap".into(),
        "--listen".into(),
        listen.to_string(),
        "--replication".into(),
        options.replication.to_string(),
        "--min-nodes".into(),
        min_nodes.to_string(),
    ];
    args.extend(options.coordinator_flags.iter().cloned());
    args
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut logs: Vec<&Proc> = vec![&self.coordinator_proc];
            logs.extend(self.nodes.iter().filter_map(|n| n.proc.as_ref()));
            logs.extend(self.dead.iter());
            for p in logs {
                print_tail(p);
            }
        }
    }
}

/// Seed 001's mode: `kv node` processes started with `K`, `VIEW` and `IPPORT` in their
/// environment and no `--bootstrap`; the node at `VIEW[0]` runs the coordinator. Nodes can be
/// added later (started with the view so far plus themselves, as seed 001's harness does).
/// Every process is killed when dropped; a failing test prints the tail of every log.
pub struct Seed001Cluster {
    /// Every node started and not forgotten, in start order (the last node's `VIEW`).
    pub view: Vec<SocketAddr>,
    k: u32,
    dir: PathBuf,
    procs: Vec<(SocketAddr, Proc)>,
    dead: Vec<Proc>,
}

impl Seed001Cluster {
    /// Starts `n` nodes with `K = k` on free loopback ports.
    pub fn start(name: &str, n: usize, k: u32) -> Seed001Cluster {
        let dir = std::env::temp_dir().join(format!("kv-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create log dir");
        let mut cluster = Seed001Cluster {
            view: free_addrs(n),
            k,
            dir,
            procs: Vec::new(),
            dead: Vec::new(),
        };
        for me in cluster.view.clone() {
            cluster.spawn(me);
        }
        cluster
    }

    /// Starts one more node on a free port, its `VIEW` the nodes so far and itself; returns
    /// its address (its `IPPORT`).
    pub fn start_node(&mut self) -> SocketAddr {
        let me = free_addrs(1)[0];
        self.view.push(me);
        self.spawn(me);
        me
    }

    fn spawn(&mut self, me: SocketAddr) {
        let list = self
            .view
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let env = [
            ("K", self.k.to_string()),
            ("VIEW", list),
            ("IPPORT", me.to_string()),
        ];
        let name = format!("node {}", self.procs.len() + self.dead.len() + 1);
        let proc = Proc::spawn_env(&name, &["node".into()], &env, &self.dir);
        self.procs.push((me, proc));
    }

    /// Kills the node at `addr` and leaves it out of later nodes' `VIEW` (after it was
    /// removed with `update_view`).
    pub fn forget(&mut self, addr: SocketAddr) {
        self.view.retain(|a| *a != addr);
        if let Some(at) = self.procs.iter().position(|(a, _)| *a == addr) {
            let (_, mut proc) = self.procs.remove(at);
            proc.kill();
            self.dead.push(proc);
        }
    }

    /// A client session on the nodes' native protocol (served on the same port).
    pub fn client(&self) -> Client {
        Client::connect(self.view.clone(), ClientConfig::default()).expect("seeds given")
    }

    /// Waits until every partition has a leader; returns that status.
    pub async fn wait_until_led(&self) -> ClusterStatus {
        let client = self.client();
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            if let Ok(status) = client.cluster_status().await {
                if status.all_groups_led() {
                    return status;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader in every partition within {FORM_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Seed001Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in self.procs.iter().map(|(_, p)| p).chain(&self.dead) {
                print_tail(p);
            }
        }
    }
}
