//! The seed 002 coordinator: the bootstrap coordinator for the participants and the seed's RESP
//! dialect for clients, both behind the one `coordinator_info` address.
//!
//! It keeps no data and nothing it could lose: the participants hold the slot map and the
//! data, and a restarted coordinator learns the map back from the participants' check-ins
//! (they re-report it, [`crate::coordinator::session`]) while its RESP side learns it from the
//! participants directly ([`Client`] asks them for it). So it may be killed and restarted at
//! any time.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::front::{self, Backends};
use super::pool::Pool;
use super::Seed002Error;
use crate::client::{Client, ClientConfig};
use crate::coordinator::CoordinatorConfig;
use crate::resp::{self, Dialect};
use crate::service::ServiceError;

/// Client sessions the RESP side runs at once: RESP connections beyond this many wait for a
/// free session per command. Every session ever opened stays in the replicas' session tables,
/// so this also bounds what each coordinator run adds there.
pub const CLIENT_SESSIONS: usize = 64;

/// Serves as the coordinator on `address` for `participants` until `shutdown` completes.
pub async fn run(
    address: SocketAddr,
    participants: Vec<SocketAddr>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Seed002Error> {
    let count = participants.len();
    let replication = u32::try_from(count).map_err(|_| Seed002Error::TooManyParticipants(count))?;
    let config = CoordinatorConfig {
        min_nodes: count,
        ..CoordinatorConfig::new(replication)
    };
    let public = bind(address).await?;
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let (native, native_addr) = bind_local(loopback).await?;
    let (resp_listener, resp_addr) = bind_local(loopback).await?;
    let backends = Backends {
        native: native_addr,
        resp: resp_addr,
    };
    let seeds = participants.clone();
    let sessions = Pool::new(CLIENT_SESSIONS, move || {
        Client::connect(seeds.clone(), ClientConfig::default())
            .map_err(|e| ServiceError::Unavailable(e.to_string()))
    });
    tracing::info!(%address, ?participants, "seed 002 coordinator serving RESP and participant check-ins");

    let stop = CancellationToken::new();
    let stopper = async {
        shutdown.await;
        stop.cancel();
        Ok::<(), Seed002Error>(())
    };
    let bootstrap = async {
        crate::coordinator::serve(native, config, stop.clone().cancelled_owned())
            .await
            .map_err(|source| Seed002Error::Serve {
                what: "bootstrap coordinator",
                source,
            })
    };
    let clients = async {
        let service = Arc::new(sessions);
        resp::serve(
            resp_listener,
            service,
            Dialect::Seed002,
            stop.clone().cancelled_owned(),
        )
        .await
        .map_err(|source| Seed002Error::Serve {
            what: "RESP server",
            source,
        })
    };
    let door = async {
        front::serve(public, backends, stop.clone().cancelled_owned())
            .await
            .map_err(|source| Seed002Error::Serve {
                what: "front door",
                source,
            })
    };
    tokio::try_join!(stopper, bootstrap, clients, door)?;
    tracing::info!("seed 002 coordinator stopped");
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Seed002Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Seed002Error::Listen { addr, source })
}

/// A listener on a free loopback port, and that port's address.
async fn bind_local(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Seed002Error> {
    let listener = bind(addr).await?;
    let bound = listener
        .local_addr()
        .map_err(|source| Seed002Error::Listen { addr, source })?;
    Ok((listener, bound))
}
