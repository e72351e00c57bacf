//! Command errors: Redis 7's reply text, word for word.

use bytes::Bytes;
use thiserror::Error;

/// Why a request cannot run. [`std::fmt::Display`] gives the whole error
/// line as Redis 7 writes it, code first (`ERR ...`, `NOPROTO ...`); reply
/// with `Frame::error(&error.to_string())`. Nothing has been changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    /// No command by that name.
    #[error("ERR unknown command '{}', with args beginning with: {}", preview(.name, 128), args_preview(.args))]
    UnknownCommand {
        /// The name as sent.
        name: Bytes,
        /// The arguments after it.
        args: Vec<Bytes>,
    },
    /// A container command (`CONFIG`, `CLIENT`, ...) without that subcommand.
    #[error("ERR unknown subcommand '{}'. Try {container} HELP.", preview(.subcommand, 128))]
    UnknownSubcommand {
        /// The subcommand as sent.
        subcommand: Bytes,
        /// The container's name in capitals.
        container: String,
    },
    /// Too few or too many arguments (`full_name` is `get` or `config|get`).
    #[error("ERR wrong number of arguments for '{full_name}' command")]
    WrongArity {
        /// The command's full lowercase name.
        full_name: &'static str,
    },
    /// Options that do not fit the command.
    #[error("ERR syntax error")]
    Syntax,
    /// An argument that must be a 64-bit integer is not.
    #[error("ERR value is not an integer or out of range")]
    NotAnInteger,
    /// An argument that must be a float is not.
    #[error("ERR value is not a valid float")]
    NotAFloat,
    /// An expiry that is not positive where it must be, or overflows.
    #[error("ERR invalid expire time in '{command}' command")]
    InvalidExpireTime {
        /// The command's full lowercase name.
        command: &'static str,
    },
    /// A count that must not be negative (`SPOP key -1`).
    #[error("ERR value is out of range, must be positive")]
    MustBePositive,
    /// `LPOS ... RANK 0`.
    #[error(
        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
    )]
    LposRankZero,
    /// `LPOS ... COUNT -1` or `MAXLEN -1`, `SINTERCARD ... LIMIT -1` (the
    /// option's name).
    #[error("ERR {0} can't be negative")]
    LposNegative(&'static str),
    /// `SINTERCARD`'s numkeys not a positive integer.
    #[error("ERR numkeys should be greater than 0")]
    NumkeysNotPositive,
    /// `SINTERCARD`'s numkeys larger than the arguments after it.
    #[error("ERR Number of keys can't be greater than number of args")]
    NumkeysOverArgs,
    /// `ZADD ... NX XX`.
    #[error("ERR XX and NX options at the same time are not compatible")]
    ZaddNxAndXx,
    /// `ZADD` with two of `GT`, `LT`, `NX`.
    #[error("ERR GT, LT, and/or NX options at the same time are not compatible")]
    ZaddGtLtNx,
    /// `ZADD ... INCR` with more than one score-member pair.
    #[error("ERR INCR option supports a single increment-element pair")]
    ZaddIncrOnePair,
    /// A score range end that is not a float (`ZRANGEBYSCORE`, `ZCOUNT`).
    #[error("ERR min or max is not a float")]
    MinMaxNotFloat,
    /// A member range end that is not `-`, `+`, `[x` or `(x`.
    #[error("ERR min or max not valid string range item")]
    MinMaxNotLex,
    /// `ZRANGE ... LIMIT` by rank.
    #[error(
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    )]
    LimitNeedsByScoreOrLex,
    /// `ZRANGE ... BYLEX WITHSCORES`.
    #[error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")]
    WithScoresByLex,
    /// `ZRANDMEMBER key count WITHSCORES` with a count whose pairs
    /// would overflow.
    #[error("ERR value is out of range")]
    ValueOutOfRange,
    /// `ZRANDMEMBER key -9223372036854775808`: Redis reads the count
    /// within ±(2^63 - 1).
    #[error(
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )]
    CountOutOfRange,
    /// `ZUNIONSTORE dst 0 ...`.
    #[error("ERR at least 1 input key is needed for '{command}' command")]
    AtLeastOneKey {
        /// The command's full lowercase name.
        command: &'static str,
    },
    /// `ZUNIONSTORE ... WEIGHTS x`.
    #[error("ERR weight value is not a float")]
    WeightNotAFloat,
    /// An increment whose result leaves the 64-bit range.
    #[error("ERR increment or decrement would overflow")]
    IncrementOverflow,
    /// `DECRBY key -9223372036854775808`.
    #[error("ERR decrement would overflow")]
    DecrementOverflow,
    /// A float increment whose result is not finite.
    #[error("ERR increment would produce NaN or Infinity")]
    NotFinite,
    /// `HINCRBYFLOAT key field +inf`: an infinite increment (a NaN one is
    /// not a valid float), Redis 7.0's text.
    #[error("ERR value is NaN or Infinity")]
    InfiniteIncrement,
    /// A negative `SETRANGE` offset (or `GETRANGE` out of bounds).
    #[error("ERR offset is out of range")]
    OffsetOutOfRange,
    /// A string that would exceed the value limit.
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    /// A `SCAN` cursor that is not an unsigned integer.
    #[error("ERR invalid cursor")]
    InvalidCursor,
    /// `SELECT n` (or `COPY ... DB n`) for a database other than 0.
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// An `EXPIRE` option that does not exist.
    #[error("ERR Unsupported option {}", preview(.0, 128))]
    UnsupportedOption(Bytes),
    /// `EXPIRE ... NX` with `XX`, `GT` or `LT`.
    #[error("ERR NX and XX, GT or LT options at the same time are not compatible")]
    ExpireNxAndOthers,
    /// `EXPIRE ... GT LT`.
    #[error("ERR GT and LT options at the same time are not compatible")]
    ExpireGtAndLt,
    /// `HELLO` with a version that is not a number.
    #[error("ERR Protocol version is not an integer or out of range")]
    ProtocolVersionNotInteger,
    /// `HELLO` with a version other than 2 or 3.
    #[error("NOPROTO unsupported protocol version")]
    UnsupportedProtocol,
    /// `HELLO` with an option it does not know.
    #[error("ERR Syntax error in HELLO option '{}'", preview(.0, 128))]
    HelloSyntax(Bytes),
    /// A client name with a space, a control byte or a non-ASCII byte.
    #[error("ERR Client names cannot contain spaces, newlines or special characters.")]
    InvalidClientName,
    /// `CLIENT SETINFO` with an attribute other than LIB-NAME or LIB-VER.
    #[error("ERR Unrecognized option '{}'", preview(.0, 128))]
    UnrecognizedClientInfo(Bytes),
    /// A `CLIENT SETINFO` value with a space or special character.
    #[error("ERR {attribute} cannot contain spaces, newlines or special characters.")]
    InvalidClientInfo {
        /// `lib-name` or `lib-ver`.
        attribute: &'static str,
    },
    /// `CLIENT TRACKING` with an option it does not know, or `ON|OFF`
    /// missing.
    #[error("ERR Syntax error in CLIENT TRACKING option '{}'", preview(.0, 128))]
    TrackingSyntax(Bytes),
    /// `PREFIX` without `BCAST`.
    #[error("ERR PREFIX option requires BCAST mode to be enabled")]
    PrefixWithoutBcast,
    /// `OPTIN` and `OPTOUT` together.
    #[error("ERR You can't specify both OPTIN mode and OPTOUT mode")]
    OptinAndOptout,
    /// `OPTIN` or `OPTOUT` with `BCAST`.
    #[error("ERR OPTIN and OPTOUT are not compatible with BCAST")]
    OptionsWithBcast,
    /// Two `PREFIX`es where one starts the other.
    #[error("ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.", preview(.0, 128), preview(.1, 128))]
    OverlappingPrefixes(Bytes, Bytes),
    /// `READONLY MAXSTALENESS` past its bound, or negative.
    #[error("ERR MAXSTALENESS must be between 0 and 60000 milliseconds")]
    StalenessOutOfRange,
    /// `CLIENT CACHING` with an argument other than YES or NO.
    #[error("ERR syntax error")]
    CachingSyntax,
    /// `LCS ... LEN IDX`.
    #[error("ERR If you want both the length and indexes, please just use IDX.")]
    LcsLenAndIdx,
    /// `CONFIG SET` of a parameter distcache does not let clients change.
    #[error("ERR Unknown option or number of arguments for CONFIG SET - '{}'", preview(.0, 128))]
    ConfigSetUnsupported(Bytes),
    /// `COMMAND GETKEYS` of a command without keys.
    #[error("ERR The command has no key arguments")]
    NoKeyArguments,
    /// `COMMAND GETKEYS` of an unknown command.
    #[error("ERR Invalid command specified")]
    InvalidCommandSpecified,
    /// `COMMAND GETKEYS` with the wrong number of arguments for the command.
    #[error("ERR Invalid number of arguments specified for command")]
    InvalidArgumentCount,
    /// `LMPOP ... COUNT 0` (or not an integer).
    #[error("ERR count should be greater than 0")]
    CountNotPositive,
    /// A blocking command's timeout that is not a number.
    #[error("ERR timeout is not a float or out of range")]
    TimeoutNotFloat,
    /// A blocking command's timeout below 0.
    #[error("ERR timeout is negative")]
    TimeoutNegative,
}

/// At most `limit` bytes of `bytes`, lossily as text, line breaks as spaces
/// (Redis replaces them so the error stays one line).
fn preview(bytes: &[u8], limit: usize) -> String {
    let cut = &bytes[..bytes.len().min(limit)];
    String::from_utf8_lossy(cut).replace(['\r', '\n'], " ")
}

/// Redis's unknown-command preview: `'arg' ` per argument while the
/// preview is under 128 bytes, each cut to what is left of the 128.
fn args_preview(args: &[Bytes]) -> String {
    let mut text = String::new();
    for arg in args {
        if text.len() >= 128 {
            break;
        }
        let room = 128 - text.len();
        text.push('\'');
        text.push_str(&preview(arg, room));
        text.push_str("' ");
    }
    text
}
