//! Seed 001's REST API under `/kv-store/`; see the [module documentation](super).

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use kv_ports::ids::GroupId;
use kv_ports::kv::{KvOp, KvResult};
use kv_ports::membership::Epoch;
use serde::Serialize;

use super::errors::{HttpError, NOT_AVAILABLE, NO_SUCH_KEY};
use super::form::{decode, Fields};
use super::{execute, read_body, record_rejected, HttpState, ViewChange};
use crate::metrics::OpKind;
use crate::native::frame::check_sizes;

const PREFIX: &str = "/kv-store/";
const SUCCESS: &str = "success";

/// The partition id shown for a node in no partition (a standby, seed 001's proxy), or for a
/// key while no map is formed.
const NO_PARTITION: i64 = -1;

/// `/kv-store` and `/kv-store/`: a key operation without a key.
pub(super) async fn no_key() -> HttpError {
    HttpError::bad_request("missing key: use /kv-store/<key>")
}

/// Everything under `/kv-store/`.
pub(super) async fn handle(
    State(state): State<HttpState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = async {
        let body = read_body(&headers, body).await?;
        let fields = Fields::parse(uri.query(), &headers, &body)?;
        let raw = uri.path().strip_prefix(PREFIX).unwrap_or_default();
        let key = decode(raw.as_bytes(), false);
        route(&state, &method, uri.path(), key, &fields).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

async fn route(
    state: &HttpState,
    method: &Method,
    path: &str,
    key: Vec<u8>,
    fields: &Fields,
) -> Result<Response, HttpError> {
    let wrong = || HttpError::method_not_allowed(method, path);
    let reserved = match key.as_slice() {
        b"get_partition_id" => Some(Method::GET),
        b"get_all_partition_ids" => Some(Method::GET),
        b"get_partition_members" => Some(Method::GET),
        b"update_view" => Some(Method::PUT),
        _ => None,
    };
    if let Some(allowed) = reserved {
        if *method != allowed {
            return Err(wrong());
        }
        return match key.as_slice() {
            b"get_partition_id" => partition_id(state),
            b"get_all_partition_ids" => all_partition_ids(state),
            b"get_partition_members" => partition_members(state, fields),
            _ => update_view(state, fields).await,
        };
    }
    if *method == Method::GET {
        get(state, key).await
    } else if *method == Method::PUT {
        put(state, key, fields).await
    } else if *method == Method::DELETE {
        delete(state, key).await
    } else {
        Err(wrong())
    }
}

#[derive(Serialize)]
struct ValueReply {
    result: &'static str,
    value: String,
    partition_id: i64,
    causal_payload: String,
    timestamp: String,
}

#[derive(Serialize)]
struct WriteReply {
    result: &'static str,
    partition_id: i64,
    causal_payload: String,
    timestamp: String,
}

/// Where a key lives, for its answer: the partition id and the causal token.
struct Placement {
    partition_id: i64,
    causal_payload: String,
}

fn place(state: &HttpState, key: &[u8]) -> Placement {
    let (epoch, group) = state.cluster.locate(key);
    let partition_id = group.map_or(NO_PARTITION, |g| i64::from(g.0));
    Placement {
        partition_id,
        causal_payload: causal_token(epoch, partition_id),
    }
}

/// The opaque causal token: the map's epoch and the key's partition (see the module docs).
fn causal_token(epoch: Epoch, partition_id: i64) -> String {
    format!("{}.{}", epoch.0, partition_id)
}

fn timestamp() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string()
}

/// Checks an operation's sizes before it is sent; an oversized one is counted and refused.
fn checked(op: KvOp) -> Result<KvOp, HttpError> {
    if op.key().is_none_or(|k| k.is_empty()) {
        record_rejected(OpKind::of(&op));
        return Err(HttpError::bad_request("key must not be empty"));
    }
    match check_sizes(&op) {
        Ok(()) => Ok(op),
        Err(e) => {
            record_rejected(OpKind::of(&op));
            Err(HttpError::bad_request(e.to_string()))
        }
    }
}

async fn get(state: &HttpState, key: Vec<u8>) -> Result<Response, HttpError> {
    let op = checked(KvOp::Get {
        key: Bytes::from(key),
    })?;
    let placement = place(state, op.key().map_or(&[][..], |k| &k[..]));
    match execute(state, op).await {
        Ok(KvResult::Value(Some(value))) => Ok(Json(ValueReply {
            result: SUCCESS,
            value: String::from_utf8_lossy(&value).into_owned(),
            partition_id: placement.partition_id,
            causal_payload: placement.causal_payload,
            timestamp: timestamp(),
        })
        .into_response()),
        Ok(KvResult::Value(None)) => Err(HttpError::not_found(NO_SUCH_KEY)),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(HttpError::from_service(&e)),
    }
}

async fn put(state: &HttpState, key: Vec<u8>, fields: &Fields) -> Result<Response, HttpError> {
    let Some(value) = fields.get("val") else {
        record_rejected(OpKind::Put);
        return Err(HttpError::bad_request(
            "missing val: send the value as val=<value>",
        ));
    };
    let op = checked(KvOp::Put {
        key: Bytes::from(key),
        value: Bytes::copy_from_slice(value),
    })?;
    let placement = place(state, op.key().map_or(&[][..], |k| &k[..]));
    match execute(state, op).await {
        Ok(KvResult::Written) => Ok(written(placement)),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(HttpError::from_service(&e)),
    }
}

async fn delete(state: &HttpState, key: Vec<u8>) -> Result<Response, HttpError> {
    let op = checked(KvOp::Delete {
        key: Bytes::from(key),
    })?;
    let placement = place(state, op.key().map_or(&[][..], |k| &k[..]));
    match execute(state, op).await {
        Ok(KvResult::Deleted(true)) => Ok(written(placement)),
        Ok(KvResult::Deleted(false)) => Err(HttpError::not_found(NO_SUCH_KEY)),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(HttpError::from_service(&e)),
    }
}

fn written(placement: Placement) -> Response {
    Json(WriteReply {
        result: SUCCESS,
        partition_id: placement.partition_id,
        causal_payload: placement.causal_payload,
        timestamp: timestamp(),
    })
    .into_response()
}

/// A service that answered an operation with another operation's result: a bug there, told
/// to the client as an unavailable store rather than a panic here.
fn unexpected(result: &KvResult) -> HttpError {
    tracing::error!(
        ?result,
        "the service answered with a result of another kind"
    );
    HttpError::unavailable(format!("{NOT_AVAILABLE}: unexpected answer {result:?}"))
}

#[derive(Serialize)]
struct PartitionIdReply {
    result: &'static str,
    partition_id: i64,
}

#[derive(Serialize)]
struct PartitionListReply {
    result: &'static str,
    partition_id_list: Vec<u32>,
}

#[derive(Serialize)]
struct MembersReply {
    result: &'static str,
    partition_members: Vec<String>,
}

#[derive(Serialize)]
struct AddedReply {
    result: &'static str,
    partition_id: i64,
    number_of_partitions: usize,
}

#[derive(Serialize)]
struct RemovedReply {
    result: &'static str,
    number_of_partitions: usize,
}

fn unformed() -> HttpError {
    HttpError::unavailable(format!("{NOT_AVAILABLE}: no partitions formed yet"))
}

fn partition_id(state: &HttpState) -> Result<Response, HttpError> {
    let map = state.cluster.map();
    if !map.is_formed() {
        return Err(unformed());
    }
    let partition_id = state
        .cluster
        .me()
        .and_then(|me| map.group_of_node(me))
        .map_or(NO_PARTITION, |g| i64::from(g.0));
    Ok(Json(PartitionIdReply {
        result: SUCCESS,
        partition_id,
    })
    .into_response())
}

fn all_partition_ids(state: &HttpState) -> Result<Response, HttpError> {
    let map = state.cluster.map();
    if !map.is_formed() {
        return Err(unformed());
    }
    Ok(Json(PartitionListReply {
        result: SUCCESS,
        partition_id_list: map.partition_ids().iter().map(|g| g.0).collect(),
    })
    .into_response())
}

fn partition_members(state: &HttpState, fields: &Fields) -> Result<Response, HttpError> {
    let Some(text) = fields.text("partition_id") else {
        return Err(HttpError::bad_request(
            "missing partition_id: send partition_id=<id>",
        ));
    };
    let id: u32 = text.trim().parse().map_err(|_| {
        HttpError::bad_request(format!(
            "partition_id must be a non-negative integer, not {text:?}"
        ))
    })?;
    let map = state.cluster.map();
    if !map.is_formed() {
        return Err(unformed());
    }
    let Some(group) = map.group(GroupId(id)) else {
        return Err(HttpError::not_found(format!(
            "partition {id} does not exist"
        )));
    };
    let partition_members = group
        .members
        .iter()
        .filter_map(|&m| map.node(m))
        .map(|n| n.http.unwrap_or(n.client).to_string())
        .collect();
    Ok(Json(MembersReply {
        result: SUCCESS,
        partition_members,
    })
    .into_response())
}

async fn update_view(state: &HttpState, fields: &Fields) -> Result<Response, HttpError> {
    let Some(ip_port) = fields.text("ip_port") else {
        return Err(HttpError::bad_request(
            "missing ip_port: send ip_port=<ip:port>",
        ));
    };
    let addr: SocketAddr = ip_port.trim().parse().map_err(|_| {
        HttpError::bad_request(format!("ip_port must be <ip>:<port>, not {ip_port:?}"))
    })?;
    let change = match fields.text("type").as_deref().map(str::trim) {
        Some("add") => ViewChange::Add(addr),
        Some("remove") => ViewChange::Remove(addr),
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "type must be add or remove, not {other:?}"
            )))
        }
        None => {
            return Err(HttpError::bad_request(
                "missing type: use update_view?type=add or type=remove",
            ))
        }
    };
    let adding = matches!(change, ViewChange::Add(_));
    let changed = state
        .cluster
        .update_view(change)
        .await
        .map_err(HttpError::unavailable)?;
    let reply = if adding {
        Json(AddedReply {
            result: SUCCESS,
            partition_id: changed
                .partition_id
                .map_or(NO_PARTITION, |g| i64::from(g.0)),
            number_of_partitions: changed.number_of_partitions,
        })
        .into_response()
    } else {
        Json(RemovedReply {
            result: SUCCESS,
            number_of_partitions: changed.number_of_partitions,
        })
        .into_response()
    };
    Ok(reply)
}
