//! `kv local`: a whole cluster on this machine in one command — the coordinator and the data
//! nodes as child processes of this one, then the REPL on it.
//!
//! Ports: coordinator on P, node i native on P+i, RESP on P+100+i, HTTP on P+200+i. Every
//! child has `KV_EXIT_WITH_PARENT` set and a pipe for standard input, so when this process
//! ends, however it ends, the pipe closes and every child stops.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kv::client::{Client, ClientConfig};

use super::shutdown::{self, PARENT_WATCH_ENV};
use crate::cli::LocalArgs;

/// How long the cluster may take to form and elect every group's leader.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// One child process, killed if still running when dropped.
struct Process {
    name: String,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The endpoints of one node.
struct Endpoints {
    native: SocketAddr,
    resp: SocketAddr,
    http: SocketAddr,
}

/// Starts the cluster, waits for it to serve, then runs the REPL (or waits for Ctrl-C).
pub async fn run(args: LocalArgs) -> anyhow::Result<()> {
    let plan = Plan::new(&args)?;
    plan.check_ports_free()?;
    let logs = log_dir(args.base_port)?;
    let exe = std::env::current_exe().context("cannot find the kv binary")?;
    let mut processes = vec![plan.start_coordinator(&exe, &logs)?];
    for (i, node) in plan.nodes.iter().enumerate() {
        processes.push(plan.start_node(&exe, &logs, i + 1, node)?);
    }
    let seeds: Vec<SocketAddr> = plan.nodes.iter().map(|n| n.native).collect();
    wait_until_led(&seeds, &mut processes, &logs).await?;
    print_table(&plan, &logs);
    if args.no_repl {
        println!("cluster running; Ctrl-C stops it");
        shutdown::requested().await;
    } else {
        // The coordinator too, so that `leave` finds it and `status` shows reconfigurations.
        let mut repl_seeds = seeds;
        repl_seeds.push(plan.coordinator);
        super::repl::open(repl_seeds).await?;
    }
    println!("stopping {} processes", processes.len());
    drop(processes);
    Ok(())
}

/// Where everything listens.
struct Plan {
    coordinator: SocketAddr,
    replication: u32,
    nodes: Vec<Endpoints>,
}

impl Plan {
    fn new(args: &LocalArgs) -> anyhow::Result<Plan> {
        if args.replication == 0 {
            bail!("--replication must be at least 1");
        }
        if args.nodes < args.replication {
            bail!(
                "--nodes {} is below --replication {}: no group could form",
                args.nodes,
                args.replication
            );
        }
        let top = u32::from(args.base_port) + 200 + args.nodes;
        if top > u32::from(u16::MAX) || args.base_port == 0 {
            bail!(
                "--base-port {} leaves no room for {} nodes (it uses up to base+200+nodes)",
                args.base_port,
                args.nodes
            );
        }
        let at = |offset: u32| {
            SocketAddr::from(([127, 0, 0, 1], (u32::from(args.base_port) + offset) as u16))
        };
        let nodes = (1..=args.nodes)
            .map(|i| Endpoints {
                native: at(i),
                resp: at(100 + i),
                http: at(200 + i),
            })
            .collect();
        Ok(Plan {
            coordinator: at(0),
            replication: args.replication,
            nodes,
        })
    }

    /// Fails early, naming the port, rather than letting one child die on a busy port.
    fn check_ports_free(&self) -> anyhow::Result<()> {
        let all = std::iter::once(self.coordinator)
            .chain(self.nodes.iter().flat_map(|n| [n.native, n.resp, n.http]));
        for addr in all {
            TcpListener::bind(addr).with_context(|| {
                format!("port {} is in use; pick another --base-port", addr.port())
            })?;
        }
        Ok(())
    }

    fn start_coordinator(&self, exe: &Path, logs: &Path) -> anyhow::Result<Process> {
        let mut cmd = Command::new(exe);
        cmd.arg("bootstrap")
            .arg("--listen")
            .arg(self.coordinator.to_string())
            .arg("--replication")
            .arg(self.replication.to_string())
            .arg("--min-nodes")
            .arg(self.nodes.len().to_string());
        spawn("coordinator", cmd, &logs.join("coordinator.log"))
    }

    fn start_node(
        &self,
        exe: &Path,
        logs: &Path,
        i: usize,
        node: &Endpoints,
    ) -> anyhow::Result<Process> {
        let mut cmd = Command::new(exe);
        cmd.arg("node")
            .arg("--listen")
            .arg(node.native.to_string())
            .arg("--bootstrap")
            .arg(self.coordinator.to_string())
            .arg("--resp")
            .arg(node.resp.to_string())
            .arg("--http")
            .arg(node.http.to_string());
        spawn(
            &format!("node {i}"),
            cmd,
            &logs.join(format!("node-{i}.log")),
        )
    }
}

fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Process> {
    let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    let child = cmd
        .env(PARENT_WATCH_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .with_context(|| format!("cannot start the {name}"))?;
    Ok(Process {
        name: name.to_owned(),
        child,
    })
}

fn log_dir(base_port: u16) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kv-local-{base_port}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Polls the cluster's status until every group has a leader; fails if a child exits first.
async fn wait_until_led(
    seeds: &[SocketAddr],
    processes: &mut [Process],
    logs: &Path,
) -> anyhow::Result<()> {
    let client = Client::connect(seeds.to_vec(), ClientConfig::default())?;
    let deadline = Instant::now() + FORM_TIMEOUT;
    loop {
        for p in processes.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                bail!(
                    "the {} exited ({status}); see its log in {}",
                    p.name,
                    logs.display()
                );
            }
        }
        if let Ok(status) = client.cluster_status().await {
            if status.all_groups_led() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the cluster did not elect every group's leader within {FORM_TIMEOUT:?}; logs in {}", logs.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_table(plan: &Plan, logs: &Path) {
    println!(
        "kv local: coordinator on {}, {} nodes, replication {}",
        plan.coordinator,
        plan.nodes.len(),
        plan.replication
    );
    println!(
        "{:<6} {:<18} {:<18} {:<18}",
        "node", "native", "resp", "http"
    );
    for (i, n) in plan.nodes.iter().enumerate() {
        println!(
            "{:<6} {:<18} {:<18} {:<18}",
            i + 1,
            n.native,
            n.resp,
            n.http
        );
    }
    println!("logs in {}", logs.display());
}
