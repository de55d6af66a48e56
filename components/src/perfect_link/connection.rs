//! Socket tasks: listener, dialer, per-connection reader and writer, ack ticker.
//!
//! The actor never touches a socket. These tasks do, and talk to it only by `try_send` into its
//! unbounded mailbox through a *weak* reference, so they never keep it alive. Each task is
//! owned by a [`TaskGuard`] held in the actor's state: dropping the state (the actor stopped)
//! or the connection aborts the task and closes its socket half.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kameo::actor::WeakActorRef;
use kv_ports::ids::NodeId;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::config::LinkConfig;
use super::events::{Accepted, Closed, Dialed, Inbound, Tick};
use super::frame::{check_preamble, Frame, FrameCodec, FrameError, PREAMBLE};
use super::state::ConnKey;
use super::PerfectLink;
use crate::task::{tell_weak as tell, TaskGuard};

/// Most frames handed to the actor in one message, or written before one flush.
const BATCH: usize = 1024;
/// Bytes buffered by a writer before it pushes them to the socket without waiting for a flush.
const WRITE_BUFFER: usize = 256 * 1024;

/// Accepts inbound connections forever, handing each socket to the link (exactly as another
/// acceptor would with [`AdoptStream`](super::AdoptStream)).
pub fn listen(listener: TcpListener, link: WeakActorRef<PerfectLink>) -> TaskGuard {
    TaskGuard::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, from)) => {
                    if !tell(&link, Accepted { stream, from }) {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}

/// Dials `addr` after `delay`, retrying with exponential backoff until it connects.
pub fn dial(
    peer: NodeId,
    attempt: u64,
    addr: SocketAddr,
    delay: Duration,
    config: &LinkConfig,
    link: WeakActorRef<PerfectLink>,
) -> TaskGuard {
    let config = config.clone();
    TaskGuard::spawn(async move {
        let mut delay = delay;
        loop {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let connect = TcpStream::connect(addr);
            match tokio::time::timeout(config.backoff_max.max(Duration::from_secs(1)), connect)
                .await
            {
                Ok(Ok(stream)) => {
                    tell(
                        &link,
                        Dialed {
                            peer,
                            attempt,
                            stream,
                        },
                    );
                    return;
                }
                Ok(Err(e)) => tracing::debug!(%peer, %addr, error = %e, "dial failed"),
                Err(_) => tracing::debug!(%peer, %addr, "dial timed out"),
            }
            delay = config.next_backoff(delay);
        }
    })
}

/// Reads frames and hands them to the link in batches; reports the end of the stream. On an
/// inbound connection (`inbound`) the dialer's [`PREAMBLE`] is read and checked first; the
/// link's handshake timeout also covers a dialer that never sends it.
pub fn read(
    mut half: OwnedReadHalf,
    conn: ConnKey,
    max_frame_len: usize,
    inbound: bool,
    link: WeakActorRef<PerfectLink>,
) -> TaskGuard {
    TaskGuard::spawn(async move {
        if inbound {
            if let Err(e) = read_preamble(&mut half).await {
                tracing::warn!(?conn, error = %e, "closing connection: no link preamble");
                tell(&link, Closed { conn });
                return;
            }
        }
        let mut batches = FramedRead::new(half, FrameCodec::new(max_frame_len)).ready_chunks(BATCH);
        while let Some(batch) = batches.next().await {
            let mut frames = Vec::with_capacity(batch.len());
            let mut failure = None;
            for item in batch {
                match item {
                    Ok(frame) => frames.push(frame),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if !frames.is_empty() && !tell(&link, Inbound { conn, frames }) {
                return;
            }
            if let Some(e) = failure {
                tracing::warn!(?conn, error = %e, "closing connection: bad inbound frame");
                tell(&link, Closed { conn });
                return;
            }
        }
        tracing::debug!(?conn, "connection closed by peer");
        tell(&link, Closed { conn });
    })
}

/// Reads the first four bytes of an inbound connection and checks them.
async fn read_preamble(half: &mut OwnedReadHalf) -> Result<(), FrameError> {
    let mut first = [0u8; 4];
    half.read_exact(&mut first).await?;
    check_preamble(first)
}

/// Writes the frames queued for one connection, batching them into few syscalls. On a
/// connection we dialed (`outbound`) the [`PREAMBLE`] goes first, in the same write as the
/// `Hello`.
pub fn write(
    half: OwnedWriteHalf,
    conn: ConnKey,
    max_frame_len: usize,
    outbound: bool,
    queue: UnboundedReceiver<Frame>,
    link: WeakActorRef<PerfectLink>,
) -> TaskGuard {
    TaskGuard::spawn(async move {
        if let Err(e) = write_loop(half, max_frame_len, outbound, queue).await {
            tracing::warn!(?conn, error = %e, "closing connection: write failed");
            tell(&link, Closed { conn });
        }
    })
}

/// Feeds every frame already queued, then flushes once: one syscall for many small frames.
async fn write_loop(
    half: OwnedWriteHalf,
    max_frame_len: usize,
    outbound: bool,
    mut queue: UnboundedReceiver<Frame>,
) -> Result<(), FrameError> {
    let mut sink = FramedWrite::new(half, FrameCodec::new(max_frame_len));
    sink.set_backpressure_boundary(WRITE_BUFFER);
    if outbound {
        sink.write_buffer_mut().extend_from_slice(&PREAMBLE);
    }
    while let Some(frame) = queue.recv().await {
        sink.feed(frame).await?;
        for _ in 1..BATCH {
            match queue.try_recv() {
                Ok(frame) => sink.feed(frame).await?,
                Err(_) => break,
            }
        }
        sink.flush().await?;
    }
    Ok(())
}

/// Pokes the link every `every` so it flushes pending acks.
pub fn tick(every: Duration, link: WeakActorRef<PerfectLink>) -> TaskGuard {
    TaskGuard::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if !tell(&link, Tick) {
                return;
            }
        }
    })
}
