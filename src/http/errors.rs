//! Seed 001's error answer, `{"result":"error","error":"..."}`, with an HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::service::ServiceError;

/// The message seed 001 gives for a store that cannot answer (used, with details, for
/// [`ServiceError::Unavailable`] and an unformed cluster).
pub const NOT_AVAILABLE: &str = "key value store is not available";

/// The message for a key that holds no value.
pub const NO_SUCH_KEY: &str = "key does not exist";

/// An error answer: the status and the `error` text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct HttpError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `error` field.
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    result: &'static str,
    error: &'a str,
}

impl HttpError {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is malformed or invalid; nothing was changed.
    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such key, partition or endpoint.
    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, message)
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed(method: &axum::http::Method, path: &str) -> HttpError {
        HttpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not allowed on {path}"),
        )
    }

    /// 503: the store cannot answer now.
    pub fn unavailable(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// The answer to a failed service call: 400 for a rejected operation (it had no effect),
    /// 503 for an unavailable store (no effect) and for an unknown outcome (the message says
    /// the operation may have taken effect).
    pub fn from_service(error: &ServiceError) -> HttpError {
        match error {
            ServiceError::Rejected(why) => HttpError::bad_request(why.clone()),
            ServiceError::Unavailable(why) => {
                HttpError::unavailable(format!("{NOT_AVAILABLE}: {why}"))
            }
            ServiceError::Unknown(why) => HttpError::unavailable(format!(
                "outcome unknown, the operation may or may not have taken effect: {why}"
            )),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            result: "error",
            error: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}
