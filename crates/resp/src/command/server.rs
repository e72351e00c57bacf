//! Parsers of the connection, server and cluster commands.

use super::args::{Args, is, parse_integer};
use super::error::CommandError;
use super::types::{ClientInfoAttribute, Command, TrackingOptions};

pub(crate) fn ping(args: &mut Args) -> Result<Command, CommandError> {
    let message = args.take_optional();
    if args.remaining() > 0 {
        return Err(CommandError::WrongArity {
            full_name: args.full_name(),
        });
    }
    Ok(Command::Ping { message })
}

pub(crate) fn echo(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Echo {
        message: args.take()?,
    })
}

/// Redis's client-name rule: printable ASCII, no spaces.
pub fn is_valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&byte| (b'!'..=b'~').contains(&byte))
}

pub(crate) fn hello(args: &mut Args) -> Result<Command, CommandError> {
    let mut protocol = None;
    if let Some(version) = args.take_optional() {
        let version = parse_integer(&version).ok_or(CommandError::ProtocolVersionNotInteger)?;
        protocol = match version {
            2 => Some(2),
            3 => Some(3),
            _ => return Err(CommandError::UnsupportedProtocol),
        };
    }
    let mut auth = None;
    let mut client_name = None;
    while let Some(option) = args.take_optional() {
        if is(&option, "auth") && args.remaining() >= 2 {
            auth = Some((args.take()?, args.take()?));
        } else if is(&option, "setname") && args.remaining() >= 1 {
            let name = args.take()?;
            if !is_valid_client_name(&name) {
                return Err(CommandError::InvalidClientName);
            }
            client_name = Some(name);
        } else {
            return Err(CommandError::HelloSyntax(option));
        }
    }
    Ok(Command::Hello {
        protocol,
        auth,
        client_name,
    })
}

pub(crate) fn auth(args: &mut Args) -> Result<Command, CommandError> {
    let first = args.take()?;
    let command = match args.take_optional() {
        None => Command::Auth {
            username: None,
            password: first,
        },
        Some(password) => Command::Auth {
            username: Some(first),
            password,
        },
    };
    if args.remaining() > 0 {
        return Err(CommandError::Syntax);
    }
    Ok(command)
}

pub(crate) fn acl_whoami(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::AclWhoami)
}

pub(crate) fn select(args: &mut Args) -> Result<Command, CommandError> {
    let index = args.integer()?;
    if i32::try_from(index).is_err() {
        return Err(CommandError::NotAnInteger);
    }
    Ok(Command::Select { index })
}

pub(crate) fn quit(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Quit)
}

pub(crate) fn reset(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Reset)
}

pub(crate) fn client_setname(args: &mut Args) -> Result<Command, CommandError> {
    let name = args.take()?;
    if !is_valid_client_name(&name) {
        return Err(CommandError::InvalidClientName);
    }
    Ok(Command::ClientSetName { name })
}

pub(crate) fn client_getname(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClientGetName)
}

pub(crate) fn client_id(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClientId)
}

pub(crate) fn client_info(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClientInfo)
}

pub(crate) fn client_list(args: &mut Args) -> Result<Command, CommandError> {
    args.finish()?;
    Ok(Command::ClientList)
}

pub(crate) fn client_setinfo(args: &mut Args) -> Result<Command, CommandError> {
    let attribute_name = args.take()?;
    let value = args.take()?;
    let (attribute, label) = if is(&attribute_name, "lib-name") {
        (ClientInfoAttribute::LibraryName, "lib-name")
    } else if is(&attribute_name, "lib-ver") {
        (ClientInfoAttribute::LibraryVersion, "lib-ver")
    } else {
        return Err(CommandError::UnrecognizedClientInfo(attribute_name));
    };
    if !is_valid_client_name(&value) {
        return Err(CommandError::InvalidClientInfo { attribute: label });
    }
    Ok(Command::ClientSetInfo { attribute, value })
}

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP]`: the options' rules are checked here (the session
/// decides what this connection and server can do).
pub(crate) fn client_tracking(args: &mut Args) -> Result<Command, CommandError> {
    let switch = args.take()?;
    let on = if is(&switch, "on") {
        true
    } else if is(&switch, "off") {
        false
    } else {
        return Err(CommandError::TrackingSyntax(switch));
    };
    let mut options = TrackingOptions::default();
    let mut redirect = None;
    while let Some(option) = args.take_optional() {
        if is(&option, "redirect") {
            redirect = Some(args.integer()?);
        } else if is(&option, "prefix") {
            options.prefixes.push(args.take()?);
        } else if is(&option, "bcast") {
            options.bcast = true;
        } else if is(&option, "optin") {
            options.optin = true;
        } else if is(&option, "optout") {
            options.optout = true;
        } else if is(&option, "noloop") {
            options.noloop = true;
        } else {
            return Err(CommandError::TrackingSyntax(option));
        }
    }
    if on {
        if !options.prefixes.is_empty() && !options.bcast {
            return Err(CommandError::PrefixWithoutBcast);
        }
        if options.optin && options.optout {
            return Err(CommandError::OptinAndOptout);
        }
        if options.bcast && (options.optin || options.optout) {
            return Err(CommandError::OptionsWithBcast);
        }
        for (position, prefix) in options.prefixes.iter().enumerate() {
            for other in &options.prefixes[position + 1..] {
                if prefix.starts_with(other) || other.starts_with(prefix) {
                    return Err(CommandError::OverlappingPrefixes(
                        prefix.clone(),
                        other.clone(),
                    ));
                }
            }
        }
    }
    Ok(Command::ClientTracking {
        on,
        options,
        redirect,
    })
}

pub(crate) fn client_caching(args: &mut Args) -> Result<Command, CommandError> {
    let answer = args.take()?;
    if is(&answer, "yes") {
        Ok(Command::ClientCaching { yes: true })
    } else if is(&answer, "no") {
        Ok(Command::ClientCaching { yes: false })
    } else {
        Err(CommandError::CachingSyntax)
    }
}

pub(crate) fn client_trackinginfo(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClientTrackingInfo)
}

pub(crate) fn client_getredir(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClientGetRedir)
}

pub(crate) fn info(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Info {
        sections: args.rest(),
    })
}

pub(crate) fn time(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::Time)
}

pub(crate) fn config_get(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ConfigGet {
        patterns: args.rest(),
    })
}

pub(crate) fn config_set(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ConfigSet {
        pairs: args.pairs()?,
    })
}

pub(crate) fn config_resetstat(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ConfigResetStat)
}

pub(crate) fn command_all(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::CommandAll)
}

pub(crate) fn command_count(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::CommandCount)
}

pub(crate) fn command_list(args: &mut Args) -> Result<Command, CommandError> {
    args.finish()?;
    Ok(Command::CommandList)
}

pub(crate) fn command_info(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::CommandInfo { names: args.rest() })
}

pub(crate) fn command_docs(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::CommandDocs { names: args.rest() })
}

pub(crate) fn command_getkeys(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::CommandGetKeys { args: args.rest() })
}

pub(crate) fn cluster_info(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClusterInfo)
}

pub(crate) fn cluster_slots(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClusterSlots)
}

pub(crate) fn cluster_shards(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClusterShards)
}

pub(crate) fn cluster_nodes(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClusterNodes)
}

pub(crate) fn cluster_myid(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClusterMyId)
}

pub(crate) fn cluster_keyslot(args: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClusterKeySlot { key: args.take()? })
}

/// `X HELP` for any container `X`: the full name is `x|help`.
pub(crate) fn help(args: &mut Args) -> Result<Command, CommandError> {
    let container = args.full_name().split('|').next().unwrap_or_default();
    Ok(Command::Help { container })
}

pub(crate) fn asking(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ClusterNoop)
}

/// `READONLY [MAXSTALENESS ms]`: distcache's option lets a replica answer
/// from a read index it was granted up to `ms` ago (see
/// [`crate::Session::replica_reads`]).
pub(crate) fn readonly(args: &mut Args) -> Result<Command, CommandError> {
    let mut max_staleness_ms = 0;
    if let Some(option) = args.take_optional() {
        if !is(&option, "maxstaleness") {
            return Err(CommandError::Syntax);
        }
        let ms = args.integer()?;
        max_staleness_ms = u64::try_from(ms)
            .ok()
            .filter(|&ms| ms <= MAX_STALENESS_MS)
            .ok_or(CommandError::StalenessOutOfRange)?;
        args.finish()?;
    }
    Ok(Command::ReplicaReads(Some(max_staleness_ms)))
}

pub(crate) fn readwrite(_: &mut Args) -> Result<Command, CommandError> {
    Ok(Command::ReplicaReads(None))
}

/// The largest `READONLY MAXSTALENESS` (one minute; the same bound as the
/// replicas' own).
pub const MAX_STALENESS_MS: u64 = 60_000;
