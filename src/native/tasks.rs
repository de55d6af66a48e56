//! The endpoint's socket tasks: the listener and each connection's reader and writer.
//!
//! Tasks never hold the endpoint alive: they reach it through a weak reference with
//! `try_send` into its unbounded mailbox, and each is owned by a [`TaskGuard`] in the
//! endpoint's state, so stopping the endpoint aborts them and closes their sockets.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use kameo::actor::WeakActorRef;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::Semaphore;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::endpoint::{Accepted, ClientEndpoint, Closed, ConnKey, Inbound, NodeView};
use super::frame::{ClientFrame, ServerCodec, ServerFrame};
use kv_components::task::{tell_weak as tell, TaskGuard};

/// Accepts connections while a permit is free, so at most `limit` clients are served at once;
/// the permit travels with the connection and is returned when it closes.
pub(crate) fn listen(
    listener: TcpListener,
    limit: Arc<Semaphore>,
    endpoint: WeakActorRef<ClientEndpoint>,
) -> TaskGuard {
    TaskGuard::spawn(async move {
        loop {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            match listener.accept().await {
                Ok((stream, from)) => {
                    if !tell(
                        &endpoint,
                        Accepted {
                            stream,
                            from,
                            permit,
                        },
                    ) {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "client endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}

/// Decodes requests and hands them to the endpoint; map and status questions are answered
/// here from the node's view, without the endpoint. An undecodable frame is answered with
/// [`ServerFrame::Error`] (the writer then closes the connection); end of stream reports
/// [`Closed`].
pub(crate) fn read(
    half: OwnedReadHalf,
    conn: ConnKey,
    out: UnboundedSender<ServerFrame>,
    endpoint: WeakActorRef<ClientEndpoint>,
    view: Arc<dyn NodeView>,
) -> TaskGuard {
    TaskGuard::spawn(async move {
        let mut frames = FramedRead::new(half, ServerCodec::default());
        while let Some(frame) = frames.next().await {
            match frame {
                Ok(ClientFrame::Request(cmd)) => {
                    if !tell(&endpoint, Inbound { conn, cmd }) {
                        return;
                    }
                }
                Ok(ClientFrame::GetMap { have }) => {
                    if out.send(ServerFrame::Map(view.map(have))).is_err() {
                        return;
                    }
                }
                Ok(ClientFrame::GetStatus) => {
                    if out.send(ServerFrame::Status(view.status().await)).is_err() {
                        return;
                    }
                }
                Ok(ClientFrame::Admin(request)) => {
                    // Relayed, maybe for as long as a reconfiguration takes: in a task of its
                    // own, so the connection's other requests go on meanwhile.
                    let (answer, out) = (view.admin(request), out.clone());
                    tokio::spawn(async move {
                        let _ = out.send(ServerFrame::Admin(answer.await));
                    });
                }
                Ok(
                    ClientFrame::CheckIn { .. }
                    | ClientFrame::DirectiveDone { .. }
                    | ClientFrame::Suspicion { .. }
                    | ClientFrame::Groups(_),
                ) => {
                    let message = "this is a data node, not the coordinator".to_owned();
                    let _ = out.send(ServerFrame::Error { message });
                    return;
                }
                Err(e) => {
                    tracing::warn!(?conn, error = %e, "closing client connection: bad frame");
                    let message = e.to_string();
                    if out.send(ServerFrame::Error { message }).is_err() {
                        tell(&endpoint, Closed { conn });
                    }
                    return;
                }
            }
        }
        tell(&endpoint, Closed { conn });
    })
}

/// Writes the endpoint's answers in order; after an [`ServerFrame::Error`] it flushes, closes
/// the socket and reports [`Closed`].
pub(crate) fn write(
    half: OwnedWriteHalf,
    conn: ConnKey,
    mut frames: UnboundedReceiver<ServerFrame>,
    endpoint: WeakActorRef<ClientEndpoint>,
) -> TaskGuard {
    TaskGuard::spawn(async move {
        let mut sink = FramedWrite::new(half, ServerCodec::default());
        while let Some(frame) = frames.recv().await {
            let last = matches!(frame, ServerFrame::Error { .. });
            if let Err(e) = sink.send(frame).await {
                tracing::debug!(?conn, error = %e, "client connection write failed");
                break;
            }
            if last {
                let _ = sink.close().await;
                break;
            }
        }
        tell(&endpoint, Closed { conn });
    })
}
