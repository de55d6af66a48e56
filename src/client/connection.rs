//! One TCP connection to one node's native endpoint.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kv_ports::kv::{KvCommand, KvError, KvResult};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::native::frame::{ClientCodec, ClientFrame, FrameError, ServerFrame};

/// Why one attempt over a connection has no answer from the group.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The node could not be reached; nothing was sent.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// Connecting took longer than allowed; nothing was sent.
    #[error("connect timed out")]
    ConnectTimeout,
    /// Reading or writing failed; the command may have reached the node.
    #[error("connection failed: {0}")]
    Frame(#[from] FrameError),
    /// The node closed the connection before answering.
    #[error("connection closed by the node")]
    Closed,
    /// The node refused the command as invalid; retrying cannot help.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The node could not decode what was sent and closed the connection.
    #[error("protocol error reported by the node: {0}")]
    Protocol(String),
}

/// A connection to one node: send a command, await its answer. One command at a time, so
/// answers to abandoned earlier commands are skipped by id.
pub struct Connection {
    framed: Framed<TcpStream, ClientCodec>,
}

impl Connection {
    /// Connects to the endpoint at `addr`, giving up after `timeout`.
    pub async fn open(addr: SocketAddr, timeout: Duration) -> Result<Connection, CallError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| CallError::ConnectTimeout)?
            .map_err(CallError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            framed: Framed::new(stream, ClientCodec::default()),
        })
    }

    /// Sends `cmd` and waits for the group's answer to it.
    pub async fn call(&mut self, cmd: &KvCommand) -> Result<Result<KvResult, KvError>, CallError> {
        self.framed.send(ClientFrame::Request(cmd.clone())).await?;
        self.answer(cmd).await
    }

    async fn answer(&mut self, cmd: &KvCommand) -> Result<Result<KvResult, KvError>, CallError> {
        loop {
            match self.framed.next().await.ok_or(CallError::Closed)?? {
                ServerFrame::Reply { id, result } if id == cmd.id => return Ok(result),
                ServerFrame::Rejected { id, message } if id == cmd.id => {
                    return Err(CallError::Rejected(message))
                }
                ServerFrame::Error { message } => return Err(CallError::Protocol(message)),
                stale => tracing::trace!(?stale, "skipping an answer to an earlier command"),
            }
        }
    }
}
