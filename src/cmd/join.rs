//! `kv join`: a data node joining a running cluster. It is `kv node --bootstrap` (the node
//! checks in with the coordinator, which places it: it fills an under-replicated group,
//! waits as a standby, or forms a new group with other standbys, slots moving to it) plus
//! an `AwaitNode` request that prints where the node was placed once that is published.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{bail, Context};
use kv::coordinator::admin;
use kv::native::{AdminAnswer, AdminRequest, NodeRef};
use kv::node::{Join, Node, NodeConfig};
use kv_ports::ids::NodeId;
use kv_ports::membership::SlotMap;

use crate::cli::JoinArgs;

/// Runs the node until asked to stop, reporting its placement on standard output.
pub async fn run(args: JoinArgs) -> anyhow::Result<()> {
    let config = NodeConfig {
        listen: args.listen,
        join: Join::Coordinator(args.bootstrap.into()),
        resp: args.resp,
        http: args.http,
    };
    let mut node = Node::start(config).await.context("cannot start the node")?;
    let removal = node.removal();
    tokio::pin!(removal);
    let id = node.id;
    say(&format!("node {id} listening on {}; joining", args.listen));
    let request = AdminRequest::AwaitNode(NodeRef::Id(id));
    let placed = admin(args.bootstrap, request, Duration::from_secs(args.timeout));
    tokio::pin!(placed);
    let mut waiting = true;
    let failed = loop {
        tokio::select! {
            () = super::shutdown::requested() => break false,
            () = node.stopped() => break true,
            removed = &mut removal => {
                super::node::leave_after_removal(&node, removed).await;
                break false;
            }
            answer = &mut placed, if waiting => {
                waiting = false;
                match answer {
                    Ok(AdminAnswer::Done(map)) => say(&placement(id, &map)),
                    Ok(AdminAnswer::Refused(reason)) => eprintln!("kv join: not placed: {reason}"),
                    Err(e) => eprintln!("kv join: no placement yet ({e}); the node keeps running"),
                }
            }
        }
    };
    node.stop().await;
    if failed {
        bail!("a component of the node failed; see the log");
    }
    Ok(())
}

/// Where `map` puts node `id`, as one line.
fn placement(id: NodeId, map: &SlotMap) -> String {
    match map.group_of_node(id) {
        Some(g) => format!(
            "node {id} placed in group {} ({} slots, {} members), epoch {}",
            g.0,
            map.slots_of(g).len(),
            map.members_of(g).len(),
            map.epoch.0
        ),
        None => format!(
            "node {id} is a standby (epoch {}); it joins a group when one needs a member or enough standbys wait",
            map.epoch.0
        ),
    }
}

/// One line on standard output, flushed (the log goes to standard error).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
