//! The real `redis-cli` and `redis-benchmark` against the RESP server (Debian's redis-tools).
//! Each test prints a skip message and passes when its binary is not on PATH.

mod resp_support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use kv::resp::Dialect;
use resp_support::TestServer;

/// The binary's path if it is on PATH.
fn find(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

/// Runs a tool off the async runtime (the server needs the runtime while it runs).
async fn run(binary: PathBuf, args: Vec<String>, stdin: Option<Vec<u8>>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&binary)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tool");
        let input = child.stdin.take().expect("stdin");
        if let Some(bytes) = stdin {
            std::io::Write::write_all(&mut { input }, &bytes).expect("feed stdin");
        } else {
            drop(input);
        }
        child.wait_with_output().expect("tool output")
    })
    .await
    .expect("tool thread")
}

fn port_args(server: &TestServer) -> Vec<String> {
    vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        server.addr.port().to_string(),
    ]
}

async fn cli(server: &TestServer, args: &[&str]) -> String {
    let binary = find("redis-cli").expect("checked by caller");
    let mut all = port_args(server);
    all.extend(args.iter().map(|a| a.to_string()));
    let out = run(binary, all, None).await;
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_with_arguments_stdin_and_pipe_mode() {
    let Some(binary) = find("redis-cli") else {
        eprintln!("SKIP: redis-cli not on PATH (apt-get install redis-tools)");
        return;
    };
    let server = TestServer::start(Dialect::Redis).await;
    assert_eq!(cli(&server, &["set", "a", "b"]).await, "OK\n");
    assert_eq!(cli(&server, &["get", "a"]).await, "b\n");
    assert_eq!(cli(&server, &["exists", "a", "nope"]).await, "1\n");
    assert_eq!(cli(&server, &["cas", "a", "b", "c"]).await, "1\n");
    assert_eq!(cli(&server, &["mget", "a", "nope"]).await, "c\n\n");
    assert_eq!(cli(&server, &["del", "a"]).await, "1\n");
    assert_eq!(cli(&server, &["get", "a"]).await, "\n");
    assert_eq!(cli(&server, &["ping"]).await, "PONG\n");
    assert!(cli(&server, &["info"])
        .await
        .contains("redis_version:7.0.0-kv"));
    let err = cli(&server, &["frob"]).await;
    assert!(err.starts_with("ERR unknown command 'frob'"), "{err}");

    // Several commands on stdin, one connection.
    let script = b"set x 1\nset y \"two words\"\nmget x y\nquit\n".to_vec();
    let out = run(binary.clone(), port_args(&server), Some(script)).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK\nOK\n1\ntwo words\n"
    );

    // Pipe mode: raw RESP in, a summary out.
    let mut raw = Vec::new();
    for i in 0..1000 {
        raw.extend(resp_support::cmds(&[
            "SET",
            &format!("p{i}"),
            &i.to_string(),
        ]));
    }
    let mut args = port_args(&server);
    args.push("--pipe".into());
    let out = run(binary, args, Some(raw)).await;
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && summary.contains("errors: 0, replies: 1000"),
        "{out:?}"
    );
    assert_eq!(cli(&server, &["get", "p999"]).await, "999\n");
    server.stop().await;
}

async fn benchmark(server: &TestServer, extra: &[&str]) {
    let binary = find("redis-benchmark").expect("checked by caller");
    let mut args = port_args(server);
    args.extend(
        ["-t", "set,get", "-n", "2000", "-c", "10", "-q"]
            .iter()
            .chain(extra)
            .map(|a| a.to_string()),
    );
    let out = run(binary, args, None).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "redis-benchmark {extra:?}: {text}");
    assert!(text.contains("SET: ") && text.contains("GET: "), "{text}");
    for bad in ["ERR", "rror", "WARNING"] {
        assert!(
            !text.contains(bad),
            "redis-benchmark {extra:?} reported {bad}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_benchmark_completes_plain_and_pipelined() {
    if find("redis-benchmark").is_none() {
        eprintln!("SKIP: redis-benchmark not on PATH (apt-get install redis-tools)");
        return;
    }
    let server = TestServer::start(Dialect::Redis).await;
    benchmark(&server, &[]).await;
    benchmark(&server, &["-P", "16"]).await;
    server.stop().await;
}
