//! Shared helpers for the RESP integration tests: a server on `127.0.0.1:0` backed by
//! `MemoryService`, and raw-byte request/reply helpers with timeouts (so a bug fails a test
//! instead of hanging it).
#![allow(dead_code)] // each test file uses a different subset

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kv::resp::{serve_with, Dialect, ServerConfig};
use kv::service::{KvService, MemoryService};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any single read may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A RESP server running in the test's runtime. Dropping it (also when a test panics) tells
/// it to stop; [`TestServer::stop`] also waits and checks that it stopped cleanly.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    /// A server in `dialect` over an empty `MemoryService`.
    pub async fn start(dialect: Dialect) -> TestServer {
        let config = ServerConfig {
            dialect,
            ..ServerConfig::default()
        };
        Self::start_with(config, Arc::new(MemoryService::new())).await
    }

    /// A server with `config` over `service`.
    pub async fn start_with(config: ServerConfig, service: Arc<dyn KvService>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve_with(listener, service, config, shutdown));
        TestServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A new client connection.
    pub async fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
    }

    /// Stops the server and waits until it has ended every connection.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        let result = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("server stops promptly")
            .expect("server task did not panic");
        result.expect("server returned Ok");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Encodes a command whose arguments are all text.
pub fn cmds(args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    cmd(&args)
}

/// Reads exactly `expected.len()` bytes and compares them with `expected`.
pub async fn expect(stream: &mut TcpStream, expected: &[u8]) {
    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut got))
        .await
        .expect("reply in time")
        .expect("read reply");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply bytes"
    );
}

/// Sends bytes without waiting for a reply.
pub async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write request");
}

/// Sends `request` and checks the reply is exactly `reply`.
pub async fn call(stream: &mut TcpStream, request: &[u8], reply: &[u8]) {
    stream.write_all(request).await.expect("write request");
    expect(stream, reply).await;
}

/// Reads one line (through CRLF): enough for status, error and integer replies.
pub async fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("line in time")
            .expect("read line");
        assert_eq!(n, 1, "connection closed mid-line after {line:?}");
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Asserts the server closes the connection with nothing more to say.
pub async fn expect_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest))
        .await
        .expect("server closes the connection");
    // A reset (the server closed with our bytes unread) is a close too.
    if read.is_ok() {
        assert!(rest.is_empty(), "unexpected bytes before close: {rest:?}");
    }
}
