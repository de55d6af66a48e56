//! The HTTP front end of a data node: seed 001's REST API, seed 000's JSON messages, the
//! cluster status and the metrics.
//!
//! | request | answer |
//! |---|---|
//! | `GET /kv-store/<key>` (field `causal_payload`, ignored) | `{"result":"success","value":..,"partition_id":..,"causal_payload":..,"timestamp":..}`; a missing key is 404 `{"result":"error","error":"key does not exist"}` |
//! | `PUT /kv-store/<key>` (fields `val`, `causal_payload`) | `{"result":"success","partition_id":..,"causal_payload":..,"timestamp":..}`; no `val` is 400 |
//! | `DELETE /kv-store/<key>` (extension) | like `PUT`; a missing key is 404 |
//! | `GET /kv-store/get_partition_id` | `{"result":"success","partition_id":N}`; `-1` on a standby (a seed 001 proxy) or a node outside the map |
//! | `GET /kv-store/get_all_partition_ids` | `{"result":"success","partition_id_list":[..]}` |
//! | `GET /kv-store/get_partition_members` (field `partition_id`) | `{"result":"success","partition_members":["ip:port",..]}`: the members' HTTP addresses (their native address when they serve no HTTP); 400 for a malformed id, 404 for an unknown one |
//! | `PUT /kv-store/update_view?type=add\|remove` (field `ip_port`) | `{"result":"success","partition_id":..,"number_of_partitions":..}` (`add`) or `{"result":"success","number_of_partitions":..}` (`remove`), or the error answer from [`ClusterInfo::update_view`] (503) |
//! | `POST /` with a seed 000 message | see [`seed000`] |
//! | `GET /status` | [`ClusterInfo::status_json`] |
//! | `GET /metrics` | [`crate::metrics::render`], Prometheus text format |
//!
//! **Fields** are read from the query string and from the body, for every method (curl's `-d`
//! sends a form body with `GET`); the body wins. Bodies are form-encoded, or a flat JSON object
//! when the `Content-Type` says `application/json`. Keys are the percent-decoded rest of the
//! path after `/kv-store/` (so they may contain `/`); the four names above are reserved.
//! Keys and values are bytes; answers show them as UTF-8 text (invalid sequences replaced).
//!
//! **`causal_payload`.** The store is linearizable, so causal metadata adds nothing: the
//! field is accepted and ignored, and answers carry an opaque token `"<epoch>.<partition>"`
//! (the slot map's epoch and the key's partition) that clients may send back unchanged.
//! **`timestamp`** is the answer's wall-clock time in Unix seconds, as a string.
//!
//! **Errors** are `{"result":"error","error":"..."}` (seed 001) or `{"code":"fail",...}` (seed
//! 000) with a status: 400 for bad input (nothing changed), 404 for a missing key, partition
//! or endpoint, 405 for a wrong method, 413 for an oversized body, 503 when the store cannot
//! answer (`"key value store is not available: ..."`, nothing changed) or when the outcome of
//! a write is unknown (the message says it may have taken effect). No input makes a handler
//! panic.

mod cluster;
mod errors;
mod form;
pub mod seed000;
mod seed001;
mod status;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::serve::Listener;
use axum::{Json, Router};
use bytes::Bytes;
use futures::future::BoxFuture;
use kv_ports::ids::{GroupId, NodeId};
use kv_ports::kv::{KvOp, KvResult, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use kv_ports::membership::{Epoch, SlotMap};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub use cluster::{FixedView, NodeCluster, StaticCluster};
pub use errors::{HttpError, NOT_AVAILABLE, NO_SUCH_KEY};
pub use form::Fields;
pub use status::status_json;

use crate::metrics::{self, Frontend, OpKind, Outcome};
use crate::service::{KvService, ServiceError};

/// What [`ClusterInfo::update_view`] answers on a node whose view cannot change.
pub const FIXED_VIEW: &str =
    "reconfiguration is not available in this version: the view is fixed at start-up";

/// The largest request body read: a value of [`MAX_VALUE_BYTES`] and a key of
/// [`MAX_KEY_BYTES`], both percent-encoded (three bytes per byte), and room for the rest.
pub const MAX_BODY_BYTES: usize = 3 * (MAX_VALUE_BYTES + MAX_KEY_BYTES) + 64 * 1024;

/// A seed 001 view change: one node joins or leaves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ViewChange {
    /// `type=add`: the node at this address (its HTTP `ip:port`) joins.
    Add(SocketAddr),
    /// `type=remove`: the node at this address leaves.
    Remove(SocketAddr),
}

/// The cluster after a view change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ViewChanged {
    /// The added node's partition (`None`: it became a standby, shown as `-1`); not shown for a
    /// removal.
    pub partition_id: Option<GroupId>,
    /// How many partitions exist now.
    pub number_of_partitions: usize,
}

/// What the HTTP front end needs to know about the cluster besides executing operations.
pub trait ClusterInfo: Send + Sync + 'static {
    /// The current slot map (possibly unformed: no groups yet).
    fn map(&self) -> SlotMap;

    /// This node's id, if it has one in the cluster.
    fn me(&self) -> Option<NodeId>;

    /// The cluster status as JSON, for `GET /status`.
    fn status_json(&self) -> BoxFuture<'static, serde_json::Value>;

    /// Applies a seed 001 view change; the error text goes to the client as is.
    fn update_view(&self, change: ViewChange) -> BoxFuture<'static, Result<ViewChanged, String>>;

    /// The map's epoch and the partition of `key` (`None` while the map is unformed). The
    /// default asks [`map`](Self::map); implementations may answer without copying the map.
    fn locate(&self, key: &[u8]) -> (Epoch, Option<GroupId>) {
        let map = self.map();
        (map.epoch, map.group_of_key(key))
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct HttpState {
    /// Executes the key-value operations.
    pub service: Arc<dyn KvService>,
    /// Answers about the cluster.
    pub cluster: Arc<dyn ClusterInfo>,
}

/// The routes of the HTTP front end over `state` (see the module documentation). Installs the
/// metrics recorder ([`metrics::install`]) so `/metrics` has something to show.
pub fn router(state: HttpState) -> Router {
    metrics::install();
    Router::new()
        .route("/", any(seed000::handle))
        .route("/kv-store", any(seed001::no_key))
        .route("/kv-store/", any(seed001::no_key))
        .route("/kv-store/{*rest}", any(seed001::handle))
        .route("/status", get(status).fallback(wrong_method))
        .route("/metrics", get(render_metrics).fallback(wrong_method))
        .fallback(no_route)
        .with_state(state)
}

/// Serves [`router`]`(state)` on `listener` until `shutdown` completes; then stops accepting,
/// lets requests in progress finish and returns. Failed accepts are retried, so it returns an
/// error only if the listener itself breaks.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(listen = %addr, "HTTP front end listening");
    }
    serve_on(listener, state, shutdown).await
}

/// [`serve`] on any [`Listener`]: for instance [`HandedStreams`], the connections another task
/// accepted on a port shared with other protocols.
pub async fn serve_on<L>(
    listener: L,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A [`Listener`] fed with connections accepted elsewhere, e.g. by a multiplexer that owns a
/// port shared with other protocols: it sends each HTTP connection (nothing read from it;
/// peeking is fine) as anything convertible to `(stream, peer address)`. When every sender is
/// gone it simply accepts nothing more; the server still stops on its shutdown.
pub struct HandedStreams<T = (TcpStream, SocketAddr)> {
    streams: mpsc::Receiver<T>,
    local: SocketAddr,
}

impl<T> HandedStreams<T> {
    /// A listener taking connections from `streams`, answering `local` as its address.
    pub fn new(streams: mpsc::Receiver<T>, local: SocketAddr) -> HandedStreams<T> {
        HandedStreams { streams, local }
    }
}

impl<T> Listener for HandedStreams<T>
where
    T: Into<(TcpStream, SocketAddr)> + Send + 'static,
{
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.streams.recv().await {
            Some(handed) => handed.into(),
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Runs `op` on the service, counting it in the metrics as an HTTP operation.
async fn execute(state: &HttpState, op: KvOp) -> Result<KvResult, ServiceError> {
    let kind = OpKind::of(&op);
    let started = Instant::now();
    let result = state.service.execute(op).await;
    metrics::record_op(
        Frontend::Http,
        kind,
        Outcome::of_service(&result),
        started.elapsed(),
    );
    result
}

/// Counts a request refused before it reached the service.
fn record_rejected(kind: OpKind) {
    metrics::record_op(
        Frontend::Http,
        kind,
        Outcome::Rejected,
        std::time::Duration::ZERO,
    );
}

/// Reads a request body of at most [`MAX_BODY_BYTES`].
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, HttpError> {
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            if e.to_string().contains("length limit") {
                too_large()
            } else {
                HttpError::bad_request(format!("cannot read the request body: {e}"))
            }
        })
}

async fn status(State(state): State<HttpState>) -> Json<serde_json::Value> {
    Json(state.cluster.status_json().await)
}

async fn render_metrics() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics::render(),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> HttpError {
    HttpError::method_not_allowed(&method, uri.path())
}

async fn no_route(uri: Uri) -> Response {
    HttpError::not_found(format!("no such endpoint: {}", uri.path())).into_response()
}
