//! The coordinator's one address, shared by two protocols.
//!
//! The seed gives the coordinator a single address (`coordinator_info`): clients send RESP
//! there, and it is also the only coordinator address a participant knows, so the participants'
//! bootstrap sessions (native frames) must arrive there too. Both kinds of peer speak first,
//! and their first bytes differ: a native frame starts with a 4-byte big-endian length no frame
//! reaches 2^24 bytes of (see [`MAX_FRAME_BYTES`]), so its first byte is always 0, while a RESP
//! request starts with `*` or with a command's text. The front door peeks at that byte and
//! relays the connection to the server for its protocol, each of which listens on loopback.
//!
//! The relay costs one loopback hop per request. [`crate::resp::serve`] and
//! [`crate::coordinator::serve`] take a listener, not accepted connections, so handing over
//! the socket itself would need an entry point on each that accepts a stream of connections.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::native::frame::MAX_FRAME_BYTES;

/// Connections relayed at once; more wait in the accept backlog.
pub const MAX_CONNECTIONS: usize = 10_000;

/// Pause after a failed `accept` (out of file descriptors, typically) so the loop does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

// A native frame's length prefix must keep its top byte zero for the sniffing to hold.
const _: () = assert!(MAX_FRAME_BYTES < 1 << 24);

/// Where each protocol is served.
#[derive(Clone, Copy, Debug)]
pub struct Backends {
    /// The bootstrap coordinator (native frames).
    pub native: SocketAddr,
    /// The RESP server.
    pub resp: SocketAddr,
}

impl Backends {
    /// The backend for a connection whose first byte is `first`.
    pub fn for_first_byte(&self, first: u8) -> SocketAddr {
        if first == 0 {
            self.native
        } else {
            self.resp
        }
    }
}

/// Relays every connection accepted on `listener` to its backend until `shutdown` completes,
/// then drops every relay.
pub async fn serve(
    listener: TcpListener,
    backends: Backends,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut relays = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepting = relays.len() < MAX_CONNECTIONS;
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
            accepted = listener.accept(), if accepting => match accepted {
                Ok((stream, peer)) => {
                    relays.spawn(async move {
                        if let Err(e) = relay(stream, backends).await {
                            tracing::debug!(%peer, error = %e, "relay ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            },
        }
    }
    relays.shutdown().await;
    Ok(())
}

/// Waits for the peer's first byte, then copies both ways between it and the backend.
async fn relay(mut client: TcpStream, backends: Backends) -> io::Result<()> {
    let mut first = [0u8; 1];
    if client.peek(&mut first).await? == 0 {
        return Ok(());
    }
    let mut backend = TcpStream::connect(backends.for_first_byte(first[0])).await?;
    let _ = client.set_nodelay(true);
    let _ = backend.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut client, &mut backend).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn native_frames_and_resp_requests_go_apart() {
        let backends = Backends {
            native: "127.0.0.1:1".parse().expect("addr"),
            resp: "127.0.0.1:2".parse().expect("addr"),
        };
        let frame_prefix = u32::try_from(MAX_FRAME_BYTES).expect("fits").to_be_bytes();
        assert_eq!(backends.for_first_byte(frame_prefix[0]), backends.native);
        for request in [&b"*1\r\n$4\r\nPING\r\n"[..], b"GET k\r\n", b"SET k v\r\n"] {
            assert_eq!(backends.for_first_byte(request[0]), backends.resp);
        }
    }

    /// A backend that answers each connection with `tag` and then echoes what it reads.
    async fn backend(tag: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let _ = s.write_all(tag).await;
                    let _ = s.write_all(&buf[..n]).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn each_connection_reaches_its_backend_with_its_bytes_intact() {
        let backends = Backends {
            native: backend(b"native:").await,
            resp: backend(b"resp:").await,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let front = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, backends, async {
            let _ = stopped.await;
        }));
        for (sent, expected) in [
            (&b"\0\0\0\x01x"[..], &b"native:\0\0\0\x01x"[..]),
            (b"GET k\r\n", b"resp:GET k\r\n"),
        ] {
            let mut c = TcpStream::connect(front).await.expect("connect");
            c.write_all(sent).await.expect("write");
            let mut got = vec![0u8; expected.len()];
            c.read_exact(&mut got).await.expect("read");
            assert_eq!(got, expected);
        }
        let _ = stop.send(());
        server.await.expect("task").expect("serve");
    }
}
