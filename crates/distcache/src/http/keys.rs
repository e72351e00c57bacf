//! `/v1/keys`: values as raw bodies, one key per request.
//!
//! Keys are the path segment, percent-decoded, as UTF-8 (binary keys need
//! the gRPC or RESP front end). Values are the raw request and response
//! bodies; a request's `Content-Type` is ignored (the store keeps bytes and
//! no metadata) and values come back as `application/octet-stream`.
//!
//! Every route is one replicated operation, so each is atomic: `nx`/`xx`
//! are [`Op::Set`] with its condition (a PUT without `ttl_ms` clears the
//! key's TTL, as Redis's SET does), `incr` is [`Op::Increment`] (keeps the
//! TTL), `cas` is [`Op::CompareAndSet`].

use api::{SetCondition, SetTtl};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use shardkv::{Op, Outcome};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use crate::forward::ReadFrom;
use crate::keyspace::{self, KeyspaceError, ScanRequest};

/// Largest page of a scan.
pub const MAX_SCAN_LIMIT: u32 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", get(scan_keys))
        .route(
            "/v1/keys/{key}",
            get(get_key).put(put_key).delete(delete_key),
        )
        .route("/v1/keys/{key}/cas", post(compare_and_set))
        .route("/v1/keys/{key}/incr", post(increment))
}

fn unexpected(op: &str, outcome: &Outcome) -> ApiError {
    ApiError::internal(format!("{op} was answered {outcome:?}"))
}

/// The longest TTL: the largest `int64`, as the OpenAPI document declares.
pub const MAX_TTL_MS: u64 = i64::MAX as u64;

fn check_ttl(ttl_ms: Option<u64>) -> Result<(), ApiError> {
    match ttl_ms {
        Some(0) => Err(ApiError::bad_input("a TTL of 0 ms is refused")),
        Some(ms) if ms > MAX_TTL_MS => Err(ApiError::bad_input(format!(
            "a TTL over {MAX_TTL_MS} ms is refused"
        ))),
        _ => Ok(()),
    }
}

/// A JSON milliseconds field: an integer, or a number with no fraction
/// (`195.0`: JSON does not tell them apart, and neither does the schema).
fn integer_ms<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Integer(u64),
        Float(f64),
    }
    match Option::<Number>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Number::Integer(ms)) => Ok(Some(ms)),
        // The bound is checked as f64 first, so the cast never saturates.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(Number::Float(ms)) if ms.fract() == 0.0 && (0.0..=MAX_TTL_MS as f64).contains(&ms) => {
            Ok(Some(ms as u64))
        }
        Some(Number::Float(ms)) => Err(serde::de::Error::custom(format!(
            "ttl_ms: {ms} is not a whole number of milliseconds in range"
        ))),
    }
}

async fn read(
    state: &AppState,
    key: &str,
    read_from: ReadFrom,
) -> Result<Option<Vec<u8>>, ApiError> {
    let op = Op::Get {
        key: key.as_bytes().to_vec(),
    };
    match state.node.forwarder.run_from(op, None, read_from).await? {
        Outcome::Value(value) => Ok(value),
        other => Err(unexpected("Get", &other)),
    }
}

async fn swap(
    state: &AppState,
    key: &str,
    expected: Option<Vec<u8>>,
    value: Vec<u8>,
    ttl_ms: Option<u64>,
) -> Result<bool, ApiError> {
    let op = Op::CompareAndSet {
        key: key.as_bytes().to_vec(),
        expected,
        value,
        ttl_ms,
    };
    match state.node.forwarder.run(op, None).await? {
        Outcome::Swapped(swapped) => Ok(swapped),
        other => Err(unexpected("CompareAndSet", &other)),
    }
}

/// Reads a key's value.
#[utoipa::path(
    get,
    path = "/v1/keys/{key}",
    tag = "keys",
    params(("key" = String, Path, description = "The key (UTF-8, percent-encoded in the path)"), GetParams),
    responses(
        (status = 200, description = "The value, as stored", body = String, content_type = "application/octet-stream"),
        (status = 400, description = "Bad key", body = ErrorBody),
        (status = 404, description = "No such key (`not_found`)", body = ErrorBody),
        (status = 429, description = "Load shed (`overloaded`)", body = ErrorBody),
        (status = 503, description = "No leader reached in time", body = ErrorBody),
    )
)]
pub async fn get_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(params): Query<GetParams>,
) -> Result<Response, ApiError> {
    caller.check("get", Some(&key))?;
    let any_replica = match params.read_from.unwrap_or_default() {
        ReadFromParam::Leader => false,
        ReadFromParam::AnyReplica => true,
    };
    let max_staleness_ms = params.max_staleness_ms.unwrap_or(0);
    if max_staleness_ms > shardkv::MAX_STALENESS_MS {
        return Err(ApiError::bad_input(format!(
            "max_staleness_ms {max_staleness_ms} is over the limit of {} ms",
            shardkv::MAX_STALENESS_MS
        )));
    }
    if max_staleness_ms > 0 && !any_replica {
        return Err(ApiError::bad_input(
            "max_staleness_ms needs read_from=any_replica (the leader's reads are linearizable)",
        ));
    }
    let read_from = ReadFrom::from_request(any_replica, max_staleness_ms);
    match read(&state, &key, read_from).await? {
        Some(value) => {
            Ok(([(header::CONTENT_TYPE, "application/octet-stream")], value).into_response())
        }
        None => Err(ApiError::new(404, "not_found", format!("no key {key:?}"))),
    }
}

/// Where a GET may be answered.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// `leader` (the default) or `any_replica`: any replica of the key's
    /// group, still linearizable (a follower asks its leader for a read
    /// index and answers once it has applied through it).
    pub read_from: Option<ReadFromParam>,
    /// With `read_from=any_replica`: how old the answer may be, in ms (0,
    /// the default: linearizable). The answer reflects every write
    /// acknowledged more than this before the read began; a follower
    /// answers without asking its leader while its last read index is
    /// that fresh.
    #[param(maximum = 60000)]
    pub max_staleness_ms: Option<u64>,
}

/// The values of `read_from`.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadFromParam {
    #[default]
    Leader,
    AnyReplica,
}

/// Conditions and TTL of a PUT.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PutParams {
    /// Expire the key this many milliseconds after the write (at least 1).
    #[param(minimum = 1)]
    pub ttl_ms: Option<u64>,
    /// Only set if the key is absent.
    pub nx: Option<bool>,
    /// Only set if the key is present.
    pub xx: Option<bool>,
}

/// The answer to a write.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Applied {
    pub applied: bool,
}

/// Sets a key's value (the raw request body).
#[utoipa::path(
    put,
    path = "/v1/keys/{key}",
    tag = "keys",
    params(("key" = String, Path, description = "The key"), PutParams),
    request_body(content = String, description = "The value (raw bytes; Content-Type is ignored)", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Written", body = Applied),
        (status = 400, description = "Bad input (`invalid_argument`, `bad_request`)", body = ErrorBody),
        (status = 409, description = "`nx`/`xx` not met (`condition_failed`)", body = ErrorBody),
        (status = 413, description = "Body over the limit (`payload_too_large`)", body = ErrorBody),
        (status = 429, description = "Load shed (`overloaded`)", body = ErrorBody),
        (status = 503, description = "No leader reached in time", body = ErrorBody),
    )
)]
pub async fn put_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(params): Query<PutParams>,
    body: Bytes,
) -> Result<Json<Applied>, ApiError> {
    caller.check("set", Some(&key))?;
    check_ttl(params.ttl_ms)?;
    let value = body.to_vec();
    match (params.nx.unwrap_or(false), params.xx.unwrap_or(false)) {
        (true, true) => Err(ApiError::bad_input("nx and xx exclude each other")),
        (false, false) => {
            let op = Op::Put {
                key: key.into_bytes(),
                value,
                ttl_ms: params.ttl_ms,
            };
            match state.node.forwarder.run(op, None).await? {
                Outcome::Done => Ok(Json(Applied { applied: true })),
                other => Err(unexpected("Put", &other)),
            }
        }
        (nx, _) => {
            let op = Op::Set {
                key: key.clone().into_bytes(),
                value,
                condition: if nx {
                    SetCondition::IfAbsent
                } else {
                    SetCondition::IfPresent
                },
                ttl: params.ttl_ms.map_or(SetTtl::Clear, SetTtl::Ms),
                return_old: false,
            };
            match state.node.forwarder.run(op, None).await? {
                Outcome::Set { applied: true, .. } => Ok(Json(Applied { applied: true })),
                Outcome::Set { applied: false, .. } => Err(ApiError::new(
                    409,
                    "condition_failed",
                    if nx {
                        format!("nx: key {key:?} is present")
                    } else {
                        format!("xx: key {key:?} is absent")
                    },
                )),
                other => Err(unexpected("Set", &other)),
            }
        }
    }
}

/// The answer to a DELETE.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    pub deleted: bool,
}

/// Removes a key.
#[utoipa::path(
    delete,
    path = "/v1/keys/{key}",
    tag = "keys",
    params(("key" = String, Path, description = "The key")),
    responses(
        (status = 200, description = "Removed", body = Deleted),
        (status = 400, description = "Bad key", body = ErrorBody),
        (status = 404, description = "No such key (`not_found`)", body = ErrorBody),
        (status = 429, description = "Load shed (`overloaded`)", body = ErrorBody),
        (status = 503, description = "No leader reached in time", body = ErrorBody),
    )
)]
pub async fn delete_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    caller.check("del", Some(&key))?;
    let op = Op::Delete {
        key: key.clone().into_bytes(),
    };
    match state.node.forwarder.run(op, None).await? {
        Outcome::Deleted(true) => Ok(Json(Deleted { deleted: true })),
        Outcome::Deleted(false) => Err(ApiError::new(404, "not_found", format!("no key {key:?}"))),
        other => Err(unexpected("Delete", &other)),
    }
}

/// A compare-and-set: values as UTF-8 strings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CasRequest {
    /// The value the key must hold; `null` or left out: the key must be absent.
    #[serde(default)]
    pub expected: Option<String>,
    /// The new value.
    pub value: String,
    /// Expire this many milliseconds after the write (at least 1).
    #[serde(default, deserialize_with = "integer_ms")]
    #[schema(minimum = 1)]
    pub ttl_ms: Option<u64>,
}

/// The answer to a successful compare-and-set.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Swapped {
    pub swapped: bool,
}

/// Sets the key to `value` if it holds `expected`.
#[utoipa::path(
    post,
    path = "/v1/keys/{key}/cas",
    tag = "keys",
    params(("key" = String, Path, description = "The key")),
    request_body(content = CasRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Swapped", body = Swapped),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 409, description = "The key did not hold `expected` (`cas_failed`)", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not a JSON body", body = ErrorBody),
        (status = 429, description = "Load shed (`overloaded`)", body = ErrorBody),
        (status = 503, description = "No leader reached in time", body = ErrorBody),
    )
)]
pub async fn compare_and_set(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Json(request): Json<CasRequest>,
) -> Result<Json<Swapped>, ApiError> {
    caller.check("get", Some(&key))?;
    caller.check("set", Some(&key))?;
    check_ttl(request.ttl_ms)?;
    let expected = request.expected.map(String::into_bytes);
    if swap(
        &state,
        &key,
        expected,
        request.value.into_bytes(),
        request.ttl_ms,
    )
    .await?
    {
        Ok(Json(Swapped { swapped: true }))
    } else {
        Err(ApiError::new(
            409,
            "cas_failed",
            format!("{key:?} did not hold the expected value"),
        ))
    }
}

/// How much to add.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncrParams {
    /// Added to the value (default 1; may be negative).
    pub by: Option<i64>,
}

/// The value after an increment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Counter {
    pub value: i64,
}

/// Adds `by` to a decimal 64-bit integer value (an absent key counts as 0).
#[utoipa::path(
    post,
    path = "/v1/keys/{key}/incr",
    tag = "keys",
    params(("key" = String, Path, description = "The key"), IncrParams),
    responses(
        (status = 200, description = "The new value", body = Counter),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 409, description = "Not an integer, or the sum overflows (`not_an_integer`); nothing changed", body = ErrorBody),
        (status = 429, description = "Load shed (`overloaded`)", body = ErrorBody),
        (status = 503, description = "No leader reached in time", body = ErrorBody),
    )
)]
pub async fn increment(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(params): Query<IncrParams>,
) -> Result<Json<Counter>, ApiError> {
    caller.check("incr", Some(&key))?;
    let op = Op::Increment {
        key: key.into_bytes(),
        delta: params.by.unwrap_or(1),
    };
    match state.node.forwarder.run(op, None).await? {
        Outcome::Integer(value) => Ok(Json(Counter { value })),
        other => Err(unexpected("Increment", &other)),
    }
}

/// A page of a scan.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScanParams {
    /// Only keys that start with this.
    pub prefix: Option<String>,
    /// Where the previous page ended (its `next_cursor`); absent: start.
    pub cursor: Option<String>,
    /// Most keys in the page (1..=1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One page of keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyPage {
    /// At most `limit` keys, in no particular order.
    pub keys: Vec<String>,
    /// Pass it as `cursor` for the next page; `null` when the scan is done.
    pub next_cursor: Option<String>,
}

/// A page's keys when none is asked for.
const DEFAULT_SCAN_LIMIT: u32 = 100;

/// Most per-shard scan calls one page makes while filling itself.
const SCAN_CALLS_PER_PAGE: usize = 64;

/// `prefix` as a Redis glob that matches exactly the keys starting with it.
fn prefix_pattern(prefix: &str) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + 1);
    for &byte in prefix.as_bytes() {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    pattern.push(b'*');
    pattern
}

/// Lists keys, a page at a time: the same per-shard scan as Redis's
/// `SCAN` (every key present for the whole scan is listed exactly once;
/// not a snapshot across shards). Keys that are not UTF-8 are skipped.
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    params(ScanParams),
    responses(
        (status = 200, description = "A page of keys", body = KeyPage),
        (status = 400, description = "Bad input (a limit out of range, a cursor not handed out here)", body = ErrorBody),
        (status = 503, description = "No leader reached in time", body = ErrorBody),
    )
)]
pub async fn scan_keys(
    State(state): State<AppState>,
    Query(params): Query<ScanParams>,
) -> Result<Json<KeyPage>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_SCAN_LIMIT);
    if !(1..=MAX_SCAN_LIMIT).contains(&limit) {
        return Err(ApiError::bad_input(format!(
            "limit {limit} is not in 1..={MAX_SCAN_LIMIT}"
        )));
    }
    let cursor = match params.cursor.as_deref() {
        None | Some("") => 0,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|&cursor| cursor != 0)
            .ok_or_else(|| {
                ApiError::bad_input(format!(
                    "cursor {text:?} is not one this service handed out"
                ))
            })?,
    };
    let mut request = ScanRequest {
        cursor,
        count: 0,
        pattern: params.prefix.as_deref().map(prefix_pattern),
        type_name: None,
    };
    let mut keys = Vec::new();
    for _ in 0..SCAN_CALLS_PER_PAGE {
        // Each call visits at most what the page still has room for.
        request.count = u64::from(limit) - keys.len() as u64;
        let page = keyspace::scan(state.node.forwarder.as_ref(), &request)
            .await
            .map_err(|error| match error {
                KeyspaceError::Forward(error) => ApiError::from(error),
                KeyspaceError::InvalidCursor => ApiError::bad_input(format!(
                    "cursor {cursor} is not one this service handed out"
                )),
                other => ApiError::internal(other.to_string()),
            })?;
        keys.extend(
            page.keys
                .into_iter()
                .filter_map(|key| String::from_utf8(key).ok()),
        );
        request.cursor = page.next_cursor;
        if page.next_cursor == 0 || keys.len() >= limit as usize {
            break;
        }
    }
    Ok(Json(KeyPage {
        keys,
        next_cursor: (request.cursor != 0).then(|| request.cursor.to_string()),
    }))
}
