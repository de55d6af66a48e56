//! The coordinator's connection tasks: one reader and one writer per accepted socket.
//!
//! They hold no coordinator state. The reader decodes frames and hands them, in order, to the
//! loop that owns the core; the writer writes what that loop queued for the connection. Going
//! through the loop for every frame (even those it answers without the core) keeps each
//! connection's answers in the order its questions came.

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::native::{ClientFrame, ServerCodec, ServerFrame};

/// Frames queued for one connection's writer. A connection that lets this many pile up is not
/// reading and is dropped, so a stuck peer cannot grow the coordinator's memory.
pub(super) const OUTBOX_FRAMES: usize = 256;

/// Names one accepted connection for the life of the coordinator.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct ConnId(pub u64);

/// What connection tasks tell the loop that owns the core.
#[derive(Debug)]
pub(super) enum Event {
    /// A decoded frame.
    Inbound {
        /// From this connection.
        conn: ConnId,
        /// The frame (boxed: a check-in carries a whole map, other events are small).
        frame: Box<ClientFrame>,
    },
    /// The peer sent bytes that are not a frame; it gets an error and the connection closes.
    Undecodable {
        /// The connection.
        conn: ConnId,
        /// What was wrong.
        message: String,
    },
    /// The connection is finished (end of stream, a failed write, or the error frame sent).
    Closed {
        /// The connection.
        conn: ConnId,
    },
}

/// Aborts a connection's tasks when the coordinator forgets the connection, which closes its
/// socket. The tasks live in the server's `JoinSet`, which reaps them.
#[derive(Debug, Default)]
pub(super) struct ConnTasks(Vec<AbortHandle>);

impl Drop for ConnTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Starts the reader and writer of `stream` in `tasks`; returns the writer's queue and the
/// guard of both tasks.
pub(super) fn spawn(
    stream: TcpStream,
    conn: ConnId,
    events: mpsc::Sender<Event>,
    tasks: &mut JoinSet<()>,
) -> (mpsc::Sender<ServerFrame>, ConnTasks) {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let (out, queue) = mpsc::channel(OUTBOX_FRAMES);
    let read = tasks.spawn(read(reader, conn, events.clone()));
    let write = tasks.spawn(write(writer, conn, queue, events));
    (out, ConnTasks(vec![read, write]))
}

/// Hands every decoded frame to the loop; an undecodable one ends reading (the writer closes
/// the socket after the error frame), end of stream reports [`Event::Closed`].
async fn read(half: tokio::net::tcp::OwnedReadHalf, conn: ConnId, events: mpsc::Sender<Event>) {
    let mut frames = FramedRead::new(half, ServerCodec::default());
    while let Some(frame) = frames.next().await {
        let event = match frame {
            Ok(frame) => Event::Inbound {
                conn,
                frame: Box::new(frame),
            },
            Err(e) => {
                tracing::warn!(?conn, error = %e, "coordinator: bad frame, closing the connection");
                let message = e.to_string();
                let _ = events.send(Event::Undecodable { conn, message }).await;
                return;
            }
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
    let _ = events.send(Event::Closed { conn }).await;
}

/// Writes queued frames in order; after an [`ServerFrame::Error`] or a
/// [`ServerFrame::Removed`] it flushes and closes the socket. Either way it reports [`Event::Closed`] when done.
async fn write(
    half: tokio::net::tcp::OwnedWriteHalf,
    conn: ConnId,
    mut queue: mpsc::Receiver<ServerFrame>,
    events: mpsc::Sender<Event>,
) {
    let mut sink = FramedWrite::new(half, ServerCodec::default());
    while let Some(frame) = queue.recv().await {
        let last = matches!(
            frame,
            ServerFrame::Error { .. } | ServerFrame::Removed { .. }
        );
        if let Err(e) = sink.send(frame).await {
            tracing::debug!(?conn, error = %e, "coordinator: write failed");
            break;
        }
        if last {
            let _ = sink.close().await;
            break;
        }
    }
    let _ = events.send(Event::Closed { conn }).await;
}
