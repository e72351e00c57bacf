//! Replies computed from the table alone: `COMMAND` and its subcommands,
//! and every container's `HELP`.

use bytes::Bytes;

use super::error::CommandError;
use super::table::{COMMANDS, CommandSpec, lookup, lookup_subcommand};
use crate::frame::Frame;

/// `COMMAND INFO`'s entry for one command (Redis 7's ten fields: name,
/// arity, flags, first key, last key, step, ACL categories, tips, key
/// specifications, subcommands). distcache has no tips and leaves key
/// specifications empty; the legacy key positions carry the same facts
/// for every command it has.
pub fn command_info(spec: &CommandSpec) -> Frame {
    Frame::Array(vec![
        Frame::bulk(spec.name),
        Frame::Integer(i64::from(spec.arity)),
        Frame::Set(spec.flags.iter().map(|flag| Frame::simple(flag)).collect()),
        Frame::Integer(i64::from(spec.first_key)),
        Frame::Integer(i64::from(spec.last_key)),
        Frame::Integer(i64::from(spec.key_step)),
        Frame::Set(
            spec.acl_categories
                .iter()
                .map(|category| Frame::simple(category))
                .collect(),
        ),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
        Frame::Array(spec.subcommands.iter().map(command_info).collect()),
    ])
}

/// `COMMAND DOCS`'s map for one command: summary, since, group,
/// complexity, arguments and subcommands. The arguments are given as one
/// argument whose name is the whole synopsis (`key value [NX | XX] ...`),
/// which is what redis-cli shows as the hint.
pub fn command_docs(spec: &CommandSpec) -> Frame {
    let text = |value: &str| Frame::bulk(value);
    let mut fields = vec![
        (text("summary"), text(spec.summary)),
        (text("since"), text(spec.since)),
        (text("group"), text(spec.group)),
        (text("complexity"), text(spec.complexity)),
    ];
    if !spec.syntax.is_empty() {
        fields.push((
            text("arguments"),
            Frame::Array(vec![Frame::Map(vec![
                (text("name"), text(spec.syntax)),
                (text("type"), text("string")),
                (text("display_text"), text(spec.syntax)),
            ])]),
        ));
    }
    if !spec.subcommands.is_empty() {
        fields.push((
            text("subcommands"),
            Frame::Map(
                spec.subcommands
                    .iter()
                    .map(|sub| (text(sub.name), command_docs(sub)))
                    .collect(),
            ),
        ));
    }
    Frame::Map(fields)
}

/// The spec named `name`: a command (`get`) or a subcommand (`config|get`).
fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&byte| byte == b'|') {
        None => lookup(name),
        Some(bar) => lookup_subcommand(lookup(&name[..bar])?, &name[bar + 1..]),
    }
}

/// `COMMAND` (every command) or `COMMAND INFO name ...` (null for unknown).
pub fn info_reply(names: &[Bytes]) -> Frame {
    if names.is_empty() {
        return Frame::Array(COMMANDS.iter().map(command_info).collect());
    }
    Frame::Array(
        names
            .iter()
            .map(|name| find(name).map_or(Frame::Null, command_info))
            .collect(),
    )
}

/// `COMMAND DOCS [name ...]`: a map from name to docs (unknown names are
/// left out, as Redis does).
pub fn docs_reply(names: &[Bytes]) -> Frame {
    let entry = |spec: &'static CommandSpec| (Frame::bulk(spec.name), command_docs(spec));
    if names.is_empty() {
        return Frame::Map(COMMANDS.iter().map(entry).collect());
    }
    Frame::Map(
        names
            .iter()
            .filter_map(|name| find(name))
            .map(entry)
            .collect(),
    )
}

/// `COMMAND COUNT`: the top-level commands.
pub fn count_reply() -> Frame {
    Frame::Integer(COMMANDS.len() as i64)
}

/// `COMMAND LIST`: every command and subcommand name.
pub fn list_reply() -> Frame {
    let mut names = Vec::new();
    for spec in COMMANDS {
        names.push(Frame::bulk(spec.name));
        names.extend(spec.subcommands.iter().map(|sub| Frame::bulk(sub.name)));
    }
    Frame::Array(names)
}

/// `COMMAND GETKEYS command arg ...`: the key arguments of that request.
///
/// # Errors
///
/// Redis's errors for an unknown command, a wrong argument count, or a
/// command without keys.
pub fn getkeys_reply(args: &[Bytes]) -> Result<Frame, CommandError> {
    let spec = super::resolve(args).map_err(|error| match error {
        CommandError::WrongArity { .. } => CommandError::InvalidArgumentCount,
        _ => CommandError::InvalidCommandSpecified,
    })?;
    let indexes = spec.key_indexes_in(args);
    if indexes.is_empty() {
        return Err(CommandError::NoKeyArguments);
    }
    Ok(Frame::Array(
        indexes
            .into_iter()
            .filter_map(|index| args.get(index).cloned().map(Frame::BulkString))
            .collect(),
    ))
}

/// `X HELP` for the container with full name `container`: its
/// subcommands with their syntax and summary, as Redis lays it out.
pub fn help_reply(container: &str) -> Frame {
    let Some(spec) = lookup(container.as_bytes()) else {
        return Frame::Array(Vec::new());
    };
    let upper = spec.name.to_ascii_uppercase();
    let mut lines = vec![Frame::simple(&format!(
        "{upper} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    for sub in spec.subcommands {
        let name = sub.short_name().to_ascii_uppercase();
        let usage = if sub.syntax.is_empty() {
            name
        } else {
            format!("{name} {}", sub.syntax)
        };
        lines.push(Frame::simple(&usage));
        lines.push(Frame::simple(&format!("    {}", sub.summary)));
    }
    Frame::Array(lines)
}
