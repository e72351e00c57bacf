//! Machine-readable error details on the statuses of the public gRPC API.
//!
//! Every error status a node answers carries, in the status `details`
//! bytes (the `grpc-status-details-bin` trailer), gRPC's richer error
//! model: a `google.rpc.Status` whose `details` hold one
//! `google.rpc.ErrorInfo` with `domain` [`ERROR_DOMAIN`], a stable
//! `reason` (one of [`Reason`], `UPPER_SNAKE_CASE`) and the error's fields
//! as `metadata` strings. Any gRPC library that understands the richer
//! error model reads it (grpcio-status's `rpc_status.from_call`, Go's
//! `status.FromError(..).Details()`); the message texts may change between
//! versions, the reasons and metadata keys do not.
//!
//! ```text
//!   api::Error::TooLarge { what: "value", size_bytes: 9, limit_bytes: 8 }
//!     ─► INVALID_ARGUMENT, details = Status { details: [ErrorInfo {
//!          reason: "TOO_LARGE", domain: "distcache.v1",
//!          metadata: { what: "value", size_bytes: "9", limit_bytes: "8" } }] }
//!     ─► (client) ClientError::Refused(api::Error::TooLarge { .. })
//! ```
//!
//! The three messages are declared here by hand with the field numbers of
//! `google/rpc/status.proto`, `google/protobuf/any.proto` and
//! `google/rpc/error_details.proto`, so the crate needs no copy of those
//! files.

use std::collections::BTreeMap;

use prost::Message as _;

/// The `domain` of every [`ErrorInfo`] a node sends.
pub const ERROR_DOMAIN: &str = "distcache.v1";

/// The `type_url` of the packed [`ErrorInfo`] (the standard one, so
/// generic tools unpack it).
pub const ERROR_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<PackedAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct PackedAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.ErrorInfo`: why a call failed, in a form a program can act
/// on.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ErrorInfo {
    /// One of [`Reason`]'s names.
    #[prost(string, tag = "1")]
    pub reason: String,
    /// [`ERROR_DOMAIN`].
    #[prost(string, tag = "2")]
    pub domain: String,
    /// The error's fields (numbers in decimal).
    #[prost(btree_map = "string, string", tag = "3")]
    pub metadata: BTreeMap<String, String>,
}

/// Every reason a node puts in an [`ErrorInfo`], with the gRPC code it
/// goes with. The names are the wire form and never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// `INVALID_ARGUMENT`: a request the API refuses before running it
    /// (empty key, session id or seq 0, unknown enum value, too many keys,
    /// a shard that does not exist). Metadata: none.
    InvalidRequest,
    /// `INVALID_ARGUMENT`: [`api::Error::TooLarge`]. Metadata: `what`,
    /// `size_bytes`, `limit_bytes`.
    TooLarge,
    /// `INVALID_ARGUMENT`: [`api::Error::ZeroTtl`].
    ZeroTtl,
    /// `INVALID_ARGUMENT`: [`api::Error::TooManyElements`]. Metadata:
    /// `count`, `limit`.
    TooManyElements,
    /// `FAILED_PRECONDITION`: [`api::Error::NotAnInteger`].
    NotAnInteger,
    /// `OUT_OF_RANGE`: [`api::Error::IncrementOverflow`].
    IncrementOverflow,
    /// `FAILED_PRECONDITION`: [`api::Error::NotAFloat`].
    NotAFloat,
    /// `OUT_OF_RANGE`: [`api::Error::NotFinite`].
    NotFinite,
    /// `FAILED_PRECONDITION`: [`api::Error::WrongType`] (the key holds a
    /// hash, set or list written over RESP).
    WrongType,
    /// `FAILED_PRECONDITION`: [`api::Error::HashNotInteger`].
    HashNotInteger,
    /// `FAILED_PRECONDITION`: [`api::Error::HashNotFloat`].
    HashNotFloat,
    /// `FAILED_PRECONDITION`: [`api::Error::NoSuchKey`].
    NoSuchKey,
    /// `FAILED_PRECONDITION`: [`api::Error::CrossShard`].
    CrossShard,
    /// `OUT_OF_RANGE`: [`api::Error::IndexOutOfRange`].
    IndexOutOfRange,
    /// `FAILED_PRECONDITION`: [`api::Error::Stale`], a session seq older
    /// than the session's latest write. Metadata: `seq`, `latest`.
    StaleSession,
    /// `DEADLINE_EXCEEDED`: [`api::Error::Timeout`], no group answered
    /// within the node's request timeout; a write may still apply.
    /// Metadata: `deadline_ms`, `attempts`.
    Timeout,
    /// `UNAVAILABLE`: the node is stopping; nothing was sent. Retry on
    /// another node.
    ShuttingDown,
    /// `UNAVAILABLE`: [`api::Error::NotApplied`] (internal: a node retries
    /// it and does not send it).
    NotApplied,
    /// `UNAVAILABLE`: [`api::Error::Busy`] (internal). Metadata: `pending`.
    Busy,
    /// `UNAVAILABLE`: [`api::Error::WrongLeader`] (internal). Metadata:
    /// `leader_hint` when known.
    WrongLeader,
    /// `UNAVAILABLE`: [`api::Error::WrongGroup`] (internal). Metadata:
    /// `shard`, `config_num`.
    WrongGroup,
    /// `INTERNAL`: [`api::Error::UnexpectedOutcome`], an answer of the
    /// wrong kind (a bug). Metadata: `op`, `outcome`.
    UnexpectedOutcome,
    /// `UNAUTHENTICATED`: no credentials, wrong ones, or a disabled user.
    Unauthenticated,
    /// `PERMISSION_DENIED`: the user's ACL does not allow the command or
    /// keys (Redis's `NOPERM`).
    NoPermission,
    /// `INVALID_ARGUMENT`: the controller refused an admin change (a
    /// group already joined, an unknown gid, ...).
    ControllerRefused,
    /// `INTERNAL`: any other failure inside the node.
    Internal,
}

impl Reason {
    /// Every reason, for tables and tests.
    pub const ALL: [Reason; 26] = [
        Reason::InvalidRequest,
        Reason::TooLarge,
        Reason::ZeroTtl,
        Reason::TooManyElements,
        Reason::NotAnInteger,
        Reason::IncrementOverflow,
        Reason::NotAFloat,
        Reason::NotFinite,
        Reason::WrongType,
        Reason::HashNotInteger,
        Reason::HashNotFloat,
        Reason::NoSuchKey,
        Reason::CrossShard,
        Reason::IndexOutOfRange,
        Reason::StaleSession,
        Reason::Timeout,
        Reason::ShuttingDown,
        Reason::NotApplied,
        Reason::Busy,
        Reason::WrongLeader,
        Reason::WrongGroup,
        Reason::UnexpectedOutcome,
        Reason::Unauthenticated,
        Reason::NoPermission,
        Reason::ControllerRefused,
        Reason::Internal,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Reason::InvalidRequest => "INVALID_REQUEST",
            Reason::TooLarge => "TOO_LARGE",
            Reason::ZeroTtl => "ZERO_TTL",
            Reason::TooManyElements => "TOO_MANY_ELEMENTS",
            Reason::NotAnInteger => "NOT_AN_INTEGER",
            Reason::IncrementOverflow => "INCREMENT_OVERFLOW",
            Reason::NotAFloat => "NOT_A_FLOAT",
            Reason::NotFinite => "NOT_FINITE",
            Reason::WrongType => "WRONG_TYPE",
            Reason::HashNotInteger => "HASH_NOT_INTEGER",
            Reason::HashNotFloat => "HASH_NOT_FLOAT",
            Reason::NoSuchKey => "NO_SUCH_KEY",
            Reason::CrossShard => "CROSS_SHARD",
            Reason::IndexOutOfRange => "INDEX_OUT_OF_RANGE",
            Reason::StaleSession => "STALE_SESSION",
            Reason::Timeout => "TIMEOUT",
            Reason::ShuttingDown => "SHUTTING_DOWN",
            Reason::NotApplied => "NOT_APPLIED",
            Reason::Busy => "BUSY",
            Reason::WrongLeader => "WRONG_LEADER",
            Reason::WrongGroup => "WRONG_GROUP",
            Reason::UnexpectedOutcome => "UNEXPECTED_OUTCOME",
            Reason::Unauthenticated => "UNAUTHENTICATED",
            Reason::NoPermission => "NO_PERMISSION",
            Reason::ControllerRefused => "CONTROLLER_REFUSED",
            Reason::Internal => "INTERNAL",
        }
    }

    /// The reason named `name`, if any.
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|reason| reason.name() == name)
    }

    /// The gRPC code a status with this reason has.
    pub fn code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            Reason::InvalidRequest
            | Reason::TooLarge
            | Reason::ZeroTtl
            | Reason::TooManyElements
            | Reason::ControllerRefused => Code::InvalidArgument,
            Reason::NotAnInteger
            | Reason::NotAFloat
            | Reason::WrongType
            | Reason::HashNotInteger
            | Reason::HashNotFloat
            | Reason::NoSuchKey
            | Reason::CrossShard
            | Reason::StaleSession => Code::FailedPrecondition,
            Reason::IncrementOverflow | Reason::NotFinite | Reason::IndexOutOfRange => {
                Code::OutOfRange
            }
            Reason::Timeout => Code::DeadlineExceeded,
            Reason::ShuttingDown
            | Reason::NotApplied
            | Reason::Busy
            | Reason::WrongLeader
            | Reason::WrongGroup => Code::Unavailable,
            Reason::UnexpectedOutcome | Reason::Internal => Code::Internal,
            Reason::Unauthenticated => Code::Unauthenticated,
            Reason::NoPermission => Code::PermissionDenied,
        }
    }
}

/// A status with `reason`'s code, `message`, and the details.
pub fn status(reason: Reason, message: impl Into<String>) -> tonic::Status {
    status_with(reason, message, BTreeMap::new())
}

/// [`status`] with metadata.
pub fn status_with(
    reason: Reason,
    message: impl Into<String>,
    metadata: BTreeMap<String, String>,
) -> tonic::Status {
    let message = message.into();
    let info = ErrorInfo {
        reason: reason.name().to_string(),
        domain: ERROR_DOMAIN.to_string(),
        metadata,
    };
    let packed = RpcStatus {
        code: reason.code() as i32,
        message: message.clone(),
        details: vec![PackedAny {
            type_url: ERROR_INFO_TYPE_URL.to_string(),
            value: info.encode_to_vec(),
        }],
    };
    tonic::Status::with_details(
        reason.code(),
        message,
        tonic::codegen::Bytes::from(packed.encode_to_vec()),
    )
}

fn fields<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}

/// The reason and metadata of an [`api::Error`].
pub fn api_reason(error: &api::Error) -> (Reason, BTreeMap<String, String>) {
    use api::Error;
    match error {
        Error::TooLarge {
            what,
            size_bytes,
            limit_bytes,
        } => (
            Reason::TooLarge,
            fields([
                ("what", what.clone()),
                ("size_bytes", size_bytes.to_string()),
                ("limit_bytes", limit_bytes.to_string()),
            ]),
        ),
        Error::ZeroTtl => (Reason::ZeroTtl, BTreeMap::new()),
        Error::NotAnInteger => (Reason::NotAnInteger, BTreeMap::new()),
        Error::IncrementOverflow => (Reason::IncrementOverflow, BTreeMap::new()),
        Error::NotAFloat => (Reason::NotAFloat, BTreeMap::new()),
        Error::NotFinite => (Reason::NotFinite, BTreeMap::new()),
        Error::WrongType => (Reason::WrongType, BTreeMap::new()),
        Error::HashNotInteger => (Reason::HashNotInteger, BTreeMap::new()),
        Error::HashNotFloat => (Reason::HashNotFloat, BTreeMap::new()),
        Error::TooManyElements { count, limit } => (
            Reason::TooManyElements,
            fields([("count", count.to_string()), ("limit", limit.to_string())]),
        ),
        Error::NoSuchKey => (Reason::NoSuchKey, BTreeMap::new()),
        Error::CrossShard => (Reason::CrossShard, BTreeMap::new()),
        Error::IndexOutOfRange => (Reason::IndexOutOfRange, BTreeMap::new()),
        Error::Timeout {
            deadline_ms,
            attempts,
        } => (
            Reason::Timeout,
            fields([
                ("deadline_ms", deadline_ms.to_string()),
                ("attempts", attempts.to_string()),
            ]),
        ),
        Error::NotApplied => (Reason::NotApplied, BTreeMap::new()),
        Error::Busy { pending } => (Reason::Busy, fields([("pending", pending.to_string())])),
        Error::WrongLeader { leader_hint } => (
            Reason::WrongLeader,
            leader_hint
                .map(|hint| fields([("leader_hint", hint.to_string())]))
                .unwrap_or_default(),
        ),
        Error::WrongGroup { shard, config_num } => (
            Reason::WrongGroup,
            fields([
                ("shard", shard.to_string()),
                ("config_num", config_num.to_string()),
            ]),
        ),
        Error::Stale { seq, latest } => (
            Reason::StaleSession,
            fields([("seq", seq.to_string()), ("latest", latest.to_string())]),
        ),
        Error::UnexpectedOutcome { op, outcome } => (
            Reason::UnexpectedOutcome,
            fields([("op", op.clone()), ("outcome", outcome.clone())]),
        ),
    }
}

/// The status a node answers for `error`: its reason's code, its text, and
/// its fields as details.
pub fn api_status(error: &api::Error) -> tonic::Status {
    let (reason, metadata) = api_reason(error);
    status_with(reason, error.to_string(), metadata)
}

/// The [`ErrorInfo`] of `status`'s details, if it has one of this domain.
pub fn error_info(status: &tonic::Status) -> Option<ErrorInfo> {
    let packed = RpcStatus::decode(status.details()).ok()?;
    packed
        .details
        .iter()
        .filter(|any| any.type_url == ERROR_INFO_TYPE_URL)
        .filter_map(|any| ErrorInfo::decode(any.value.as_slice()).ok())
        .find(|info| info.domain == ERROR_DOMAIN)
}

/// The reason of `status`'s details, if it has a known one.
pub fn reason(status: &tonic::Status) -> Option<Reason> {
    Reason::from_name(&error_info(status)?.reason)
}

/// The [`api::Error`] `info` describes, if it describes one (reasons that
/// are not an [`api::Error`], such as [`Reason::InvalidRequest`], or
/// metadata that does not parse, give `None`).
pub fn api_error(info: &ErrorInfo) -> Option<api::Error> {
    use api::Error;
    let text = |key: &str| info.metadata.get(key).cloned();
    let number = |key: &str| info.metadata.get(key)?.parse::<u64>().ok();
    Some(match Reason::from_name(&info.reason)? {
        Reason::TooLarge => Error::TooLarge {
            what: text("what")?,
            size_bytes: number("size_bytes")?,
            limit_bytes: number("limit_bytes")?,
        },
        Reason::ZeroTtl => Error::ZeroTtl,
        Reason::TooManyElements => Error::TooManyElements {
            count: number("count")?,
            limit: number("limit")?,
        },
        Reason::NotAnInteger => Error::NotAnInteger,
        Reason::IncrementOverflow => Error::IncrementOverflow,
        Reason::NotAFloat => Error::NotAFloat,
        Reason::NotFinite => Error::NotFinite,
        Reason::WrongType => Error::WrongType,
        Reason::HashNotInteger => Error::HashNotInteger,
        Reason::HashNotFloat => Error::HashNotFloat,
        Reason::NoSuchKey => Error::NoSuchKey,
        Reason::CrossShard => Error::CrossShard,
        Reason::IndexOutOfRange => Error::IndexOutOfRange,
        Reason::StaleSession => Error::Stale {
            seq: number("seq")?,
            latest: number("latest")?,
        },
        Reason::Timeout => Error::Timeout {
            deadline_ms: number("deadline_ms")?,
            attempts: number("attempts")?,
        },
        Reason::NotApplied => Error::NotApplied,
        Reason::Busy => Error::Busy {
            pending: number("pending")?,
        },
        Reason::WrongLeader => Error::WrongLeader {
            leader_hint: number("leader_hint"),
        },
        Reason::WrongGroup => Error::WrongGroup {
            shard: number("shard")?,
            config_num: number("config_num")?,
        },
        Reason::UnexpectedOutcome => Error::UnexpectedOutcome {
            op: text("op")?,
            outcome: text("outcome")?,
        },
        Reason::InvalidRequest
        | Reason::ShuttingDown
        | Reason::Unauthenticated
        | Reason::NoPermission
        | Reason::ControllerRefused
        | Reason::Internal => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of every [`api::Error`] variant (the match keeps it complete).
    fn every_api_error() -> Vec<api::Error> {
        use api::Error;
        let all = vec![
            Error::TooLarge {
                what: "value".into(),
                size_bytes: 9,
                limit_bytes: 8,
            },
            Error::ZeroTtl,
            Error::NotAnInteger,
            Error::IncrementOverflow,
            Error::NotAFloat,
            Error::NotFinite,
            Error::WrongType,
            Error::HashNotInteger,
            Error::HashNotFloat,
            Error::TooManyElements { count: 5, limit: 4 },
            Error::NoSuchKey,
            Error::CrossShard,
            Error::IndexOutOfRange,
            Error::Timeout {
                deadline_ms: 1500,
                attempts: 3,
            },
            Error::NotApplied,
            Error::Busy { pending: 77 },
            Error::WrongLeader {
                leader_hint: Some(2),
            },
            Error::WrongLeader { leader_hint: None },
            Error::WrongGroup {
                shard: 3,
                config_num: 12,
            },
            Error::Stale { seq: 4, latest: 9 },
            Error::UnexpectedOutcome {
                op: "Get".into(),
                outcome: "Done".into(),
            },
        ];
        for error in &all {
            // Adding a variant to api::Error fails here until it is listed.
            match error {
                Error::TooLarge { .. }
                | Error::ZeroTtl
                | Error::NotAnInteger
                | Error::IncrementOverflow
                | Error::NotAFloat
                | Error::NotFinite
                | Error::WrongType
                | Error::HashNotInteger
                | Error::HashNotFloat
                | Error::TooManyElements { .. }
                | Error::NoSuchKey
                | Error::CrossShard
                | Error::IndexOutOfRange
                | Error::Timeout { .. }
                | Error::NotApplied
                | Error::Busy { .. }
                | Error::WrongLeader { .. }
                | Error::WrongGroup { .. }
                | Error::Stale { .. }
                | Error::UnexpectedOutcome { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_api_error_survives_a_status_round_trip() {
        for error in every_api_error() {
            let status = api_status(&error);
            let info = error_info(&status).expect("details present");
            assert_eq!(info.domain, ERROR_DOMAIN);
            let reason = Reason::from_name(&info.reason).expect("known reason");
            assert_eq!(status.code(), reason.code(), "{error:?}");
            assert_eq!(status.message(), error.to_string());
            assert_eq!(api_error(&info), Some(error.clone()), "{error:?}");
        }
    }

    #[test]
    fn reason_names_are_distinct_and_round_trip() {
        let mut names: Vec<&str> = Reason::ALL.iter().map(|reason| reason.name()).collect();
        for reason in Reason::ALL {
            assert_eq!(Reason::from_name(reason.name()), Some(reason));
            assert!(
                reason
                    .name()
                    .bytes()
                    .all(|byte| byte.is_ascii_uppercase() || byte == b'_')
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
        assert_eq!(Reason::from_name("NOT_A_REASON"), None);
    }

    #[test]
    fn statuses_without_api_errors_keep_their_reason() {
        for reason in [
            Reason::InvalidRequest,
            Reason::ShuttingDown,
            Reason::Unauthenticated,
            Reason::NoPermission,
            Reason::ControllerRefused,
            Reason::Internal,
        ] {
            let status = status(reason, "why");
            assert_eq!(status.code(), reason.code());
            assert_eq!(super::reason(&status), Some(reason));
            assert_eq!(api_error(&error_info(&status).expect("details")), None);
        }
    }

    #[test]
    fn foreign_or_damaged_details_are_ignored() {
        let plain = tonic::Status::invalid_argument("no details");
        assert_eq!(error_info(&plain), None);
        let garbage = tonic::Status::with_details(
            tonic::Code::Internal,
            "bad",
            tonic::codegen::Bytes::from_static(&[0xff, 0xff, 0xff]),
        );
        assert_eq!(error_info(&garbage), None);
        let mut info = ErrorInfo {
            reason: "TOO_LARGE".into(),
            domain: "someone.else".into(),
            metadata: BTreeMap::new(),
        };
        let foreign = RpcStatus {
            code: 3,
            message: String::new(),
            details: vec![PackedAny {
                type_url: ERROR_INFO_TYPE_URL.into(),
                value: info.encode_to_vec(),
            }],
        };
        let status = tonic::Status::with_details(
            tonic::Code::InvalidArgument,
            "x",
            tonic::codegen::Bytes::from(foreign.encode_to_vec()),
        );
        assert_eq!(error_info(&status), None);
        // Our domain but missing fields: no api::Error is made up.
        info.domain = ERROR_DOMAIN.into();
        assert_eq!(api_error(&info), None);
    }
}
