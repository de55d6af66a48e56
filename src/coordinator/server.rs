//! [`serve`]: the coordinator's accept-and-react loop.
//!
//! One loop owns the [`State`] (and with it the core): it accepts connections, takes the
//! frames their tasks decode, ticks the core, and stops on shutdown. Connection tasks only
//! move bytes, so the core is never shared and nothing waits while holding it.
//!
//! Connections come from a listener of the coordinator's own ([`serve`]) or are handed over
//! by a data node's multiplexer ([`serve_handed`]: the coordinator embedded in a node).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use kv_components::bootstrap::core::CoordinatorConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{interval, sleep_until, Instant, MissedTickBehavior};

use super::conn::{self, ConnId};
use super::executor::ExecutorConfig;
use super::state::State;

/// How often the core's and the executor's clocks advance (suspicions age, unanswered
/// directives come due). [`CoordinatorConfig::grace_ticks`] counts these.
pub const TICK: Duration = Duration::from_millis(100);

/// Most connections served at once; further ones wait in the accept backlog. Nodes hold one
/// each, so this bounds the cluster size well above what one coordinator is meant for.
pub const MAX_CONNECTIONS: usize = 4096;

/// Frames decoded but not yet handled; a reader waits when the loop is this far behind.
const EVENT_QUEUE: usize = 1024;

/// How long to stop accepting after `accept` fails (out of file descriptors, typically), so
/// the loop does not spin on the error.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// A connection handed to an embedded coordinator: the stream (its preamble already read off)
/// and the peer's address.
pub type HandedConn = (TcpStream, SocketAddr);

/// Where connections come from.
enum Incoming {
    /// The coordinator's own listener.
    Listener(TcpListener),
    /// A node's multiplexer.
    Handed(mpsc::Receiver<HandedConn>),
}

impl Incoming {
    /// The next connection. Once the multiplexer is gone no more come (the loop then waits
    /// for its shutdown).
    async fn accept(&mut self) -> std::io::Result<HandedConn> {
        match self {
            Incoming::Listener(listener) => listener.accept().await,
            Incoming::Handed(streams) => match streams.recv().await {
                Some(conn) => Ok(conn),
                None => std::future::pending().await,
            },
        }
    }
}

/// Serves the bootstrap coordinator on `listener` until `shutdown` completes, then closes
/// every connection and returns once their tasks are gone.
///
/// Data nodes check in here and receive every map on their session's connection; anyone may
/// ask for the map or the coordinator's status; data commands are rejected.
pub async fn serve(
    listener: TcpListener,
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tracing::info!(
        listen = %listener.local_addr()?,
        replication = config.replication,
        min_nodes = config.min_nodes,
        "bootstrap coordinator listening"
    );
    let state = State::new(config, ExecutorConfig::default());
    run(Incoming::Listener(listener), state, shutdown).await;
    Ok(())
}

/// [`serve`] on the connections a data node's multiplexer hands over, for the coordinator
/// embedded in the node reached at `host` (its shared port). Removing that node is refused:
/// the coordinator would go with it.
pub async fn serve_handed(
    streams: mpsc::Receiver<HandedConn>,
    config: CoordinatorConfig,
    host: SocketAddr,
    shutdown: impl Future<Output = ()>,
) {
    tracing::info!(
        %host,
        replication = config.replication,
        min_nodes = config.min_nodes,
        "coordinator embedded in this node"
    );
    let state = State::new(config, ExecutorConfig::default()).hosted_by(host);
    run(Incoming::Handed(streams), state, shutdown).await;
}

async fn run(mut incoming: Incoming, mut state: State, shutdown: impl Future<Output = ()>) {
    let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let mut tasks = JoinSet::new();
    let mut ticks = interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut next_conn = 0u64;
    let mut accept_paused_until: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let accepting = accept_paused_until.is_none() && state.connections() < MAX_CONNECTIONS;
        tokio::select! {
            () = &mut shutdown => break,
            Some(event) = events.recv() => state.handle(event),
            accepted = incoming.accept(), if accepting => match accepted {
                Ok((stream, from)) => {
                    next_conn += 1;
                    let id = ConnId(next_conn);
                    tracing::debug!(conn = ?id, %from, "coordinator: connection accepted");
                    let (out, guard) = conn::spawn(stream, id, events_tx.clone(), &mut tasks);
                    state.connected(id, out, guard);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "coordinator: accept failed");
                    accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                }
            },
            () = sleep_until(accept_paused_until.unwrap_or_else(Instant::now)),
                if accept_paused_until.is_some() => accept_paused_until = None,
            _ = ticks.tick() => state.tick(),
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                match joined {
                    Err(e) if e.is_panic() => {
                        tracing::error!(error = %e, "coordinator: connection task panicked");
                    }
                    _ => {}
                }
            }
        }
    }
    drop(state);
    tasks.shutdown().await;
    tracing::info!("bootstrap coordinator stopped");
}
