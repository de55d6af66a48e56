//! One TCP connection to one node's (or the coordinator's) native endpoint.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kv_ports::kv::{KvCommand, KvError, KvResult};
use kv_ports::membership::{Epoch, SlotMap};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::native::frame::{ClientCodec, ClientFrame, FrameError, ServerFrame};
use crate::native::StatusReport;

/// Why one exchange over a connection has no usable answer.
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
    /// The endpoint refused the command without proposing it: an invalid command, or an
    /// endpoint that keeps no data (the coordinator).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The node could not decode what was sent and closed the connection.
    #[error("protocol error reported by the node: {0}")]
    Protocol(String),
    /// The node answered with a frame that does not answer the question (a peer speaking
    /// another version, or a bug); the connection's state is unknown, so it is dropped.
    #[error("unexpected answer: {0}")]
    Unexpected(&'static str),
}

/// A connection to one endpoint: send a command or a question, await its answer. One
/// exchange at a time, so answers to abandoned earlier commands are skipped by id.
pub struct Connection {
    framed: Framed<TcpStream, ClientCodec>,
}

/// What a frame that answers nothing asked is called in errors.
fn kind(frame: &ServerFrame) -> &'static str {
    match frame {
        ServerFrame::Reply { .. } => "a command reply",
        ServerFrame::Rejected { .. } => "a command rejection",
        ServerFrame::Error { .. } => "an error",
        ServerFrame::Map(_) => "a slot map",
        ServerFrame::Status(_) => "a status report",
        ServerFrame::Directive { .. } => "a coordinator directive",
        ServerFrame::Admin(_) => "an administrative answer",
        ServerFrame::Removed { .. } => "a removal notice",
        ServerFrame::QueryGroups => "a coordinator's query",
    }
}

impl Connection {
    /// Connects to the endpoint at `addr`, giving up after `timeout`. Sets TCP_NODELAY: every
    /// frame is a whole request awaiting its answer, so Nagle's delay would only add latency.
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
        loop {
            match self.next().await? {
                ServerFrame::Reply { id, result } if id == cmd.id => return Ok(result),
                ServerFrame::Rejected { id, message } if id == cmd.id => {
                    return Err(CallError::Rejected(message))
                }
                stale @ (ServerFrame::Reply { .. } | ServerFrame::Rejected { .. }) => {
                    tracing::trace!(?stale, "skipping an answer to an earlier command")
                }
                other => return Err(CallError::Unexpected(kind(&other))),
            }
        }
    }

    /// Asks for the endpoint's slot map if it is newer than `have` (`None`: not newer, or
    /// none formed yet).
    pub async fn fetch_map(&mut self, have: Epoch) -> Result<Option<SlotMap>, CallError> {
        self.framed.send(ClientFrame::GetMap { have }).await?;
        loop {
            match self.next().await? {
                ServerFrame::Map(map) => return Ok(map),
                ServerFrame::Reply { .. } | ServerFrame::Rejected { .. } => {}
                other => return Err(CallError::Unexpected(kind(&other))),
            }
        }
    }

    /// Asks the endpoint to describe itself.
    pub async fn fetch_status(&mut self) -> Result<StatusReport, CallError> {
        self.framed.send(ClientFrame::GetStatus).await?;
        loop {
            match self.next().await? {
                ServerFrame::Status(status) => return Ok(status),
                ServerFrame::Reply { .. } | ServerFrame::Rejected { .. } => {}
                other => return Err(CallError::Unexpected(kind(&other))),
            }
        }
    }

    /// The next frame; an end of stream or a protocol error report is an error.
    async fn next(&mut self) -> Result<ServerFrame, CallError> {
        match self.framed.next().await.ok_or(CallError::Closed)?? {
            ServerFrame::Error { message } => Err(CallError::Protocol(message)),
            frame => Ok(frame),
        }
    }
}
