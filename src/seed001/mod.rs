//! Seed 001's start-up mode: `kv node` with `K`, `VIEW` and `IPPORT` in its environment and
//! no `--bootstrap` joins a cluster whose coordinator runs inside the node at `VIEW[0]`.
//!
//! There is no coordinator process: the node whose `IPPORT` is `VIEW[0]` runs the bootstrap
//! coordinator itself, behind its one port (connections that start with the preamble `KVC1`
//! go to it; see [`crate::node::mux`]). Every node, that one included, checks in with it
//! through that preamble, exactly as a `--bootstrap` node checks in with `kv bootstrap`:
//!
//! - the coordinator forms the cluster once `|VIEW|` nodes have checked in, in `VIEW` order
//!   whatever order they arrive in: the first K nodes are partition 0, the next K partition 1,
//!   ...; the `|VIEW| mod K` nodes left over are standbys, which seed 001 calls proxies (they
//!   serve every key by forwarding it to its partition);
//! - node ids are fresh and random per process, so a restarted node is a new node (it never
//!   comes back under an id whose promises it forgot);
//! - every node is reached at its `IPPORT` for everything: the node-to-node link, the native
//!   protocol, seed 001's HTTP API and (at `VIEW[0]`) the coordinator share the port; the map
//!   names a node by that address, so `update_view`'s `ip_port` finds it;
//! - a node started later with a `VIEW` that contains it checks in the same way and is placed
//!   by the planner (a proxy, or a member of a new partition once K of them wait);
//!   `update_view?type=add` waits until it is placed, `type=remove` takes a node out (both
//!   through the coordinator; see [`crate::http`]). The node at `VIEW[0]` cannot be removed:
//!   the coordinator runs there.

mod view;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::coordinator::{CoordinatorAddr, CoordinatorConfig};
use crate::node::{Join, NodeConfig, NodeOptions};

pub use view::{InitialView, ViewError, IPPORT, K, VIEW};

impl InitialView {
    /// Whether this node is `VIEW[0]`, which runs the coordinator.
    pub fn hosts_coordinator(&self) -> bool {
        self.view[0] == self.me
    }

    /// The coordinator every node of this view checks in with: inside the node at `VIEW[0]`.
    pub fn coordinator(&self) -> CoordinatorAddr {
        CoordinatorAddr::shared(self.view[0])
    }

    /// The configuration of the coordinator `VIEW[0]` runs: groups of K, formed once every
    /// node of `VIEW` checked in, in `VIEW` order.
    pub fn coordinator_config(&self) -> CoordinatorConfig {
        CoordinatorConfig {
            min_nodes: self.view.len(),
            formation_order: self.view.clone(),
            ..CoordinatorConfig::new(self.k)
        }
    }

    /// The node's configuration and options: listening on `listen` (normally `IPPORT`) for
    /// everything, HTTP included, and RESP on `resp` if given; known to the others as `IPPORT`;
    /// running the coordinator if it is `VIEW[0]`, which then dials itself on `listen`.
    pub fn node_config(
        &self,
        listen: SocketAddr,
        resp: Option<SocketAddr>,
    ) -> (NodeConfig, NodeOptions) {
        let host = self.hosts_coordinator();
        let coordinator = if host {
            CoordinatorAddr::shared(dialable(listen))
        } else {
            self.coordinator()
        };
        let config = NodeConfig {
            listen,
            join: Join::Coordinator(coordinator),
            resp,
            http: Some(listen),
        };
        let options = NodeOptions {
            advertise: Some(self.me),
            coordinator: host.then(|| self.coordinator_config()),
        };
        (config, options)
    }
}

/// `listen` as this machine can dial it: loopback for an unspecified IP.
fn dialable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: usize, k: u32, me: usize) -> InitialView {
        let view: Vec<SocketAddr> = (0..n)
            .map(|i| format!("10.0.0.{}:8080", 21 + i).parse().unwrap())
            .collect();
        InitialView {
            k,
            me: view[me],
            view,
        }
    }

    #[test]
    fn view_0_runs_the_coordinator_every_node_checks_in_with() {
        let first = view(4, 2, 0);
        assert!(first.hosts_coordinator());
        let (config, options) = first.node_config(first.me, None);
        let embedded = options.coordinator.expect("VIEW[0] runs the coordinator");
        assert_eq!(embedded.replication, 2);
        assert_eq!(embedded.min_nodes, 4);
        assert_eq!(embedded.formation_order, first.view);
        assert!(matches!(config.join, Join::Coordinator(c) if c == first.coordinator()));

        let third = view(4, 2, 2);
        assert!(!third.hosts_coordinator());
        let (config, options) = third.node_config(third.me, None);
        assert!(options.coordinator.is_none());
        let Join::Coordinator(coordinator) = config.join else {
            panic!("a coordinator join")
        };
        assert_eq!(coordinator, CoordinatorAddr::shared(first.me));
    }

    #[test]
    fn nodes_are_reached_at_their_view_address() {
        let v = view(4, 2, 1);
        let listen: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let (config, options) = v.node_config(listen, None);
        assert_eq!((config.listen, config.http), (listen, Some(listen)));
        assert_eq!(options.advertise, Some(v.me));
        // VIEW[0] listening on every interface dials its own coordinator on loopback.
        let (config, _) = view(4, 2, 0).node_config(listen, None);
        let Join::Coordinator(coordinator) = config.join else {
            panic!("a coordinator join")
        };
        assert_eq!(coordinator.addr, "127.0.0.1:8080".parse().unwrap());
    }
}
