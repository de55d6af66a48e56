//! `kv node`: a data node process, in one of two modes.
//!
//! - `--listen ADDR --bootstrap ADDR`: the node checks in with the bootstrap coordinator.
//! - no `--bootstrap`, with `K`, `VIEW` and `IPPORT` in the environment: seed 001's mode
//!   (see [`kv::seed001`]): the coordinator runs inside the node at `VIEW[0]`. The node binds
//!   `IPPORT` (or `--listen`, e.g. `0.0.0.0:8080` in a container, while still known to the
//!   others as `IPPORT`) and serves everything there, seed 001's HTTP API included.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use kv::coordinator::session::Removal;
use kv::node::{Join, Node, NodeConfig, NodeOptions};
use kv::seed001::InitialView;

use crate::cli::NodeArgs;

/// How long a removed node waits for its group members to retire (hand their state to the
/// new members) before it stops anyway.
const RETIRE_WITHIN: Duration = Duration::from_secs(10);

/// Runs a data node until asked to stop or until one of its components fails.
pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    if args.data_dir.is_some() {
        tracing::warn!("--data-dir is accepted but unused: nodes keep state in memory, and a restarted node joins as a new node");
    }
    let (config, options) = match args.bootstrap {
        Some(bootstrap) => (
            coordinator_config(&args, bootstrap)?,
            NodeOptions::default(),
        ),
        None => seed001_config(&args)?,
    };
    let mut node = Node::start_with(config, options)
        .await
        .context("cannot start the node")?;
    let removal = node.removal();
    let failed = tokio::select! {
        () = super::shutdown::requested() => false,
        () = node.stopped() => true,
        removed = removal => {
            leave_after_removal(&node, removed).await;
            false
        }
    };
    node.stop().await;
    if failed {
        bail!("a component of the node failed; see the log");
    }
    Ok(())
}

/// The coordinator took `node` out of the cluster: says so, and lets its group members hand
/// over their state before the caller stops it (the process then exits with status 0).
pub(super) async fn leave_after_removal(node: &Node, removed: Removal) {
    tracing::info!(node = %node.id, epoch = %removed.epoch,
        "removed from the cluster by the coordinator at {}; exiting", removed.coordinator);
    node.let_groups_retire(RETIRE_WITHIN).await;
}

fn coordinator_config(args: &NodeArgs, bootstrap: SocketAddr) -> anyhow::Result<NodeConfig> {
    let Some(listen) = args.listen else {
        bail!("kv node --bootstrap ADDR needs --listen ADDR");
    };
    if InitialView::any_set(|name| std::env::var(name).ok()) {
        tracing::info!("--bootstrap given: K, VIEW and IPPORT in the environment are ignored");
    }
    Ok(NodeConfig {
        listen,
        join: Join::Coordinator(bootstrap.into()),
        resp: args.resp,
        http: args.http,
    })
}

fn seed001_config(args: &NodeArgs) -> anyhow::Result<(NodeConfig, NodeOptions)> {
    if !InitialView::any_set(|name| std::env::var(name).ok()) {
        bail!("kv node needs --listen ADDR --bootstrap ADDR, or the seed 001 environment K, VIEW and IPPORT");
    }
    let view = InitialView::from_env()?;
    if let Some(http) = args.http {
        bail!(
            "--http {http}: in the seed 001 mode HTTP is served on IPPORT ({}); drop --http",
            view.me
        );
    }
    if let Some(listen) = args.listen {
        if listen.port() != view.me.port() {
            bail!(
                "--listen {listen}: the port must be IPPORT's ({}), where the other nodes dial",
                view.me.port()
            );
        }
    }
    let listen = args.listen.unwrap_or_else(|| bindable(view.me));
    let started = view.node_config(listen, args.resp);
    tracing::info!(me = %view.me, k = view.k, nodes = view.view.len(), %listen,
        coordinator = %view.coordinator(), runs_coordinator = view.hosts_coordinator(),
        "seed 001 mode");
    Ok(started)
}

/// `addr` if this machine has its IP; else the same port on every interface (behind NAT or
/// port mapping, IPPORT may be an address the others reach this machine by, not its own).
fn bindable(addr: SocketAddr) -> SocketAddr {
    match std::net::TcpListener::bind(addr) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            let any = match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            tracing::warn!(ipport = %addr, "IPPORT's IP is not this machine's: listening on every interface");
            SocketAddr::new(any, addr.port())
        }
        // Bound (and released at once), or another error that binding again will report.
        _ => addr,
    }
}
