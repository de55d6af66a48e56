//! Every Redis-dialect command over raw bytes against a `MemoryService`-backed server:
//! success and error cases, byte for byte.

mod resp_support;

use std::sync::Arc;

use kv::resp::{Dialect, ServerConfig};
use kv::service::{KvService, Pending, ServiceError};
use kv_ports::kv::{KvOp, KvResult, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use resp_support::{call, cmds, expect_closed, read_line, send, TestServer};

#[tokio::test]
async fn ping_and_echo() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(&mut c, &cmds(&["PING"]), b"+PONG\r\n").await;
    call(&mut c, &cmds(&["ping", "hi there"]), b"$8\r\nhi there\r\n").await;
    call(
        &mut c,
        &cmds(&["PING", "a", "b"]),
        b"-ERR wrong number of arguments for 'ping' command\r\n",
    )
    .await;
    call(&mut c, &cmds(&["ECHO", ""]), b"$0\r\n\r\n").await;
    call(
        &mut c,
        &cmds(&["Echo"]),
        b"-ERR wrong number of arguments for 'echo' command\r\n",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn set_get_are_case_insensitive_and_binary_safe() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(&mut c, &cmds(&["GET", "k"]), b"$-1\r\n").await;
    call(&mut c, &cmds(&["set", "k", "v1"]), b"+OK\r\n").await;
    call(&mut c, &cmds(&["GeT", "k"]), b"$2\r\nv1\r\n").await;
    let binary = resp_support::cmd(&[b"SET", b"b\r\n", b"\0\r\n\xff"]);
    call(&mut c, &binary, b"+OK\r\n").await;
    call(
        &mut c,
        &resp_support::cmd(&[b"GET", b"b\r\n"]),
        b"$4\r\n\0\r\n\xff\r\n",
    )
    .await;
    call(
        &mut c,
        &cmds(&["GET"]),
        b"-ERR wrong number of arguments for 'get' command\r\n",
    )
    .await;
    call(
        &mut c,
        &cmds(&["SET", "k"]),
        b"-ERR wrong number of arguments for 'set' command\r\n",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn set_nx_and_xx() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(&mut c, &cmds(&["SET", "k", "a", "XX"]), b"$-1\r\n").await;
    call(&mut c, &cmds(&["GET", "k"]), b"$-1\r\n").await;
    call(&mut c, &cmds(&["SET", "k", "a", "nx"]), b"+OK\r\n").await;
    call(&mut c, &cmds(&["SET", "k", "b", "NX"]), b"$-1\r\n").await;
    call(&mut c, &cmds(&["GET", "k"]), b"$1\r\na\r\n").await;
    call(&mut c, &cmds(&["SET", "k", "c", "xx"]), b"+OK\r\n").await;
    call(&mut c, &cmds(&["GET", "k"]), b"$1\r\nc\r\n").await;
    call(
        &mut c,
        &cmds(&["SET", "k", "d", "NX", "XX"]),
        b"-ERR syntax error\r\n",
    )
    .await;
    call(&mut c, &cmds(&["SET", "k", "d", "NX", "NX"]), b"$-1\r\n").await;
    call(
        &mut c,
        &cmds(&["SET", "k", "d", "FOO"]),
        b"-ERR syntax error\r\n",
    )
    .await;
    call(
        &mut c,
        &cmds(&["SET", "k", "d", "EX", "10"]),
        b"-ERR expiry (SET EX/PX/...) is not supported by kv\r\n",
    )
    .await;
    call(&mut c, &cmds(&["GET", "k"]), b"$1\r\nc\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn del_exists_mget_mset() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(&mut c, &cmds(&["MSET", "a", "1", "b", "2"]), b"+OK\r\n").await;
    call(
        &mut c,
        &cmds(&["MSET", "a", "1", "b"]),
        b"-ERR wrong number of arguments for 'mset' command\r\n",
    )
    .await;
    call(
        &mut c,
        &cmds(&["MGET", "a", "x", "b"]),
        b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n",
    )
    .await;
    call(&mut c, &cmds(&["EXISTS", "a", "x", "a"]), b":2\r\n").await;
    call(&mut c, &cmds(&["DEL", "a", "x", "b", "a"]), b":2\r\n").await;
    call(&mut c, &cmds(&["EXISTS", "a", "b"]), b":0\r\n").await;
    for name in ["del", "exists", "mget"] {
        let reply = format!("-ERR wrong number of arguments for '{name}' command\r\n");
        call(&mut c, &cmds(&[name]), reply.as_bytes()).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn cas_extension() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(&mut c, &cmds(&["CAS", "k", "a", "b"]), b":0\r\n").await;
    call(&mut c, &cmds(&["SET", "k", "a"]), b"+OK\r\n").await;
    call(&mut c, &cmds(&["CAS", "k", "x", "b"]), b":0\r\n").await;
    call(&mut c, &cmds(&["cas", "k", "a", "b"]), b":1\r\n").await;
    call(&mut c, &cmds(&["GET", "k"]), b"$1\r\nb\r\n").await;
    call(
        &mut c,
        &cmds(&["CAS", "k", "b"]),
        b"-ERR wrong number of arguments for 'cas' command\r\n",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn quit_replies_then_closes() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(&mut c, &cmds(&["QUIT"]), b"+OK\r\n").await;
    expect_closed(&mut c).await;
    let mut other = server.connect().await;
    call(&mut other, &cmds(&["PING"]), b"+PONG\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn start_up_chatter_of_redis_tools() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(&mut c, &cmds(&["COMMAND"]), b"*0\r\n").await;
    call(&mut c, &cmds(&["COMMAND", "DOCS"]), b"*0\r\n").await;
    call(&mut c, &cmds(&["COMMAND", "COUNT"]), b":0\r\n").await;
    call(
        &mut c,
        &cmds(&["CONFIG", "GET", "save"]),
        b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n",
    )
    .await;
    call(
        &mut c,
        &cmds(&["CONFIG", "GET", "appendonly"]),
        b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
    )
    .await;
    call(&mut c, &cmds(&["config", "get", "maxmemory"]), b"*0\r\n").await;
    call(
        &mut c,
        &cmds(&["CONFIG", "SET", "save", ""]),
        b"-ERR CONFIG SET is not supported by kv\r\n",
    )
    .await;
    call(&mut c, &cmds(&["CLIENT", "SETNAME", "me"]), b"+OK\r\n").await;
    call(
        &mut c,
        &cmds(&["CLIENT", "SETINFO", "lib-name", "x"]),
        b"+OK\r\n",
    )
    .await;
    call(&mut c, &cmds(&["CLIENT", "GETNAME"]), b"$-1\r\n").await;
    call(
        &mut c,
        &cmds(&["HELLO", "3"]),
        b"-NOPROTO unsupported protocol version\r\n",
    )
    .await;
    send(&mut c, &cmds(&["INFO"])).await;
    let header = read_line(&mut c).await;
    let len: usize = header[1..header.len() - 2].parse().expect("bulk length");
    let mut body = vec![0u8; len + 2];
    tokio::io::AsyncReadExt::read_exact(&mut c, &mut body)
        .await
        .expect("info body");
    let body = String::from_utf8(body).expect("utf-8");
    assert!(
        body.starts_with("# Server\r\nredis_version:7.0.0-kv\r\n"),
        "{body}"
    );
    send(&mut c, &cmds(&["HELLO", "2"])).await;
    assert_eq!(read_line(&mut c).await, "*14\r\n");
    server.stop().await;
}

#[tokio::test]
async fn unknown_commands_are_named() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    call(
        &mut c,
        &cmds(&["FOO", "a", "b"]),
        b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n",
    )
    .await;
    call(
        &mut c,
        &cmds(&["bar\r\n+OK"]),
        b"-ERR unknown command 'bar  +OK', with args beginning with: \r\n",
    )
    .await;
    call(&mut c, &cmds(&["PING"]), b"+PONG\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_keys_and_values_change_nothing() {
    let server = TestServer::start(Dialect::Redis).await;
    let mut c = server.connect().await;
    let big_key = "k".repeat(MAX_KEY_BYTES + 1);
    let key_error = format!(
        "-ERR key too large: {} bytes, the limit is {MAX_KEY_BYTES}\r\n",
        MAX_KEY_BYTES + 1
    );
    call(&mut c, &cmds(&["SET", &big_key, "v"]), key_error.as_bytes()).await;
    call(&mut c, &cmds(&["GET", &big_key]), key_error.as_bytes()).await;
    call(&mut c, &cmds(&["DEL", "a", &big_key]), key_error.as_bytes()).await;
    let big_value = "v".repeat(MAX_VALUE_BYTES + 1);
    let value_error = format!(
        "-ERR value too large: {} bytes, the limit is {MAX_VALUE_BYTES}\r\n",
        MAX_VALUE_BYTES + 1
    );
    call(
        &mut c,
        &cmds(&["SET", "k", &big_value]),
        value_error.as_bytes(),
    )
    .await;
    call(
        &mut c,
        &cmds(&["MSET", "a", "1", "k", &big_value]),
        value_error.as_bytes(),
    )
    .await;
    call(&mut c, &cmds(&["MGET", "a", "k"]), b"*2\r\n$-1\r\n$-1\r\n").await;
    let max_value = "v".repeat(MAX_VALUE_BYTES);
    call(&mut c, &cmds(&["SET", "k", &max_value]), b"+OK\r\n").await;
    call(
        &mut c,
        &cmds(&["STRLEN", "k"]),
        b"-ERR unknown command 'STRLEN', with args beginning with: 'k' \r\n",
    )
    .await;
    server.stop().await;
}

/// A store that fails every operation the same way.
struct Failing(ServiceError);

impl KvService for Failing {
    fn execute(&self, _op: KvOp) -> Pending<'_> {
        let e = self.0.clone();
        Box::pin(async move { Err(e) })
    }
}

#[tokio::test]
async fn service_errors_become_err_replies() {
    let cases = [
        (
            ServiceError::Unknown("t/o".into()),
            "-ERR timeout: outcome unknown\r\n",
        ),
        (
            ServiceError::Unavailable("no leader".into()),
            "-ERR unavailable: no leader\r\n",
        ),
        (ServiceError::Rejected("bad key".into()), "-ERR bad key\r\n"),
    ];
    for (error, reply) in cases {
        let server =
            TestServer::start_with(ServerConfig::default(), Arc::new(Failing(error))).await;
        let mut c = server.connect().await;
        for request in [
            cmds(&["GET", "k"]),
            cmds(&["SET", "k", "v"]),
            cmds(&["SET", "k", "v", "XX"]),
            cmds(&["DEL", "k"]),
            cmds(&["CAS", "k", "a", "b"]),
        ] {
            call(&mut c, &request, reply.as_bytes()).await;
        }
        call(&mut c, &cmds(&["PING"]), b"+PONG\r\n").await;
        server.stop().await;
    }
}

/// A key that always exists and always changes before a swap lands.
struct Churning;

impl KvService for Churning {
    fn execute(&self, op: KvOp) -> Pending<'_> {
        let result = match op {
            KvOp::Get { .. } => KvResult::Value(Some(bytes::Bytes::from_static(b"old"))),
            KvOp::Cas { .. } => KvResult::Swapped(false),
            KvOp::Put { .. } => KvResult::Written,
            KvOp::Delete { .. } => KvResult::Deleted(true),
            KvOp::Freeze { .. } | KvOp::InstallPart { .. } | KvOp::Install { .. } => {
                unreachable!("RESP sends client ops")
            }
        };
        Box::pin(async move { Ok(result) })
    }
}

#[tokio::test]
async fn set_xx_gives_up_with_an_error_when_it_keeps_losing_races() {
    let server = TestServer::start_with(ServerConfig::default(), Arc::new(Churning)).await;
    let mut c = server.connect().await;
    call(
        &mut c,
        &cmds(&["SET", "k", "v", "XX"]),
        b"-ERR SET XX: the key kept changing concurrently; nothing was written, retry\r\n",
    )
    .await;
    server.stop().await;
}
