//! One client connection: read requests, run them in order, write replies in order.
//!
//! Pipelining falls out of the loop's shape: every complete request already buffered is
//! executed (each awaited before the next, so replies keep request order) and its reply
//! appended to the write buffer; the buffer is flushed when no complete request is left
//! (or it grows large), so a pipeline of N requests costs one read and one write, not N.

use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use super::cmd::Outcome;
use super::codec::RespCodec;
use super::dialect::Dialect;
use super::error::CodecError;
use super::request::Request;
use crate::service::KvService;

/// Flush replies early once this many bytes are waiting (a long pipeline of large values).
const FLUSH_BYTES: usize = 64 * 1024;

/// Keep at least this much free space before each read, so large frames arrive in big reads.
const READ_RESERVE: usize = 16 * 1024;

/// How long, and for how many bytes, a closing connection keeps reading (see `close`).
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);
const LINGER_BYTES: usize = 1024 * 1024;

/// The state of one client connection.
pub(crate) struct Connection {
    stream: TcpStream,
    codec: RespCodec,
    dialect: Dialect,
    service: Arc<dyn KvService>,
    read: BytesMut,
    write: BytesMut,
}

/// Whether to keep serving after the buffered requests.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

impl Connection {
    /// Wraps an accepted socket.
    pub(crate) fn new(
        stream: TcpStream,
        codec: RespCodec,
        dialect: Dialect,
        service: Arc<dyn KvService>,
    ) -> Self {
        Connection {
            stream,
            codec,
            dialect,
            service,
            read: BytesMut::with_capacity(READ_RESERVE),
            write: BytesMut::with_capacity(READ_RESERVE),
        }
    }

    /// Serves the connection until the client closes it, sends `QUIT` or breaks the protocol.
    pub(crate) async fn run(&mut self) -> io::Result<()> {
        loop {
            let flow = self.serve_buffered().await?;
            self.flush().await?;
            if flow == Flow::Close {
                return self.close().await;
            }
            if self.read.capacity() - self.read.len() < READ_RESERVE {
                self.read.reserve(READ_RESERVE);
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Ok(()); // a partial request at EOF is dropped: it never completed
            }
        }
    }

    /// Executes every complete request in the read buffer, queueing replies.
    async fn serve_buffered(&mut self) -> io::Result<Flow> {
        loop {
            let outcome = match self.codec.decode(&mut self.read) {
                Ok(None) => return Ok(Flow::Continue),
                Ok(Some(frame)) => match Request::from_frame(frame) {
                    Ok(Some(req)) => self.dialect.execute(&req, &*self.service).await,
                    Ok(None) => continue,
                    Err(e) => Outcome::close(self.dialect.protocol_error(&e)),
                },
                Err(CodecError::Protocol(e)) => Outcome::close(self.dialect.protocol_error(&e)),
                Err(CodecError::Io(e)) => return Err(e),
            };
            outcome.reply.encode(&mut self.write);
            if outcome.close {
                return Ok(Flow::Close);
            }
            if self.write.len() >= FLUSH_BYTES {
                self.flush().await?;
            }
        }
    }

    /// Closes after the last reply. Closing a socket with unread input makes the kernel send
    /// a reset, which can destroy that reply before the client reads it; so send FIN first,
    /// then read and discard what the client still sends, for a short while.
    async fn close(&mut self) -> io::Result<()> {
        self.stream.shutdown().await?;
        let drain = async {
            let mut sink = [0u8; 4096];
            let mut left = LINGER_BYTES;
            while left > 0 {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.write.is_empty() {
            self.stream.write_all_buf(&mut self.write).await?;
        }
        Ok(())
    }
}
