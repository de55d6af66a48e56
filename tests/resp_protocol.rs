//! The RESP codec and connection handling over raw bytes: pipelining, partial frames, inline
//! commands, garbage, limits, admission control and shutdown.

mod resp_support;

use std::sync::Arc;
use std::time::Duration;

use kv::resp::{Dialect, Limits, ServerConfig};
use kv::service::MemoryService;
use resp_support::{call, cmds, expect, expect_closed, send, TestServer};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn a_pipeline_of_100_commands_is_answered_in_order() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    let (mut requests, mut replies) = (Vec::new(), Vec::new());
    for i in 0..50 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        requests.extend(cmds(&["SET", &key, &value]));
        replies.extend_from_slice(b"+OK\r\n");
        requests.extend(cmds(&["GET", &key]));
        replies.extend(format!("${}\r\n{value}\r\n", value.len()).into_bytes());
    }
    call(&mut c, &requests, &replies).await;
    server.stop().await;
}

#[tokio::test]
async fn a_command_split_byte_by_byte_is_assembled() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    for byte in cmds(&["SET", "key", "split value"]) {
        c.write_all(&[byte]).await.expect("write");
        c.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    expect(&mut c, b"+OK\r\n").await;
    for byte in b"GET key\r\n" {
        send(&mut c, &[*byte]).await;
    }
    expect(&mut c, b"$11\r\nsplit value\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn inline_commands_as_telnet_sends_them() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(&mut c, b"PING\r\n", b"+PONG\r\n").await;
    call(&mut c, b"set a \"b c\"\r\n", b"+OK\r\n").await;
    call(&mut c, b"GET a\n", b"$3\r\nb c\r\n").await;
    call(&mut c, b"\r\n\r\nEXISTS a\r\n", b":1\r\n").await;
    call(
        &mut c,
        b"GET \"a\r\n",
        b"-ERR Protocol error: unbalanced quotes in request\r\n",
    )
    .await;
    expect_closed(&mut c).await;
    server.stop().await;
}

/// Each garbage input gets its `-ERR Protocol error` and the connection closes, while the
/// server keeps serving a connection opened before and one opened after.
#[tokio::test]
async fn garbage_gets_a_protocol_error_and_a_close() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut bystander = server.connect().await;
    let cases: [(&[u8], &[u8]); 7] = [
        (
            b"*abc\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*-5\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$x\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$1\r\nab\r\n",
            b"-ERR Protocol error: expected CRLF after bulk string\r\n",
        ),
        (
            b"*1\r\n!\r\n",
            b"-ERR Protocol error: unknown type byte '!'\r\n",
        ),
        (
            b"*1\r\n:1\r\n",
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"+PING\r\n",
            b"-ERR Protocol error: expected '*', got '+'\r\n",
        ),
    ];
    for (garbage, reply) in cases {
        let mut c = server.connect().await;
        call(&mut c, &cmds(&["SET", "k", "v"]), b"+OK\r\n").await;
        call(&mut c, garbage, reply).await;
        expect_closed(&mut c).await;
        call(&mut bystander, &cmds(&["GET", "k"]), b"$1\r\nv\r\n").await;
    }
    let mut late = server.connect().await;
    call(&mut late, &cmds(&["PING"]), b"+PONG\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_bulk_length_closes_before_the_bytes_arrive() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(
        &mut c,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    )
    .await;
    expect_closed(&mut c).await;
    let mut c = server.connect().await;
    call(
        &mut c,
        b"*99999999\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
    )
    .await;
    expect_closed(&mut c).await;
    let mut c = server.connect().await;
    call(&mut c, &cmds(&["EXISTS", "k"]), b":0\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn a_frame_beyond_the_size_limit_closes_the_connection() {
    let config = ServerConfig {
        limits: Limits {
            max_frame_bytes: 1024,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Arc::new(MemoryService::new())).await;
    let mut c = server.connect().await;
    let value = "v".repeat(600);
    call(
        &mut c,
        &cmds(&["MSET", "a", &value, "b", &value]),
        b"-ERR Protocol error: request exceeds 1024 bytes\r\n",
    )
    .await;
    expect_closed(&mut c).await;
    let mut c = server.connect().await;
    call(&mut c, &cmds(&["MGET", "a", "b"]), b"*2\r\n$-1\r\n$-1\r\n").await;
    let long_inline = format!("GET {}\r\n", "k".repeat(70_000));
    send(&mut c, long_inline.as_bytes()).await;
    expect(&mut c, b"-ERR Protocol error: too big inline request\r\n").await;
    expect_closed(&mut c).await;
    server.stop().await;
}

#[tokio::test]
async fn empty_requests_are_ignored() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(
        &mut c,
        b"*0\r\n*-1\r\n\r\n*1\r\n$4\r\nPING\r\n",
        b"+PONG\r\n",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_politely() {
    let config = ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Arc::new(MemoryService::new())).await;
    let mut first = server.connect().await;
    call(&mut first, &cmds(&["PING"]), b"+PONG\r\n").await;
    let mut second = server.connect().await;
    expect(&mut second, b"-ERR max number of clients reached\r\n").await;
    expect_closed(&mut second).await;
    call(&mut first, &cmds(&["QUIT"]), b"+OK\r\n").await;
    drop(first);
    // The slot frees once the first connection's task has ended.
    for attempt in 0.. {
        let mut c = server.connect().await;
        send(&mut c, &cmds(&["PING"])).await;
        let line = resp_support::read_line(&mut c).await;
        if line == "+PONG\r\n" {
            break;
        }
        assert!(attempt < 100, "slot never freed: {line}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_connections() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut idle = server.connect().await;
    call(&mut idle, &cmds(&["PING"]), b"+PONG\r\n").await;
    let mut partial = server.connect().await;
    send(&mut partial, b"*2\r\n$3\r\nGET\r\n").await;
    server.stop().await;
    expect_closed(&mut idle).await;
    expect_closed(&mut partial).await;
}

/// The plain entry point, as the node and the seed 002 coordinator call it.
#[tokio::test]
async fn serve_runs_until_its_shutdown_future_completes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kv::resp::serve(
        listener,
        Arc::new(MemoryService::new()),
        Dialect::Seed002,
        async move {
            let _ = stopped.await;
        },
    ));
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    call(&mut c, &cmds(&["GET", "k"]), b"*1\r\n$3\r\nnil\r\n").await;
    stop.send(()).expect("server still running");
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("stops promptly")
        .expect("no panic");
    assert!(result.is_ok(), "{result:?}");
    expect_closed(&mut c).await;
}
