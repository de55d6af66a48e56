//! `kv leave`: asks the coordinator to take a node out of the cluster and waits until the
//! map without it is published (its group got a standby, or shrank and its slots moved).

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use kv::client::resolve_node;
use kv::coordinator::{admin, fetch_map};
use kv::native::{AdminAnswer, AdminRequest, NodeRef};
use kv_ports::membership::Epoch;

use crate::cli::LeaveArgs;

/// How long fetching the map (to resolve a short id) may take.
const MAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Removes the node and prints the new shape of the cluster.
pub async fn run(args: LeaveArgs) -> anyhow::Result<()> {
    let node = match (&args.node, args.addr) {
        (_, Some(addr)) => NodeRef::Addr(addr),
        (Some(text), None) => {
            let map = fetch_map(args.bootstrap, Epoch(0), MAP_TIMEOUT)
                .await
                .with_context(|| format!("cannot ask the coordinator at {}", args.bootstrap))?;
            resolve_node(text, map.as_ref()).map_err(|e| anyhow!(e))?
        }
        (None, None) => bail!("give --node ID or --addr ADDR"),
    };
    let timeout = Duration::from_secs(args.timeout);
    let answer = admin(args.bootstrap, AdminRequest::Remove(node), timeout)
        .await
        .with_context(|| format!("asking the coordinator at {}", args.bootstrap))?;
    match answer {
        AdminAnswer::Done(map) => {
            println!(
                "removed; epoch {}: {} groups, {} nodes, {} standbys",
                map.epoch.0,
                map.groups.len(),
                map.nodes.len(),
                map.standbys.len()
            );
            Ok(())
        }
        AdminAnswer::Refused(reason) => bail!("the coordinator refused: {reason}"),
    }
}
