//! Parsers of the string commands.

use super::args::{Args, is};
use super::error::CommandError;
use super::types::{Command, ExpireTime, GetExExpiry, LcsOptions, SetCondition, SetExpiry};

pub(crate) fn get(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Get { key: args.take()? })
}

/// The expiry options `SET` and `GETEX` share, as Redis parses them: each
/// option may repeat, but no two different expiry options mix.
#[derive(Default)]
struct ExtendedOptions {
    condition: SetCondition,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    /// (`EX`/`PX`/`EXAT`/`PXAT` in seconds?, relative?, the raw argument)
    expire: Option<(bool, bool, bytes::Bytes)>,
}

fn extended_options(args: &mut Args, for_set: bool) -> Result<ExtendedOptions, CommandError> {
    let mut options = ExtendedOptions::default();
    while let Some(option) = args.take_optional() {
        let has_next = args.remaining() > 0;
        let expire_kind = |name: &str| -> Option<(bool, bool)> {
            match name {
                "ex" => Some((true, true)),
                "px" => Some((false, true)),
                "exat" => Some((true, false)),
                "pxat" => Some((false, false)),
                _ => None,
            }
        };
        let lowered = option.to_ascii_lowercase();
        let name = std::str::from_utf8(&lowered).unwrap_or("");
        let other_expire = |options: &ExtendedOptions, kind: (bool, bool)| {
            options.keep_ttl
                || options.persist
                || options
                    .expire
                    .as_ref()
                    .is_some_and(|(s, r, _)| (*s, *r) != kind)
        };
        match name {
            "nx" if for_set && options.condition != SetCondition::IfPresent => {
                options.condition = SetCondition::IfAbsent;
            }
            "xx" if for_set && options.condition != SetCondition::IfAbsent => {
                options.condition = SetCondition::IfPresent;
            }
            "get" if for_set => options.get = true,
            "keepttl" if for_set && !options.persist && options.expire.is_none() => {
                options.keep_ttl = true;
            }
            "persist" if !for_set && !options.keep_ttl && options.expire.is_none() => {
                options.persist = true;
            }
            _ => match expire_kind(name) {
                Some(kind) if has_next && !other_expire(&options, kind) => {
                    let value = args.take()?;
                    options.expire = Some((kind.0, kind.1, value));
                }
                _ => return Err(CommandError::Syntax),
            },
        }
    }
    Ok(options)
}

/// Redis's `getExpireMillisecondsOrReply` without the clock: an integer,
/// positive, not overflowing when made milliseconds.
fn positive_expire(
    raw: &[u8],
    in_seconds: bool,
    relative: bool,
    command: &'static str,
) -> Result<ExpireTime, CommandError> {
    let value = super::args::parse_integer(raw).ok_or(CommandError::NotAnInteger)?;
    let invalid = CommandError::InvalidExpireTime { command };
    if value <= 0 {
        return Err(invalid);
    }
    let milliseconds = if in_seconds {
        value.checked_mul(1000).ok_or(invalid)?
    } else {
        value
    };
    Ok(ExpireTime {
        milliseconds,
        relative,
    })
}

pub(crate) fn set(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let value = args.take()?;
    let options = extended_options(args, true)?;
    let expiry = match (&options.expire, options.keep_ttl) {
        (Some((in_seconds, relative, raw)), _) => SetExpiry::At(positive_expire(
            raw,
            *in_seconds,
            *relative,
            args.full_name(),
        )?),
        (None, true) => SetExpiry::Keep,
        (None, false) => SetExpiry::Clear,
    };
    Ok(Command::Set {
        key,
        value,
        condition: options.condition,
        expiry,
        get: options.get,
    })
}

pub(crate) fn getex(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let options = extended_options(args, false)?;
    let expiry = match (&options.expire, options.persist) {
        (Some((in_seconds, relative, raw)), _) => GetExExpiry::At(positive_expire(
            raw,
            *in_seconds,
            *relative,
            args.full_name(),
        )?),
        (None, true) => GetExExpiry::Persist,
        (None, false) => GetExExpiry::Unchanged,
    };
    Ok(Command::GetEx { key, expiry })
}

pub(crate) fn setnx(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::SetNx {
        key: args.take()?,
        value: args.take()?,
    })
}

fn set_with_expiry(args: &mut Args, in_seconds: bool) -> Result<Command, CommandError> {
    let key = args.take()?;
    let raw = args.take()?;
    let value = args.take()?;
    let time = positive_expire(&raw, in_seconds, true, args.full_name())?;
    Ok(Command::Set {
        key,
        value,
        condition: SetCondition::Always,
        expiry: SetExpiry::At(time),
        get: false,
    })
}

pub(crate) fn setex(args: &mut Args) -> Result<Command, CommandError> {
    set_with_expiry(args, true)
}

pub(crate) fn psetex(args: &mut Args) -> Result<Command, CommandError> {
    set_with_expiry(args, false)
}

pub(crate) fn getset(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Set {
        key: args.take()?,
        value: args.take()?,
        condition: SetCondition::Always,
        expiry: SetExpiry::Clear,
        get: true,
    })
}

pub(crate) fn getdel(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::GetDel { key: args.take()? })
}

pub(crate) fn mget(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::MGet { keys: args.rest() })
}

pub(crate) fn mset(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::MSet {
        pairs: args.pairs()?,
    })
}

pub(crate) fn msetnx(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::MSetNx {
        pairs: args.pairs()?,
    })
}

pub(crate) fn append(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Append {
        key: args.take()?,
        value: args.take()?,
    })
}

pub(crate) fn strlen(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::StrLen { key: args.take()? })
}

pub(crate) fn getrange(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::GetRange {
        key: args.take()?,
        start: args.integer()?,
        end: args.integer()?,
    })
}

pub(crate) fn setrange(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let offset = args.integer()?;
    let offset = u64::try_from(offset).map_err(|_| CommandError::OffsetOutOfRange)?;
    Ok(Command::SetRange {
        key,
        offset,
        value: args.take()?,
    })
}

pub(crate) fn incr(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::IncrBy {
        key: args.take()?,
        delta: 1,
    })
}

pub(crate) fn decr(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::IncrBy {
        key: args.take()?,
        delta: -1,
    })
}

pub(crate) fn incrby(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::IncrBy {
        key: args.take()?,
        delta: args.integer()?,
    })
}

pub(crate) fn decrby(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let delta = args.integer()?;
    let delta = delta.checked_neg().ok_or(CommandError::DecrementOverflow)?;
    Ok(Command::IncrBy { key, delta })
}

pub(crate) fn incrbyfloat(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::IncrByFloat {
        key: args.take()?,
        delta: args.float()?,
    })
}

pub(crate) fn lcs(args: &mut Args) -> Result<Command, CommandError> {
    let first = args.take()?;
    let second = args.take()?;
    let mut options = LcsOptions::default();
    while let Some(option) = args.take_optional() {
        if is(&option, "idx") {
            options.indexes = true;
        } else if is(&option, "len") {
            options.length_only = true;
        } else if is(&option, "withmatchlen") {
            options.with_match_length = true;
        } else if is(&option, "minmatchlen") && args.remaining() > 0 {
            options.min_match_length = args.integer()?.max(0);
        } else {
            return Err(CommandError::Syntax);
        }
    }
    if options.indexes && options.length_only {
        return Err(CommandError::LcsLenAndIdx);
    }
    Ok(Command::Lcs {
        first,
        second,
        options,
    })
}
