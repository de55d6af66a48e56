//! The accept loop: admission control, one task per connection, clean shutdown.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::codec::RespCodec;
use super::connection::Connection;
use super::dialect::Dialect;
use super::limits::Limits;
use crate::service::KvService;

/// How a RESP server behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The command table spoken.
    pub dialect: Dialect,
    /// Codec limits per request.
    pub limits: Limits,
    /// Connections served at once; more are answered `-ERR max number of clients reached`
    /// and closed, as Redis does, rather than left waiting without a word.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            dialect: Dialect::Redis,
            limits: Limits::default(),
            max_connections: 10_000,
        }
    }
}

/// Pause after a failed `accept` (say, out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves RESP in `dialect` on `listener` with default limits until `shutdown` completes. See
/// [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    service: Arc<dyn KvService>,
    dialect: Dialect,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let config = ServerConfig {
        dialect,
        ..ServerConfig::default()
    };
    serve_with(listener, service, config, shutdown).await
}

/// Serves RESP on `listener` until `shutdown` completes, then ends every connection task and
/// returns once all have finished (no task outlives the call; dropping the future instead
/// aborts them). Failed accepts are logged and retried, so the server only stops on shutdown.
pub async fn serve_with(
    listener: TcpListener,
    service: Arc<dyn KvService>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => log_panic(done),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "resp connection accepted");
                    let Some(permit) = admit(&permits, &stream, config.dialect) else {
                        continue;
                    };
                    let conn = Connection::new(
                        stream,
                        RespCodec::new(config.limits),
                        config.dialect,
                        service.clone(),
                    );
                    tasks.spawn(handle(conn, permit, stopped.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "resp accept failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    // Receivers see the change even if they are mid-command; none is dropped early.
    let _ = stop.send(true);
    while let Some(done) = tasks.join_next().await {
        log_panic(done);
    }
    Ok(())
}

/// A connection slot, or `None` after telling the client the server is full.
fn admit(
    permits: &Arc<Semaphore>,
    stream: &TcpStream,
    dialect: Dialect,
) -> Option<OwnedSemaphorePermit> {
    let permit = permits.clone().try_acquire_owned().ok();
    if permit.is_none() {
        let reply = dialect.error("ERR max number of clients reached".into());
        // Best effort without waiting: a fresh socket's send buffer takes a short line.
        let _ = stream.try_write(&reply.to_bytes());
        tracing::warn!("resp connection refused: too many clients");
    }
    let _ = stream.set_nodelay(true);
    permit
}

/// Runs one connection until it ends or the server stops, then frees its slot.
async fn handle(
    mut conn: Connection,
    permit: OwnedSemaphorePermit,
    mut stopped: watch::Receiver<bool>,
) {
    tokio::select! {
        result = conn.run() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "resp connection ended with an error");
            }
        }
        _ = stopped.wait_for(|&stop| stop) => {}
    }
    drop(permit);
}

fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "resp connection task failed");
    }
}
