//! Seed 000's JSON messages on `POST /`.
//!
//! | message | success | failure |
//! |---|---|---|
//! | `{"type":"put","payload":{"key":"k","value":"v"}}` | `{"code":"success"}` | |
//! | `{"type":"get","payload":{"key":"k"}}` | `{"code":"success","payload":{"key":"k","value":"v"}}` | 404 `{"code":"fail","payload":{"message":"key not found","key":"k"}}` |
//! | `{"type":"cas","payload":{"key":"k","expected":"v","value":"w"}}` (`expected: null`: the key must be absent) | `{"code":"success","payload":{"key":"k","swapped":true}}` (or `false`) | |
//! | `{"type":"delete","payload":{"key":"k"}}` | `{"code":"success","payload":{"key":"k","deleted":true}}` (or `false`) | |
//!
//! Keys and values are JSON strings (numbers and booleans are taken as their text). Every
//! failure is `{"code":"fail","payload":{"message":"..."}}` (with `"key"` when one was given)
//! and a status as in the [module documentation](super): 400 for a malformed message (nothing
//! changed), 405 for a method other than `POST`, 503 when the store cannot answer or the
//! outcome is unknown.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use kv_ports::kv::{KvOp, KvResult};
use serde::Serialize;
use serde_json::Value;

use super::errors::HttpError;
use super::{execute, read_body, record_rejected, HttpState};
use crate::metrics::OpKind;
use crate::native::frame::check_sizes;

/// The `message` of a `get` whose key holds no value.
pub const KEY_NOT_FOUND: &str = "key not found";

/// A seed 000 answer.
#[derive(Serialize)]
struct Reply {
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Payload>,
}

#[derive(Default, Serialize)]
struct Payload {
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    swapped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<bool>,
}

/// A failure: the status, the message and the key it concerns, if known.
struct Fail {
    status: StatusCode,
    message: String,
    key: Option<String>,
}

impl Fail {
    fn bad(message: impl Into<String>) -> Fail {
        Fail {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            key: None,
        }
    }
}

impl From<HttpError> for Fail {
    fn from(e: HttpError) -> Fail {
        Fail {
            status: e.status,
            message: e.message,
            key: None,
        }
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let payload = Payload {
            message: Some(self.message),
            key: self.key,
            ..Payload::default()
        };
        let reply = Reply {
            code: "fail",
            payload: Some(payload),
        };
        (self.status, Json(reply)).into_response()
    }
}

/// `POST /`.
pub(super) async fn handle(
    State(state): State<HttpState>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method != Method::POST {
        return Fail {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("method {method} is not allowed on /: POST a JSON message"),
            key: None,
        }
        .into_response();
    }
    let answer = async {
        let body = read_body(&headers, body).await?;
        let (op, key) = parse(&body)?;
        run(&state, op, key).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// The operation a message asks for, and its key as text (for the answer).
fn parse(body: &[u8]) -> Result<(KvOp, String), Fail> {
    let message: Value =
        serde_json::from_slice(body).map_err(|e| Fail::bad(format!("malformed JSON: {e}")))?;
    let Value::Object(message) = message else {
        return Err(Fail::bad("a message must be a JSON object"));
    };
    let kind = match message.get("type") {
        Some(Value::String(kind)) => kind.to_ascii_lowercase(),
        Some(_) => return Err(Fail::bad("type must be a string")),
        None => return Err(Fail::bad("missing type (put, get, cas or delete)")),
    };
    let Some(Value::Object(payload)) = message.get("payload") else {
        return Err(Fail::bad("missing payload object"));
    };
    let key = text(payload.get("key"), "key")?;
    let with_key = |e: Fail| Fail {
        key: Some(key.clone()),
        ..e
    };
    let bytes = |s: String| Bytes::from(s.into_bytes());
    let op = match kind.as_str() {
        "get" => KvOp::Get {
            key: bytes(key.clone()),
        },
        "put" => KvOp::Put {
            key: bytes(key.clone()),
            value: bytes(text(payload.get("value"), "value").map_err(with_key)?),
        },
        "cas" => {
            let expected = match payload.get("expected") {
                Some(Value::Null) => None,
                Some(v) => Some(bytes(text(Some(v), "expected").map_err(with_key)?)),
                None => {
                    return Err(with_key(Fail::bad(
                        "missing expected (null when the key must be absent)",
                    )))
                }
            };
            KvOp::Cas {
                key: bytes(key.clone()),
                expected,
                new: bytes(text(payload.get("value"), "value").map_err(with_key)?),
            }
        }
        "delete" => KvOp::Delete {
            key: bytes(key.clone()),
        },
        other => {
            return Err(with_key(Fail::bad(format!(
                "unknown type {other:?} (put, get, cas or delete)"
            ))))
        }
    };
    if key.is_empty() {
        record_rejected(OpKind::of(&op));
        return Err(with_key(Fail::bad("key must not be empty")));
    }
    if let Err(e) = check_sizes(&op) {
        record_rejected(OpKind::of(&op));
        return Err(with_key(Fail::bad(e.to_string())));
    }
    Ok((op, key))
}

/// A field as text: strings as they are, numbers and booleans as written.
fn text(value: Option<&Value>, name: &str) -> Result<String, Fail> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(_) => Err(Fail::bad(format!("{name} must be a string"))),
        None => Err(Fail::bad(format!("missing payload.{name}"))),
    }
}

async fn run(state: &HttpState, op: KvOp, key: String) -> Result<Response, Fail> {
    let result = execute(state, op).await.map_err(|e| Fail {
        key: Some(key.clone()),
        ..Fail::from(HttpError::from_service(&e))
    })?;
    let payload = |p: Payload| Payload {
        key: Some(key.clone()),
        ..p
    };
    let payload = match result {
        KvResult::Written => None,
        KvResult::Value(Some(value)) => Some(payload(Payload {
            value: Some(String::from_utf8_lossy(&value).into_owned()),
            ..Payload::default()
        })),
        KvResult::Value(None) => {
            return Err(Fail {
                status: StatusCode::NOT_FOUND,
                message: KEY_NOT_FOUND.into(),
                key: Some(key),
            })
        }
        KvResult::Swapped(swapped) => Some(payload(Payload {
            swapped: Some(swapped),
            ..Payload::default()
        })),
        KvResult::Deleted(deleted) => Some(payload(Payload {
            deleted: Some(deleted),
            ..Payload::default()
        })),
        KvResult::Frozen(_) | KvResult::Installed => {
            unreachable!("front ends send client operations only")
        }
    };
    Ok(Json(Reply {
        code: "success",
        payload,
    })
    .into_response())
}
