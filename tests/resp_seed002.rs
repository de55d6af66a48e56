//! Seed 002's RESP dialect, byte for byte, including the seed's own examples.

mod resp_support;

use std::sync::Arc;

use kv::resp::{Dialect, ServerConfig};
use kv::service::{KvService, Pending, ServiceError};
use kv_ports::kv::{KvOp, MAX_KEY_BYTES};
use resp_support::{call, cmds, expect_closed, TestServer};

#[tokio::test]
async fn the_seeds_examples() {
    let server = TestServer::start(Dialect::Seed002).await;
    let mut c = server.connect().await;
    call(
        &mut c,
        b"*4\r\n$3\r\nSET\r\n$7\r\nCS06142\r\n$5\r\nCloud\r\n$9\r\nComputing\r\n",
        b"+OK\r\n",
    )
    .await;
    call(
        &mut c,
        b"*2\r\n$3\r\nGET\r\n$7\r\nCS06142\r\n",
        b"*2\r\n$5\r\nCloud\r\n$9\r\nComputing\r\n",
    )
    .await;
    call(
        &mut c,
        b"*2\r\n$3\r\nGET\r\n$5\r\nCS162\r\n",
        b"*1\r\n$3\r\nnil\r\n",
    )
    .await;
    call(
        &mut c,
        b"*3\r\n$3\r\nDEL\r\n$7\r\nCS06142\r\n$5\r\nCS162\r\n",
        b":1\r\n",
    )
    .await;
    call(
        &mut c,
        b"*2\r\n$3\r\nGET\r\n$7\r\nCS06142\r\n",
        b"*1\r\n$3\r\nnil\r\n",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn single_words_and_overwrites() {
    let server = TestServer::start(Dialect::Seed002).await;
    let mut c = server.connect().await;
    call(&mut c, &cmds(&["SET", "k", "one"]), b"+OK\r\n").await;
    call(&mut c, &cmds(&["GET", "k"]), b"*1\r\n$3\r\none\r\n").await;
    call(&mut c, &cmds(&["SET", "k", "a", "b", "c"]), b"+OK\r\n").await;
    call(
        &mut c,
        &cmds(&["GET", "k"]),
        b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
    )
    .await;
    // Inline commands work in this dialect too.
    call(&mut c, b"SET w Cloud Computing\r\n", b"+OK\r\n").await;
    call(
        &mut c,
        b"GET w\r\n",
        b"*2\r\n$5\r\nCloud\r\n$9\r\nComputing\r\n",
    )
    .await;
    call(&mut c, &cmds(&["DEL", "k", "w", "k"]), b":2\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn every_error_is_exactly_error() {
    let server = TestServer::start(Dialect::Seed002).await;
    let mut c = server.connect().await;
    let big_key = "k".repeat(MAX_KEY_BYTES + 1);
    for request in [
        cmds(&["set", "k", "v"]), // the seed's commands are case sensitive
        cmds(&["get", "k"]),
        cmds(&["PING"]),
        cmds(&["SET", "k"]),
        cmds(&["GET"]),
        cmds(&["GET", "a", "b"]),
        cmds(&["DEL"]),
        cmds(&["SET", &big_key, "v"]),
    ] {
        call(&mut c, &request, b"-ERROR\r\n").await;
    }
    call(&mut c, &cmds(&["GET", "k"]), b"*1\r\n$3\r\nnil\r\n").await;
    call(&mut c, b"*1\r\n$x\r\n", b"-ERROR\r\n").await;
    expect_closed(&mut c).await;
    server.stop().await;
}

/// A store with no quorum.
struct Down;

impl KvService for Down {
    fn execute(&self, _op: KvOp) -> Pending<'_> {
        Box::pin(async { Err(ServiceError::Unavailable("no quorum".into())) })
    }
}

#[tokio::test]
async fn an_unavailable_store_answers_error() {
    let config = ServerConfig {
        dialect: Dialect::Seed002,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Arc::new(Down)).await;
    let mut c = server.connect().await;
    for request in [
        cmds(&["SET", "k", "v"]),
        cmds(&["GET", "k"]),
        cmds(&["DEL", "k"]),
    ] {
        call(&mut c, &request, b"-ERROR\r\n").await;
    }
    server.stop().await;
}
