//! Talking to seed 001 nodes over HTTP as the seed's harness does (curl-like requests on a
//! fresh connection each), for the seed 001 tests.
#![allow(dead_code)] // each test file uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one HTTP exchange may take (an `update_view` waits for the change).
pub const WAIT: Duration = Duration::from_secs(60);

/// An HTTP answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

/// Sends `request` raw on a fresh connection and reads the answer until the node closes.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        answer
    };
    let answer = tokio::time::timeout(WAIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer from {addr} within {WAIT:?}"));
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let start = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |i| i + 4);
    (status, answer[start..].to_vec())
}

/// `method target` with an optional form body, as curl sends it.
pub async fn call(addr: SocketAddr, method: &str, target: &str, form: Option<&str>) -> Answer {
    let body = form.unwrap_or("");
    let content = match form {
        Some(_) => "Content-Type: application/x-www-form-urlencoded\r\n",
        None => "",
    };
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{content}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = raw(addr, request.as_bytes()).await;
    let body = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{method} {target}: not JSON ({e}): {:?}",
            String::from_utf8_lossy(&body)
        )
    });
    Answer { status, body }
}

/// Seed 001's error body.
pub fn error(message: &str) -> Value {
    json!({"result": "error", "error": message})
}

/// Seed 001's answer to `get_partition_members` listing `addrs`.
pub fn members(addrs: &[SocketAddr]) -> Value {
    json!({
        "result": "success",
        "partition_members": addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}
