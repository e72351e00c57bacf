//! Who is calling the gateway, and whether they may.
//!
//! The gateway takes the same users as RESP (`resp::acl`):
//!
//! - `Authorization: Basic base64(user:password)` for any user;
//! - `Authorization: Bearer <password>` for the `default` user (the
//!   password `requirepass` sets, as `AUTH <password>` in RESP);
//! - no header: the `default` user, if it needs no password.
//!
//! Missing or wrong credentials answer 401 `unauthenticated` (with a
//! `WWW-Authenticate: Basic` challenge); a user whose rules do not allow
//! the route answers 403 `forbidden` with Redis's `NOPERM` text. Each route
//! is checked as the Redis command it amounts to:
//!
//! | route | command checked | keys |
//! | --- | --- | --- |
//! | `GET /v1/keys/{key}` | `get` | the key |
//! | `PUT /v1/keys/{key}` | `set` | the key |
//! | `DELETE /v1/keys/{key}` | `del` | the key |
//! | `POST /v1/keys/{key}/cas` | `get` and `set` | the key |
//! | `POST /v1/keys/{key}/incr` | `incr` | the key |
//! | `GET /v1/keys` | `scan` | |
//! | `/v1/cluster`, `/v1/node`, `/v1/dashboard`, `/`, `/metrics` | `info` | |
//! | `/v1/admin/...`, `/v1/demo/...` | every `@admin` command | |
//!
//! Open to anyone: `/livez`, `/readyz` (probes) and `/v1/openapi.json`
//! (the API's description, no data).

use std::sync::Arc;

use ::resp::{Acl, User};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// Paths that need no credentials.
const OPEN_PATHS: [&str; 3] = ["/livez", "/readyz", "/v1/openapi.json"];

/// The authenticated user of a request (set by [`authenticate`]).
#[derive(Clone, Debug)]
pub struct Caller(pub Arc<User>);

impl Caller {
    /// Whether the caller may run `command` on `key` (403 if not).
    pub fn check(&self, command: &str, key: Option<&str>) -> Result<(), ApiError> {
        self.0
            .check_named(command, key.into_iter().map(str::as_bytes))
            .map_err(|denied| ApiError::new(403, "forbidden", denied.reply_text()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| unauthenticated("authentication required"))
    }
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(401, "unauthenticated", message)
}

/// The user that `headers` authenticate as (see [`crate::auth`]).
///
/// # Errors
///
/// 401 `unauthenticated`: no credentials where a password is needed,
/// malformed ones, or a wrong user or password.
pub fn authenticate_headers(acl: &Acl, headers: &HeaderMap) -> Result<Arc<User>, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    crate::auth::authenticate(acl, value).map_err(|error| unauthenticated(&error.to_string()))
}

/// What a route needs beyond its keys (checked here, before the handler).
fn route_requirement(path: &str) -> Option<&'static str> {
    if path.starts_with("/v1/admin/") || path.starts_with("/v1/demo/") {
        Some("@admin")
    } else if path == "/v1/keys" {
        Some("scan")
    } else if path.starts_with("/v1/keys/") {
        // The handlers check the command with the decoded key.
        None
    } else {
        Some("info")
    }
}

/// Authenticates every request but the open ones, checks the route's
/// command, and hands the [`Caller`] to the handlers.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if OPEN_PATHS.contains(&path) {
        return next.run(request).await;
    }
    let user = match authenticate_headers(&state.node.acl, request.headers()) {
        Ok(user) => user,
        Err(error) => {
            let mut response = error.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"distcache\", charset=\"UTF-8\""),
            );
            return response;
        }
    };
    let caller = Caller(user);
    let allowed = match route_requirement(path) {
        Some("@admin") => {
            if caller.0.has_category("@admin") {
                Ok(())
            } else {
                Err(ApiError::new(
                    403,
                    "forbidden",
                    format!(
                        "NOPERM User {} may not run every @admin command, which this route needs",
                        caller.0.name()
                    ),
                ))
            }
        }
        Some(command) => caller.check(command, None),
        None => Ok(()),
    };
    if let Err(error) = allowed {
        return error.into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}
