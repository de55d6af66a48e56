//! One question over one short-lived native connection: the map or the status of the
//! coordinator or of a data node (both answer these frames). Used by tests, the CLI and
//! anything that needs a view once rather than a session.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kv_ports::membership::{Epoch, SlotMap};
use tokio_util::codec::Framed;

use super::dial::CoordinatorAddr;
use crate::native::frame::FrameError;
use crate::native::{
    AdminAnswer, AdminRequest, ClientCodec, ClientFrame, ServerFrame, StatusReport,
};

/// Why a question got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Nothing listens at the address (or it cannot be reached).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address asked.
        addr: SocketAddr,
        /// Why connecting failed.
        source: std::io::Error,
    },
    /// No answer within the allowed time.
    #[error("no answer from {addr} within {after:?}")]
    Timeout {
        /// The address asked.
        addr: SocketAddr,
        /// The time allowed.
        after: Duration,
    },
    /// Writing the question or reading the answer failed.
    #[error("connection failed: {0}")]
    Frame(#[from] FrameError),
    /// The server closed the connection without answering.
    #[error("connection closed before an answer")]
    Closed,
    /// The server reported a protocol error.
    #[error("server error: {0}")]
    Server(String),
    /// The server answered with a frame that does not answer the question.
    #[error("unexpected answer: {0:?}")]
    Unexpected(Box<ServerFrame>),
}

/// The map held at `addr` if it is newer than `have` (`None`: not newer, or none formed yet),
/// giving up after `timeout` in all.
pub async fn fetch_map(
    addr: SocketAddr,
    have: Epoch,
    timeout: Duration,
) -> Result<Option<SlotMap>, AskError> {
    match ask(addr.into(), ClientFrame::GetMap { have }, timeout).await? {
        ServerFrame::Map(map) => Ok(map),
        other => Err(AskError::Unexpected(Box::new(other))),
    }
}

/// The status of the coordinator or node at `addr`, giving up after `timeout` in all.
pub async fn fetch_status(addr: SocketAddr, timeout: Duration) -> Result<StatusReport, AskError> {
    match ask(addr.into(), ClientFrame::GetStatus, timeout).await? {
        ServerFrame::Status(status) => Ok(status),
        other => Err(AskError::Unexpected(Box::new(other))),
    }
}

/// Sends an operator's request to the coordinator at `addr` and waits for its answer, which
/// comes once the reconfiguration it asks for is done: `timeout` should allow for that. The
/// coordinator may be one embedded in a node ([`CoordinatorAddr::shared`]).
pub async fn admin(
    addr: impl Into<CoordinatorAddr>,
    request: AdminRequest,
    timeout: Duration,
) -> Result<AdminAnswer, AskError> {
    match ask(addr.into(), ClientFrame::Admin(request), timeout).await? {
        ServerFrame::Admin(answer) => Ok(answer),
        other => Err(AskError::Unexpected(Box::new(other))),
    }
}

/// Connects, sends `question`, returns the first answer; the connection closes on return.
async fn ask(
    to: CoordinatorAddr,
    question: ClientFrame,
    timeout: Duration,
) -> Result<ServerFrame, AskError> {
    let addr = to.addr;
    let exchange = async {
        let stream = to
            .connect()
            .await
            .map_err(|source| AskError::Connect { addr, source })?;
        let mut framed = Framed::new(stream, ClientCodec::default());
        framed.send(question).await?;
        match framed.next().await {
            None => Err(AskError::Closed),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(ServerFrame::Error { message })) => Err(AskError::Server(message)),
            Some(Ok(answer)) => Ok(answer),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| AskError::Timeout {
            addr,
            after: timeout,
        })?
}
