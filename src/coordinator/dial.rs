//! Where a coordinator is reached: on a port of its own (`kv bootstrap`), or inside a data node
//! behind the node's one shared port (seed 001: the node at `VIEW[0]` runs it), where the
//! connection must first say [`PREAMBLE`] so the node's multiplexer hands it to the
//! coordinator rather than to the node's own client endpoint.

use std::fmt;
use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// What a connection to a coordinator behind a node's shared port starts with (as the link's
/// `KVL1`): the multiplexer reads it off and hands the rest, native frames, to the coordinator.
pub const PREAMBLE: [u8; 4] = *b"KVC1";

/// A coordinator's address and whether it sits behind a node's shared port.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoordinatorAddr {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Whether to send [`PREAMBLE`] first (a coordinator embedded in a node).
    pub shared: bool,
}

impl CoordinatorAddr {
    /// A coordinator listening on a port of its own.
    pub fn direct(addr: SocketAddr) -> CoordinatorAddr {
        CoordinatorAddr {
            addr,
            shared: false,
        }
    }

    /// A coordinator embedded in the node at `addr`, behind its shared port.
    pub fn shared(addr: SocketAddr) -> CoordinatorAddr {
        CoordinatorAddr { addr, shared: true }
    }

    /// Connects, with the preamble written when the coordinator is behind a shared port.
    pub async fn connect(&self) -> std::io::Result<TcpStream> {
        let mut stream = TcpStream::connect(self.addr).await?;
        let _ = stream.set_nodelay(true);
        if self.shared {
            stream.write_all(&PREAMBLE).await?;
        }
        Ok(stream)
    }
}

impl From<SocketAddr> for CoordinatorAddr {
    fn from(addr: SocketAddr) -> Self {
        CoordinatorAddr::direct(addr)
    }
}

impl fmt::Display for CoordinatorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shared {
            write!(f, "{} (inside the node there)", self.addr)
        } else {
            write!(f, "{}", self.addr)
        }
    }
}
