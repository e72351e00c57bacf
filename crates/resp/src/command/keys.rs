//! Parsers of the key and expiry commands.

use super::args::{Args, is, parse_integer};
use super::error::CommandError;
use super::types::{Command, ExpireCondition, ExpireTime, ScanOptions, TimeUnit};

pub(crate) fn del(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Del { keys: args.rest() })
}

pub(crate) fn unlink(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Unlink { keys: args.rest() })
}

pub(crate) fn exists(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Exists { keys: args.rest() })
}

pub(crate) fn type_of(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Type { key: args.take()? })
}

/// `EXPIRE`-family: options first (as Redis checks them), then the time.
fn expire_generic(
    args: &mut Args,
    in_seconds: bool,
    relative: bool,
) -> Result<Command, CommandError> {
    let key = args.take()?;
    let raw_time = args.take()?;
    let mut condition = ExpireCondition::default();
    while let Some(option) = args.take_optional() {
        if is(&option, "nx") {
            condition.if_no_ttl = true;
        } else if is(&option, "xx") {
            condition.if_has_ttl = true;
        } else if is(&option, "gt") {
            condition.if_greater = true;
        } else if is(&option, "lt") {
            condition.if_less = true;
        } else {
            return Err(CommandError::UnsupportedOption(option));
        }
    }
    if condition.if_no_ttl && (condition.if_has_ttl || condition.if_greater || condition.if_less) {
        return Err(CommandError::ExpireNxAndOthers);
    }
    if condition.if_greater && condition.if_less {
        return Err(CommandError::ExpireGtAndLt);
    }
    let value = parse_integer(&raw_time).ok_or(CommandError::NotAnInteger)?;
    let invalid = CommandError::InvalidExpireTime {
        command: args.full_name(),
    };
    let milliseconds = if in_seconds {
        value.checked_mul(1000).ok_or(invalid)?
    } else {
        value
    };
    Ok(Command::Expire {
        key,
        time: ExpireTime {
            milliseconds,
            relative,
        },
        condition,
    })
}

pub(crate) fn expire(args: &mut Args) -> Result<Command, CommandError> {
    expire_generic(args, true, true)
}

pub(crate) fn pexpire(args: &mut Args) -> Result<Command, CommandError> {
    expire_generic(args, false, true)
}

pub(crate) fn expireat(args: &mut Args) -> Result<Command, CommandError> {
    expire_generic(args, true, false)
}

pub(crate) fn pexpireat(args: &mut Args) -> Result<Command, CommandError> {
    expire_generic(args, false, false)
}

pub(crate) fn ttl(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Ttl {
        key: args.take()?,
        unit: TimeUnit::Seconds,
        absolute: false,
    })
}

pub(crate) fn pttl(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Ttl {
        key: args.take()?,
        unit: TimeUnit::Milliseconds,
        absolute: false,
    })
}

pub(crate) fn expiretime(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Ttl {
        key: args.take()?,
        unit: TimeUnit::Seconds,
        absolute: true,
    })
}

pub(crate) fn pexpiretime(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Ttl {
        key: args.take()?,
        unit: TimeUnit::Milliseconds,
        absolute: true,
    })
}

pub(crate) fn persist(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Persist { key: args.take()? })
}

pub(crate) fn rename(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Rename {
        source: args.take()?,
        destination: args.take()?,
        only_if_new: false,
    })
}

pub(crate) fn renamenx(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Rename {
        source: args.take()?,
        destination: args.take()?,
        only_if_new: true,
    })
}

pub(crate) fn copy(args: &mut Args) -> Result<Command, CommandError> {
    let source = args.take()?;
    let destination = args.take()?;
    let mut replace = false;
    let mut database = 0;
    while let Some(option) = args.take_optional() {
        if is(&option, "replace") {
            replace = true;
        } else if is(&option, "db") && args.remaining() > 0 {
            database = args.integer()?;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    if database != 0 {
        return Err(CommandError::DbIndexOutOfRange);
    }
    Ok(Command::Copy {
        source,
        destination,
        replace,
    })
}

pub(crate) fn keys(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Keys {
        pattern: args.take()?,
    })
}

pub(crate) fn scan(args: &mut Args) -> Result<Command, CommandError> {
    let raw_cursor = args.take()?;
    let cursor = std::str::from_utf8(&raw_cursor)
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or(CommandError::InvalidCursor)?;
    let mut options = ScanOptions::default();
    while let Some(option) = args.take_optional() {
        if args.remaining() == 0 {
            return Err(CommandError::Syntax);
        }
        if is(&option, "count") {
            let count = args.integer()?;
            if count < 1 {
                return Err(CommandError::Syntax);
            }
            options.count = Some(count as u64);
        } else if is(&option, "match") {
            options.pattern = Some(args.take()?);
        } else if is(&option, "type") {
            options.type_name = Some(args.take()?);
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(Command::Scan { cursor, options })
}

pub(crate) fn randomkey(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::RandomKey)
}

pub(crate) fn dbsize(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::DbSize)
}

/// `FLUSHDB`/`FLUSHALL [ASYNC | SYNC]`.
fn flush_mode(args: &mut Args) -> Result<bool, CommandError> {
    let asynchronous = match args.take_optional() {
        None => false,
        Some(mode) if is(&mode, "async") => true,
        Some(mode) if is(&mode, "sync") => false,
        Some(_) => return Err(CommandError::Syntax),
    };
    args.finish()?;
    Ok(asynchronous)
}

pub(crate) fn flushdb(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::FlushDb {
        asynchronous: flush_mode(args)?,
    })
}

pub(crate) fn flushall(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::FlushAll {
        asynchronous: flush_mode(args)?,
    })
}

/// `OBJECT ENCODING key`.
pub(crate) fn object_encoding(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    Ok(Command::Object {
        key,
        query: super::types::ObjectQuery::Encoding,
    })
}

/// `MEMORY USAGE key [SAMPLES count]`: the store counts every value's
/// bytes exactly, so `SAMPLES` (how many elements Redis samples to
/// estimate a collection) is checked and changes nothing.
pub(crate) fn memory_usage(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    match args.take_optional() {
        Some(word) if is(&word, "samples") && args.remaining() == 1 => {
            args.integer()?;
        }
        Some(_) => return Err(CommandError::Syntax),
        None => {}
    }
    Ok(Command::Object {
        key,
        query: super::types::ObjectQuery::MemoryUsage,
    })
}

/// `OBJECT REFCOUNT key`.
pub(crate) fn object_refcount(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    Ok(Command::Object {
        key,
        query: super::types::ObjectQuery::RefCount,
    })
}
