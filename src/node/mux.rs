//! One port for everything a node serves: the node-to-node link, the native client protocol
//! and HTTP (when the node is asked to serve it on that port, as seed 001's static view
//! needs), told apart by the first bytes of each connection.
//!
//! A node is known to its peers and to clients by one address (the static view of seed 001
//! and the participants of seed 002 name nodes by a single `ip:port`), so the node's
//! `--listen` port carries all of them. The three protocols differ from their very first
//! bytes:
//!
//! * a link dialer writes the [`PREAMBLE`] `KVL1` before its `Hello`;
//! * an HTTP request starts with its method, ASCII uppercase letters;
//! * a native client frame starts with a big-endian `u32` length whose first byte is 0 for
//!   any frame under 16 MiB, and never a letter (native frames are capped far below 1 GiB).
//!
//! The multiplexer only *peeks*: nothing is consumed, so whichever component receives the
//! stream reads it from its first byte (the link checks the preamble itself; a native client's
//! length prefix is intact). A connection that sends nothing decisive within
//! [`MuxConfig::sniff_timeout`] is closed, so silent sockets cannot pile up. Connections being
//! sniffed are capped ([`MuxConfig::max_pending`]); beyond that the mux stops accepting and
//! further connections wait in the kernel's backlog.
//!
//! The decision ([`classify`]) is a pure function of the bytes seen; the task around it only
//! does I/O. HTTP connections go to an HTTP server fed by [`serve_http`].

use std::net::SocketAddr;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use kameo::actor::WeakActorRef;
use kv_components::perfect_link::{AdoptStream, PerfectLink, PREAMBLE};
use kv_components::task::{tell_weak, TaskGuard};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::http::{self, HandedStreams, HttpState};
use crate::native::{AdoptClient, ClientEndpoint};

/// The protocol a connection speaks, as told by its first bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Node-to-node perfect link (starts with [`PREAMBLE`]).
    Link,
    /// The native client protocol (anything else that does not start with a letter).
    Native,
    /// HTTP (starts with an uppercase ASCII letter, the request method).
    Http,
}

/// Bytes enough to decide in every case (the length of [`PREAMBLE`]).
pub const SNIFF_LEN: usize = PREAMBLE.len();

/// The protocol of a connection whose first bytes are `prefix`, or `None` when more bytes
/// are needed: only while `prefix` is a strict prefix of [`PREAMBLE`] (`K`, `KV`, `KVL`),
/// which could still turn out to be the link or an HTTP method. With [`SNIFF_LEN`] bytes or
/// more the answer is always `Some`. An empty prefix needs more bytes.
pub fn classify(prefix: &[u8]) -> Option<Protocol> {
    let first = *prefix.first()?;
    let seen = prefix.len().min(PREAMBLE.len());
    if prefix[..seen] == PREAMBLE[..seen] {
        return (seen == PREAMBLE.len()).then_some(Protocol::Link);
    }
    if first.is_ascii_uppercase() {
        Some(Protocol::Http)
    } else {
        Some(Protocol::Native)
    }
}

/// An HTTP connection handed to the HTTP front end, nothing read from it.
#[derive(Debug)]
pub struct HttpConn {
    /// The accepted socket.
    pub stream: TcpStream,
    /// The remote address.
    pub from: SocketAddr,
}

impl From<HttpConn> for (TcpStream, SocketAddr) {
    fn from(conn: HttpConn) -> Self {
        (conn.stream, conn.from)
    }
}

/// HTTP connections sniffed but not yet taken by the HTTP server; beyond that the mux closes
/// new ones (the server takes each at once, so only a stalled server lets this fill up).
pub const HTTP_INBOX: usize = 256;

/// Starts the HTTP front end over `state` on the connections the mux hands it: returns the
/// inbox to put in [`Targets::http`] and the task serving it (dropping the guard stops the
/// server). `local` is the address the server reports as its own (the shared port).
pub fn serve_http(state: HttpState, local: SocketAddr) -> (mpsc::Sender<HttpConn>, TaskGuard) {
    let (inbox, handed) = mpsc::channel(HTTP_INBOX);
    let task = TaskGuard::spawn(async move {
        tracing::info!(listen = %local, "HTTP front end on the node's shared port");
        let listener = HandedStreams::<HttpConn>::new(handed, local);
        if let Err(e) = http::serve_on(listener, state, std::future::pending()).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    (inbox, task)
}

/// Where the multiplexer hands connections. Weak references: the mux never keeps a
/// component alive, and a connection for a component that stopped is closed.
pub struct Targets {
    /// The node's perfect link, started with `PerfectLink::start_shared`.
    pub link: WeakActorRef<PerfectLink>,
    /// The native client endpoint, started with `ClientEndpoint::start_shared`.
    pub native: WeakActorRef<ClientEndpoint>,
    /// The HTTP front end's inbox, if the node serves HTTP on this port; without one (or
    /// when it is full or closed) HTTP connections are closed.
    pub http: Option<mpsc::Sender<HttpConn>>,
}

/// How the multiplexer sniffs.
#[derive(Clone, Debug)]
pub struct MuxConfig {
    /// A connection that has not sent enough to be classified by then is closed.
    pub sniff_timeout: Duration,
    /// Most connections being sniffed at once; beyond that accepting pauses.
    pub max_pending: usize,
}

impl Default for MuxConfig {
    fn default() -> Self {
        MuxConfig {
            sniff_timeout: Duration::from_secs(2),
            max_pending: 1024,
        }
    }
}

/// Why a connection was closed without being handed over.
#[derive(Debug, thiserror::Error)]
pub enum SniffError {
    /// The peer closed before sending enough.
    #[error("closed before saying anything decisive")]
    Closed,
    /// The peer sent too little within the timeout.
    #[error("nothing decisive within {0:?}")]
    Silent(Duration),
    /// Reading failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// How long to wait before peeking again at a connection that sent only part of the
/// preamble: a peek returns at once while unread bytes are there, so looping on it would spin.
const PARTIAL_WAIT: Duration = Duration::from_millis(5);

/// Serves `listener` until the returned guard is dropped: sniffs every connection and hands
/// it to its protocol's component.
pub fn serve(listener: TcpListener, targets: Targets, config: MuxConfig) -> TaskGuard {
    TaskGuard::spawn(async move {
        let max_pending = config.max_pending.max(1);
        let mut pending = FuturesUnordered::new();
        loop {
            tokio::select! {
                accepted = listener.accept(), if pending.len() < max_pending => match accepted {
                    Ok((stream, from)) => {
                        let timeout = config.sniff_timeout;
                        pending.push(async move {
                            let sniffed = sniff(&stream, timeout).await;
                            (stream, from, sniffed)
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "mux: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some((stream, from, sniffed)) = pending.next(), if !pending.is_empty() => {
                    match sniffed {
                        Ok(protocol) => hand_over(&targets, protocol, stream, from),
                        Err(e) => tracing::debug!(%from, error = %e, "mux: connection closed"),
                    }
                }
            }
        }
    })
}

/// Peeks at the first bytes of `stream` until [`classify`] decides, within `timeout`.
pub async fn sniff(stream: &TcpStream, timeout: Duration) -> Result<Protocol, SniffError> {
    let peeking = async {
        let mut buf = [0u8; SNIFF_LEN];
        loop {
            let n = stream.peek(&mut buf).await?;
            if n == 0 {
                return Err(SniffError::Closed);
            }
            if let Some(protocol) = classify(&buf[..n]) {
                return Ok(protocol);
            }
            tokio::time::sleep(PARTIAL_WAIT).await;
        }
    };
    tokio::time::timeout(timeout, peeking)
        .await
        .map_err(|_| SniffError::Silent(timeout))?
}

/// Gives the stream to its protocol's component; dropping it instead closes it.
fn hand_over(targets: &Targets, protocol: Protocol, stream: TcpStream, from: SocketAddr) {
    tracing::trace!(%from, ?protocol, "mux: connection sniffed");
    let handed = match protocol {
        Protocol::Link => tell_weak(&targets.link, AdoptStream { stream, from }),
        Protocol::Native => tell_weak(&targets.native, AdoptClient { stream, from }),
        Protocol::Http => match &targets.http {
            Some(http) => http.try_send(HttpConn { stream, from }).is_ok(),
            None => false,
        },
    };
    if !handed {
        tracing::debug!(%from, ?protocol, "mux: no taker; connection closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preamble_is_the_link() {
        assert_eq!(classify(b"KVL1"), Some(Protocol::Link));
        assert_eq!(classify(b"KVL1\0\0\0\x20"), Some(Protocol::Link));
    }

    #[test]
    fn a_partial_preamble_needs_more_bytes() {
        assert_eq!(classify(b""), None);
        assert_eq!(classify(b"K"), None);
        assert_eq!(classify(b"KV"), None);
        assert_eq!(classify(b"KVL"), None);
    }

    #[test]
    fn methods_are_http() {
        for req in [
            &b"GET / HTTP/1.1"[..],
            b"POST",
            b"PUT ",
            b"DELETE",
            b"HEAD",
            b"OPTIONS",
        ] {
            assert_eq!(classify(req), Some(Protocol::Http), "{req:?}");
        }
        // Diverging from the preamble after a shared `K`: still a letter first.
        assert_eq!(classify(b"KX"), Some(Protocol::Http));
        assert_eq!(classify(b"KVL2"), Some(Protocol::Http));
    }

    #[test]
    fn length_prefixes_and_garbage_are_native() {
        assert_eq!(classify(&[0]), Some(Protocol::Native));
        assert_eq!(classify(&[0, 0, 0, 12]), Some(Protocol::Native));
        assert_eq!(classify(&[0xff, 0xff]), Some(Protocol::Native));
        assert_eq!(classify(b"get"), Some(Protocol::Native));
        assert_eq!(classify(b"*2\r\n"), Some(Protocol::Native));
    }

    #[test]
    fn native_frames_never_start_with_a_letter() {
        // The largest native frame's first length byte is below b'A'.
        let max = crate::native::frame::MAX_FRAME_BYTES as u32;
        assert!(max.to_be_bytes()[0] < b'A');
    }
}
