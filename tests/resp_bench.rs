//! Throughput of the RESP front end next to a real `redis-server`, for the report. Ignored by
//! default (it takes a while and wants a release build):
//!
//! ```text
//! cargo test --release --test resp_bench -- --ignored --nocapture
//! ```
//!
//! Runs `redis-benchmark -t set,get -n 100000 -c 50 -q`, plain and with `-P 16`, against the
//! RESP server over `MemoryService` (so it measures the front end, not replication), then
//! against `redis-server` on the same machine if installed.

mod resp_support;

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kv::resp::Dialect;
use resp_support::TestServer;

/// Runs redis-benchmark against `port` and returns its `-q` summary lines.
fn benchmark(port: u16, extra: &[&str]) -> Vec<String> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set,get", "-n", "100000", "-c", "50", "-q"])
        .args(extra)
        .output()
        .expect("run redis-benchmark");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|line| line.rsplit('\r').next())
        .filter(|line| line.starts_with("SET") || line.starts_with("GET"))
        .map(|line| line.trim().to_string())
        .collect()
}

fn report(target: &str, port: u16) {
    for extra in [&[][..], &["-P", "16"][..]] {
        for line in benchmark(port, extra) {
            println!("{target:<14} {:<6} {line}", extra.join(" "));
        }
    }
}

/// A `redis-server` on a free port, killed when dropped.
struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis_server() -> Option<(RedisServer, u16)> {
    let port = StdListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let server = RedisServer(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((server, port));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark for the report; run with --release -- --ignored --nocapture"]
async fn redis_benchmark_kv_resp_vs_redis_server() {
    let server = TestServer::start(Dialect::Redis).await;
    let port = server.addr.port();
    tokio::task::spawn_blocking(move || report("kv-resp", port))
        .await
        .expect("benchmark thread");
    server.stop().await;
    match start_redis_server() {
        Some((_redis, port)) => report("redis-server", port),
        None => println!("SKIP: redis-server not available"),
    }
}
