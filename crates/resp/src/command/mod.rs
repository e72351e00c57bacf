//! The command layer: requests to typed commands, through one table.
//!
//! [`COMMANDS`] declares every command once, in the manner of Redis's own
//! command table: name, arity, flags, key positions, ACL categories, docs,
//! subcommands and a parser. From it come:
//!
//! - [`parse`]: lookup by name in any case (subcommands too), the arity
//!   check, and the typed [`Command`], or a [`CommandError`] whose text is
//!   Redis 7's (`ERR wrong number of arguments for 'get' command`,
//!   `ERR syntax error`, `ERR value is not an integer or out of range`,
//!   `ERR unknown command 'x', with args beginning with: 'a' `, ...);
//! - [`CommandSpec::key_indexes_in`]: the key arguments, for routing a
//!   request to its shard and for `COMMAND GETKEYS`;
//! - [`introspection`]: the replies of `COMMAND`, `COMMAND COUNT/INFO/
//!   DOCS/LIST/GETKEYS` and every container's `HELP`, which need nothing
//!   but the table.
//!
//! ```text
//!  [b"set", b"k", b"v", b"EX", b"10"]
//!        │ lookup("set") ─► &CommandSpec { arity: -3, keys 1..1, parse: strings::set }
//!        │ arity_fits(5)?            no ─► CommandError::WrongArity
//!        ▼ (spec.parse)(args)        bad option ─► CommandError::Syntax
//!  Command::Set { key, value, condition: Always, expiry: At(10 000 ms, relative), get: false }
//! ```
//!
//! Adding a command: a variant in [`Command`], a parser in the module of its
//! group, an entry in the table (kept sorted), and its execution in the
//! server. Nothing else lists commands.

mod args;
mod blocking;
mod collections;
mod error;
mod glob;
pub mod introspection;
mod keys;
mod lists;
mod server;
mod slot;
mod strings;
mod table;
mod types;
mod zsets;

use bytes::Bytes;

pub use args::{Args, parse_float, parse_integer};
pub use blocking::{BlockTimeout, MultiPop, PopFrom, PopReply, parse_timeout};
pub use collections::{ElementScan, HashCommand, SetCombination, SetCommand};
pub use error::CommandError;
pub use glob::glob_match;
pub use lists::{ListCommand, ListEnd};
pub use server::{MAX_STALENESS_MS, is_valid_client_name};
pub use slot::{SLOT_COUNT, crc16, hash_tag, key_slot};
pub use table::{COMMANDS, CommandSpec, ParseFn, lookup, lookup_subcommand};
pub use types::{
    ClientInfoAttribute, Command, ExpireCondition, ExpireTime, GetExExpiry, LcsOptions,
    ObjectQuery, ScanOptions, SetCondition, SetExpiry, TimeUnit, TrackingOptions,
};
pub use zsets::{
    LexBoundArg, ScoreBoundArg, ZAggregate, ZCombination, ZRangeArg, ZSetCommand, parse_score,
};

/// A request understood: the table entry it matched (a subcommand's, for
/// `CONFIG GET`) and the typed command.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The table entry; gives flags and key positions.
    pub spec: &'static CommandSpec,
    /// What to do.
    pub command: Command,
}

/// Resolves a request (`args[0]` is the command name) to its table entry,
/// checking the arity as Redis does, without parsing the arguments.
///
/// # Errors
///
/// Unknown command or subcommand, or the wrong number of arguments.
pub fn resolve(args: &[Bytes]) -> Result<&'static CommandSpec, CommandError> {
    let Some(name) = args.first() else {
        return Err(CommandError::UnknownCommand {
            name: Bytes::new(),
            args: Vec::new(),
        });
    };
    let Some(spec) = lookup(name) else {
        return Err(CommandError::UnknownCommand {
            name: name.clone(),
            args: args[1..].to_vec(),
        });
    };
    if spec.subcommands.is_empty() || (args.len() == 1 && spec.parse.is_some()) {
        return check_arity(spec, args.len());
    }
    let Some(subcommand_name) = args.get(1) else {
        return Err(CommandError::WrongArity {
            full_name: spec.name,
        });
    };
    let Some(subcommand) = lookup_subcommand(spec, subcommand_name) else {
        return Err(CommandError::UnknownSubcommand {
            subcommand: subcommand_name.clone(),
            container: spec.name.to_ascii_uppercase(),
        });
    };
    check_arity(subcommand, args.len())
}

fn check_arity(
    spec: &'static CommandSpec,
    count: usize,
) -> Result<&'static CommandSpec, CommandError> {
    if spec.arity_fits(count) {
        Ok(spec)
    } else {
        Err(CommandError::WrongArity {
            full_name: spec.name,
        })
    }
}

/// Parses a request (`args[0]` is the command name, in any case).
///
/// # Errors
///
/// A [`CommandError`] with Redis's text; nothing has been executed.
pub fn parse(args: &[Bytes]) -> Result<Parsed, CommandError> {
    let spec = resolve(args)?;
    let skip = if spec.name.contains('|') { 2 } else { 1 };
    let Some(parse_arguments) = spec.parse else {
        return Err(CommandError::WrongArity {
            full_name: spec.name,
        });
    };
    let mut arguments = Args::new(&args[skip.min(args.len())..], spec.name);
    let command = parse_arguments(&mut arguments)?;
    Ok(Parsed { spec, command })
}
