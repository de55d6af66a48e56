//! Throughput of the RESP front end next to a real `redis-server`, for the report. Ignored by
//! default (it takes a while and wants a release build):
//!
//! ```text
//! cargo test --release --test resp_bench -- --ignored --nocapture
//! ```
//!
//! Runs `redis-benchmark -t set,get -n 100000 -c 50`, plain and with `-P 16`, in one run
//! against three targets on the same machine:
//!
//! 1. `kv-node`: node 1's RESP port of a `kv local --no-repl` cluster (6 nodes, two groups of
//!    3): every SET is replicated by Sequence Paxos, every GET linearizable;
//! 2. `kv-frontend`: the RESP server over `MemoryService`, the front end alone;
//! 3. `redis-server` on a free port (`--save "" --appendonly no`), if installed.
//!
//! Every run must complete with no error in redis-benchmark's output. Prints one line per
//! target, mode and command with the requests per second.

mod resp_support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kv::resp::Dialect;
use resp_support::TestServer;

/// Runs redis-benchmark against `port`; fails on any error; returns its `-q` summary lines.
fn benchmark(port: u16, extra: &[&str]) -> Vec<String> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set,get", "-n", "100000", "-c", "50", "-q"])
        .args(extra)
        .output()
        .expect("run redis-benchmark");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<String> = text
        .lines()
        .filter_map(|line| line.rsplit('\r').next())
        .map(|line| line.trim().to_string())
        .filter(|line| !line.is_empty())
        .collect();
    for line in lines.iter().map(|l| l.as_str()).chain(errors.lines()) {
        assert!(
            !line.to_ascii_lowercase().contains("error"),
            "redis-benchmark reported an error on port {port}: {line}"
        );
    }
    let summary: Vec<String> = lines
        .into_iter()
        .filter(|line| line.starts_with("SET") || line.starts_with("GET"))
        .collect();
    assert_eq!(summary.len(), 2, "a SET and a GET summary: {text}");
    summary
}

fn report(target: &str, port: u16) {
    for extra in [&[][..], &["-P", "16"][..]] {
        for line in benchmark(port, extra) {
            println!("{target:<14} {:<6} {line}", extra.join(" "));
        }
    }
}

/// A child process, stopped when dropped: SIGTERM (so `kv local` stops its nodes cleanly),
/// then SIGKILL if it is still running 10 s later.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Option<u16> {
    Some(
        StdListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port(),
    )
}

fn start_redis_server() -> Option<(Killed, u16)> {
    let port = free_port()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let server = Killed(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((server, port));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A base port for `kv local` whose ports (P, P+i, P+100+i, P+200+i for 6 nodes) are free,
/// below Linux's ephemeral range.
fn local_base_port() -> u16 {
    let offsets: Vec<u16> = std::iter::once(0)
        .chain((1..=6).flat_map(|i| [i, 100 + i, 200 + i]))
        .collect();
    let start = 22_000 + (std::process::id() % 30) as u16 * 300;
    (0..30)
        .map(|i| 22_000 + (start - 22_000 + i * 300) % 9_000)
        .find(|&p| {
            offsets
                .iter()
                .all(|o| StdListener::bind(SocketAddr::from(([127, 0, 0, 1], p + o))).is_ok())
        })
        .expect("a free base port for kv local")
}

/// `kv local --no-repl` on free ports; returns it once it prints that the cluster runs, with
/// node 1's RESP port. Its nodes exit with it (their standard input is its pipe).
fn start_kv_local() -> (Killed, u16) {
    let base = local_base_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["local", "--no-repl", "--base-port", &base.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start kv local");
    let stdout = child.stdout.take().expect("piped");
    let local = Killed(child);
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("kv local's output");
        println!("kv local: {line}");
        if line.starts_with("cluster running") {
            // Keep reading, so what it prints while stopping finds its pipe open.
            std::thread::spawn(move || lines.for_each(drop));
            return (local, base + 101);
        }
    }
    panic!("kv local exited before the cluster ran (it gives up after 30 s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark for the report; run with --release -- --ignored --nocapture"]
async fn redis_benchmark_kv_node_and_front_end_vs_redis_server() {
    let (local, port) = tokio::task::spawn_blocking(start_kv_local)
        .await
        .expect("kv local thread");
    tokio::task::spawn_blocking(move || report("kv-node", port))
        .await
        .expect("benchmark thread");
    drop(local);

    let server = TestServer::start(Dialect::Redis).await;
    let port = server.addr.port();
    tokio::task::spawn_blocking(move || report("kv-frontend", port))
        .await
        .expect("benchmark thread");
    server.stop().await;

    match start_redis_server() {
        Some((_redis, port)) => report("redis-server", port),
        None => println!("SKIP: redis-server not available"),
    }
}
