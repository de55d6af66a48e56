//! A data node: one process's tree of components, wired as the slot map says.
//!
//! ```text
//!  clients ─ native ─ ClientEndpoint ─┐          ┌─ GroupComponent   (one per group this node
//!  redis   ─ RESP ─── Gateway ────────┼─ Overlay ┤                    is a member of: BLE,
//!                                     │ (router) └─ GroupComponent    Paxos and replica of
//!                                     │      │            │           each configuration)
//!                                     │   PerfectLink (Network) ─ EPFD ─ Membership, Timer
//!  coordinator ─ session ─┬─ map watch ─┘                              │ suspicions
//!                         └─ directives (start/join/change/freeze/install/stop groups)
//! ```
//!
//! The link and the native endpoint share the node's one `listen` port: a multiplexer (see
//! [`mux`]) tells their connections apart by their first bytes, so a node is known to peers
//! and clients alike by a single address (`NodeInfo::link == NodeInfo::client`). A node may
//! also run the coordinator itself behind that port ([`NodeOptions::coordinator`], seed 001's
//! `VIEW[0]`).
//!
//! The node starts with no groups: it checks in with the coordinator, which tells it which
//! groups to run with directives on its session (see [`directives`]): start a group, join one,
//! change a group's members, freeze or install slots, stop a group. Each map it receives (see
//! [`groups`]) adds the peers to the link and installs the map in the router. A node serving a
//! static map has no coordinator and starts the groups that map names it in. Every node,
//! standbys included, serves every key: the router forwards to the owning group's leader over
//! the link.

mod directives;
mod groups;
mod membership;
pub mod mux;
mod view;

pub use self::view::{relay, ADMIN_TIMEOUT, NO_COORDINATOR};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kameo::actor::ActorRef;
use kv_components::epfd::core::EpfdConfig;
use kv_components::epfd::Epfd;
use kv_components::overlay::component::{Overlay, OverlayArgs};
use kv_components::perfect_link::{LinkConfig, LinkError, PerfectLink};
use kv_components::task::TaskGuard;
use kv_components::timer::Timer;
use kv_ports::component::{connect, ConnectError, Start};
use kv_ports::fd::FailureDetectorPort;
use kv_ports::ids::NodeId;
use kv_ports::kv::KvPort;
use kv_ports::membership::{NodeInfo, SlotMap};
use kv_ports::network::NetworkPort;
use kv_ports::supervisor::{spawn_child, start_supervisor, Supervisor};
use kv_ports::timer::TimerPort;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use self::directives::Directives;
use self::groups::GroupHost;
use self::membership::{Membership, MembershipArgs, SuspectSet};
use self::view::LocalView;
use crate::coordinator::session::{NodeSession, Removal};
use crate::coordinator::{CoordinatorAddr, CoordinatorConfig};
use crate::gateway::{Gateway, GatewayConfig};
use crate::http::{self, HttpState, NodeCluster};
use crate::native::{ClientEndpoint, EndpointConfig, EndpointError};
use crate::resp::{self, Dialect};

/// How a node learns its slot map.
#[derive(Clone, Debug)]
pub enum Join {
    /// Check in with the bootstrap coordinator at this address (its own port, or a node's
    /// shared port for a coordinator embedded there) and follow the maps it publishes; the
    /// node's id is fresh and random.
    Coordinator(CoordinatorAddr),
    /// Serve a fixed map computed identically by every node: no coordinator, no change. `id`
    /// is this node's entry in the map, whose one address (link and client alike) it
    /// advertises; `NodeConfig::listen` is the port it binds for both.
    Static {
        /// The map.
        map: SlotMap,
        /// This node's id in it.
        id: NodeId,
    },
}

/// Where a node listens and how it joins.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's one port, shared by the native client endpoint and the node-to-node link
    /// (port 0 picks a free one).
    pub listen: SocketAddr,
    /// How the node learns its map.
    pub join: Join,
    /// The RESP endpoint, if any.
    pub resp: Option<SocketAddr>,
    /// The HTTP endpoint, if any (advertised in the map; served by the HTTP front end). Equal
    /// to `listen`, HTTP shares the node's one port (seed 001) instead of binding its own.
    pub http: Option<SocketAddr>,
}

/// What a node may do besides [`NodeConfig`] (seed 001 uses both).
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// The address peers and clients reach this node at, when it is not the bound one (the
    /// node listens on `0.0.0.0:PORT` behind NAT or a port mapping); `None`: the bound address.
    pub advertise: Option<SocketAddr>,
    /// Run a coordinator with this configuration inside the node, behind its shared port
    /// (reached with [`crate::coordinator::PREAMBLE`]); the node itself cannot be removed.
    pub coordinator: Option<CoordinatorConfig>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The perfect link could not bind.
    #[error("node-to-node link: {0}")]
    Link(#[from] LinkError),
    /// The native endpoint could not bind.
    #[error("client endpoint: {0}")]
    Endpoint(#[from] EndpointError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A static map that does not name this node.
    #[error("node {0} is not in the static map")]
    NotInMap(NodeId),
    /// A component stopped while being wired.
    #[error("wiring: {0}")]
    Wiring(#[from] ConnectError),
}

/// A running node. Dropping it does not stop the components; call [`Node::stop`].
pub struct Node {
    /// This node's id (random per process: a restarted process is a new node).
    pub id: NodeId,
    /// Its addresses as published in the slot map.
    pub info: NodeInfo,
    supervisor: ActorRef<Supervisor>,
    link: ActorRef<PerfectLink>,
    endpoint: ActorRef<ClientEndpoint>,
    gateway: ActorRef<Gateway>,
    groups: GroupHost,
    /// Told if the coordinator removes this node (taken by [`Node::removal`]).
    removed: Option<oneshot::Receiver<Removal>>,
    _static_maps: Option<watch::Sender<SlotMap>>,
    _tasks: Vec<TaskGuard>,
}

impl Node {
    /// Binds every endpoint, wires the components and checks in with the coordinator. Returns
    /// once the node serves (requests before the first map are answered `NotLeader`, which
    /// clients retry).
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        Node::start_with(config, NodeOptions::default()).await
    }

    /// [`Node::start`] with `options`.
    pub async fn start_with(config: NodeConfig, options: NodeOptions) -> Result<Node, NodeError> {
        // Before any component starts, so the link and Paxos counters count from the start.
        crate::metrics::install();
        let listener = bind(config.listen).await?;
        let bound = listener.local_addr().map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?;
        let (id, addr) = match &config.join {
            Join::Coordinator(_) => (NodeId(fresh_id()), options.advertise.unwrap_or(bound)),
            Join::Static { map, id } => {
                let me = map.node(*id).ok_or(NodeError::NotInMap(*id))?;
                if me.link != me.client || me.link.port() != bound.port() {
                    tracing::warn!(node = %id, link = %me.link, client = %me.client, %bound,
                        "the static map's addresses for this node differ from its one port");
                }
                (*id, me.link)
            }
        };
        let supervisor = start_supervisor(format!("node {id}"));
        let link = PerfectLink::start_shared(id, addr, LinkConfig::default());
        let timer = spawn_child::<Timer>(&supervisor, ()).await;

        let suspects = SuspectSet::default();
        let coordinator = match &config.join {
            Join::Coordinator(addr) => Some(*addr),
            Join::Static { .. } => None,
        };
        // The session's outbound queue: directive answers and suspicion reports.
        let (to_coordinator, outbound) = mpsc::unbounded_channel();
        let membership_args = MembershipArgs {
            me: id,
            suspects: suspects.clone(),
            session: coordinator.map(|_| to_coordinator.clone()),
        };
        let membership = spawn_child::<Membership>(&supervisor, membership_args).await;
        let epfd = spawn_child::<Epfd>(&supervisor, EpfdConfig::default()).await;
        connect::<NetworkPort, _, _>(&link, &epfd).await?;
        connect::<TimerPort, _, _>(&timer, &epfd).await?;
        connect::<FailureDetectorPort, _, _>(&epfd, &membership).await?;
        connect::<NetworkPort, _, _>(&link, &membership).await?;

        let overlay = spawn_child::<Overlay>(
            &supervisor,
            OverlayArgs {
                me: id,
                replication: 0,
            },
        )
        .await;
        connect::<NetworkPort, _, _>(&link, &overlay).await?;
        let (groups, retired) = GroupHost::new(
            id,
            supervisor.clone(),
            link.clone(),
            timer.clone(),
            overlay.clone(),
        );

        let (maps_tx, maps) = watch::channel(SlotMap::empty(0));
        let view = LocalView {
            me: id,
            maps: maps.clone(),
            groups: groups.clone(),
            suspects: suspects.clone(),
            coordinator,
        };
        let endpoint = ClientEndpoint::start_shared(EndpointConfig::default(), Arc::new(view));
        connect::<KvPort, _, _>(&overlay, &endpoint).await?;
        let (gateway, service) = Gateway::start(GatewayConfig::default());
        connect::<KvPort, _, _>(&overlay, &gateway).await?;

        for started in [epfd.tell(Start).await, overlay.tell(Start).await] {
            started.map_err(|_| ConnectError::Stopped {
                port: "Start",
                component: "node",
            })?;
        }

        let http_state = || HttpState {
            service: service.clone(),
            cluster: Arc::new(
                NodeCluster::new(id, maps.clone(), addr).with_coordinator(coordinator),
            ),
        };
        let mut targets = mux::Targets {
            link: link.downgrade(),
            native: endpoint.downgrade(),
            http: None,
            coordinator: None,
        };
        let mut tasks = Vec::new();
        if let Some(embedded) = options.coordinator {
            let (inbox, server) = mux::serve_coordinator(embedded, addr);
            targets.coordinator = Some(inbox);
            tasks.push(server);
        }
        let http_addr = match config.http {
            // HTTP on the node's one port (seed 001): the mux hands its connections over.
            Some(http) if http == config.listen => {
                let (inbox, server) = mux::serve_http(http_state(), bound);
                targets.http = Some(inbox);
                tasks.push(server);
                Some(addr)
            }
            Some(http) => {
                let listener = bind(http).await?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| NodeError::Listen { addr: http, source })?;
                let state = http_state();
                tasks.push(TaskGuard::spawn(async move {
                    if let Err(e) = http::serve(listener, state, std::future::pending()).await {
                        tracing::error!(error = %e, "HTTP server failed");
                    }
                }));
                Some(bound)
            }
            None => None,
        };
        tasks.push(mux::serve(listener, targets, mux::MuxConfig::default()));
        let resp_addr = match config.resp {
            Some(addr) => {
                let listener = bind(addr).await?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| NodeError::Listen { addr, source })?;
                tasks.push(TaskGuard::spawn(async move {
                    let forever = std::future::pending::<()>();
                    if let Err(e) = resp::serve(listener, service, Dialect::Redis, forever).await {
                        tracing::error!(error = %e, "RESP server failed");
                    }
                }));
                Some(bound)
            }
            None => None,
        };
        let info = NodeInfo {
            id,
            link: addr,
            client: addr,
            resp: resp_addr,
            http: http_addr,
        };
        tasks.push(groups.detach_retired(retired));
        let is_static = coordinator.is_none();
        tasks.push(groups::follow(
            groups.clone(),
            membership.clone(),
            maps,
            is_static,
        ));
        let mut static_maps = None;
        let mut removed = None;
        match config.join {
            Join::Coordinator(addr) => {
                let agent = Directives::new(groups.clone(), membership, suspects, to_coordinator);
                let (tell, told) = oneshot::channel();
                removed = Some(told);
                let session = NodeSession {
                    agent: Arc::new(agent),
                    outbound,
                    removed: Some(tell),
                    reporter: Some(Arc::new(groups.clone())),
                };
                tasks.push(crate::coordinator::session::start_node(
                    addr,
                    info.clone(),
                    maps_tx,
                    session,
                ));
            }
            Join::Static { map, .. } => {
                maps_tx.send_replace(map);
                // Kept by the node: a static map changes only through this sender.
                static_maps = Some(maps_tx);
            }
        }
        tracing::info!(node = %id, listen = %bound, %addr, resp = ?resp_addr, "node started");
        Ok(Node {
            id,
            info,
            supervisor,
            link,
            endpoint,
            gateway,
            groups,
            removed,
            _static_maps: static_maps,
            _tasks: tasks,
        })
    }

    /// Resolves when the node's supervisor stops (a component failed, or [`Node::stop`]).
    pub async fn stopped(&self) {
        self.supervisor.wait_for_shutdown().await;
    }

    /// Resolves when the coordinator has removed this node from the cluster (it left, or it was
    /// declared failed and replaced); never for a node serving a static map, nor on a second
    /// call. The node keeps serving until stopped: see [`Node::let_groups_retire`].
    pub fn removal(&mut self) -> impl Future<Output = Removal> + Send + 'static {
        let told = self.removed.take();
        async move {
            match told {
                Some(told) => match told.await {
                    Ok(removal) => removal,
                    Err(_) => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        }
    }

    /// Waits (at most `within`) until every group member on this node has retired: a member
    /// leaving a group serves the group's state to the new members until a majority of them
    /// runs, so a removed node should not vanish before. True if all retired in time.
    pub async fn let_groups_retire(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let running = self.groups.all().await;
            if running.is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                let groups: Vec<_> = running.iter().map(|(g, _)| *g).collect();
                tracing::warn!(?groups, "group members still running; stopping anyway");
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every component and closes every socket.
    pub async fn stop(self) {
        let Node {
            supervisor,
            link,
            endpoint,
            gateway,
            _tasks,
            ..
        } = self;
        drop(_tasks);
        for stopping in [
            endpoint.stop_gracefully().await,
            gateway.stop_gracefully().await,
        ] {
            let _ = stopping;
        }
        endpoint.wait_for_shutdown().await;
        gateway.wait_for_shutdown().await;
        let _ = supervisor.stop_gracefully().await;
        supervisor.wait_for_shutdown().await;
        let _ = link.stop_gracefully().await;
        link.wait_for_shutdown().await;
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Listen { addr, source })
}

/// A random non-zero id: node ids only need to be unique, and a process that restarts must
/// not reuse its old one (it forgot its promises).
fn fresh_id() -> u64 {
    loop {
        // The low half: the high half holds the UUID version nibble, which would make every
        // short id shown in `status` start with the same digit.
        let id = uuid::Uuid::new_v4().as_u64_pair().1;
        if id != 0 {
            return id;
        }
    }
}
