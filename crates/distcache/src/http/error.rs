//! The one error shape of the gateway: `{"code", "message"}` and a status.
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `invalid_argument`, `bad_request` | bad input (empty or oversized key, TTL 0, `nx` with `xx`, a malformed query or JSON body); nothing changed |
//! | 401 | `unauthenticated` | no credentials where a password is needed, or wrong ones (see `auth`) |
//! | 403 | `forbidden` | the user's ACL rules do not allow the route's command or key (Redis's `NOPERM` text) |
//! | 404 | `not_found` | the key is absent (GET, DELETE) |
//! | 404 | `no_route` | no such route |
//! | 405 | `method_not_allowed` | the route exists, the method does not |
//! | 409 | `cas_failed` | compare-and-set: the value was not the expected one |
//! | 409 | `condition_failed` | PUT `nx` on a present key or `xx` on an absent one |
//! | 409 | `not_an_integer` | `incr` on a value that is not a 64-bit integer, or an overflow |
//! | 409 | `refused` | the value does not fit the operation (a replicated refusal); nothing changed |
//! | 409 | `stale_session` | a session's seq is older than its latest write |
//! | 413 | `payload_too_large` | the request body is over `max_body_bytes` |
//! | 429 | `overloaded` | the node sheds load (too many requests in flight) |
//! | 503 | `unavailable` | no leader of the owning group answered before the deadline (a write may still apply) |
//! | 503 | `timeout` | the gateway's request timeout passed |
//! | 503 | `shutting_down` | the node is stopping |
//! | 503 | `not_ready` | `/readyz`: see the message |
//! | 500 | `internal` | an answer no replica should give |

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::forward::ForwardError;

/// The JSON body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable (see the table in the module docs).
    pub code: String,
    /// For people; may change between versions.
    pub message: String,
}

/// An error answer: a status and an [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: ErrorBody {
                code: code.to_string(),
                message: message.into(),
            },
        }
    }

    pub fn bad_input(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid_argument", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "internal", message)
    }
}

impl From<ForwardError> for ApiError {
    fn from(error: ForwardError) -> ApiError {
        match error {
            ForwardError::InvalidArgument(detail) => ApiError::bad_input(detail),
            ForwardError::OverLimit(error) => ApiError::bad_input(error.to_string()),
            error @ ForwardError::Timeout { .. } => {
                ApiError::new(503, "unavailable", error.to_string())
            }
            error @ ForwardError::StaleSession { .. } => {
                ApiError::new(409, "stale_session", error.to_string())
            }
            error @ ForwardError::ShuttingDown => {
                ApiError::new(503, "shutting_down", error.to_string())
            }
            // The value does not fit the operation (an increment of text,
            // an overflow); nothing changed.
            ForwardError::Refused(
                error @ (api::Error::NotAnInteger | api::Error::IncrementOverflow),
            ) => ApiError::new(409, "not_an_integer", error.to_string()),
            ForwardError::Refused(error @ (api::Error::NotAFloat | api::Error::NotFinite)) => {
                ApiError::new(409, "not_a_number", error.to_string())
            }
            ForwardError::Refused(error) => ApiError::new(409, "refused", error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
