//! The command table: one entry per command, the only place a command is
//! declared. Lookup, arity errors, key positions, `COMMAND` replies and
//! `HELP` all read it.

use super::args::Args;
use super::error::CommandError;
use super::types::Command;
use super::{blocking, collections, keys, lists, server, strings, zsets};

/// How a command's arguments become a [`Command`]: given the arguments
/// after the name (and subcommand), arity already checked.
pub type ParseFn = fn(&mut Args) -> Result<Command, CommandError>;

/// One command, as Redis's command table describes it.
#[derive(Debug)]
pub struct CommandSpec {
    /// The full lowercase name: `get`, or `config|get` for a subcommand.
    pub name: &'static str,
    /// Redis's arity, counting the name (and subcommand): `n` exactly `n`
    /// arguments, `-n` at least `n`.
    pub arity: i32,
    /// Redis's command flags (`write`, `readonly`, `denyoom`, `fast`, ...).
    pub flags: &'static [&'static str],
    /// The first key's argument index (0: no keys).
    pub first_key: i32,
    /// The last key's argument index; negative counts from the end
    /// (`-1`: the last argument).
    pub last_key: i32,
    /// The distance between keys (`MSET`: 2).
    pub key_step: i32,
    /// For a command whose keys follow a count (`SINTERCARD numkeys key
    /// ...`, flag `movablekeys`): the count's argument index; its keys are
    /// the arguments after it (0: none such, the key positions above
    /// say).
    pub numkeys_index: i32,
    /// ACL categories (`@read`, `@string`, ...).
    pub acl_categories: &'static [&'static str],
    /// The documentation group (`string`, `generic`, `server`, ...).
    pub group: &'static str,
    /// The Redis version that introduced the command.
    pub since: &'static str,
    /// The time complexity.
    pub complexity: &'static str,
    /// One line on what the command does.
    pub summary: &'static str,
    /// The arguments after the name, in Redis's documentation syntax.
    pub syntax: &'static str,
    /// Subcommands of a container command (`CONFIG GET`, ...), by name.
    pub subcommands: &'static [CommandSpec],
    /// The parser; `None` for a container, whose subcommands parse.
    pub parse: Option<ParseFn>,
}

/// Names are unique in the table, so a spec is its name.
impl PartialEq for CommandSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl CommandSpec {
    /// Whether the command has Redis flag `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// Whether the command changes data (flag `write`).
    pub fn is_write(&self) -> bool {
        self.has_flag("write")
    }

    /// Whether `argument_count` arguments (name included) fit the arity.
    pub fn arity_fits(&self, argument_count: usize) -> bool {
        let count = i64::try_from(argument_count).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            count == arity
        } else {
            count >= -arity
        }
    }

    /// The indexes of the key arguments in a request of `argument_count`
    /// arguments (name included), from the table's key positions.
    pub fn key_indexes(&self, argument_count: usize) -> Vec<usize> {
        if self.first_key <= 0 || self.key_step <= 0 {
            return Vec::new();
        }
        let count = i64::try_from(argument_count).unwrap_or(i64::MAX);
        let last = if self.last_key < 0 {
            count + i64::from(self.last_key)
        } else {
            i64::from(self.last_key)
        };
        let last = last.min(count - 1);
        (i64::from(self.first_key)..=last)
            .step_by(self.key_step as usize)
            .filter_map(|index| usize::try_from(index).ok())
            .collect()
    }

    /// The indexes of the key arguments in `args` (the name first): the
    /// table's key positions, or for a command with
    /// [`CommandSpec::numkeys_index`] the arguments its count names (none
    /// if the count is not a positive integer; the parser refuses it).
    /// Routing and ACL checks use this, so every key is seen.
    pub fn key_indexes_in(&self, args: &[bytes::Bytes]) -> Vec<usize> {
        let Ok(count_index) = usize::try_from(self.numkeys_index) else {
            return self.key_indexes(args.len());
        };
        if count_index == 0 {
            return self.key_indexes(args.len());
        }
        let count = args
            .get(count_index)
            .and_then(|count| super::args::parse_integer(count))
            .and_then(|count| usize::try_from(count).ok())
            .unwrap_or(0);
        let first = count_index + 1;
        // Keys before the count (`ZUNIONSTORE destination numkeys ...`).
        let mut indexes: Vec<usize> = self
            .key_indexes(args.len())
            .into_iter()
            .filter(|&index| index < count_index)
            .collect();
        indexes.extend(first..first.saturating_add(count).min(args.len()));
        indexes
    }

    /// The name of the command in capitals without the container
    /// (`GET`, `GET` for `config|get`).
    pub fn short_name(&self) -> &'static str {
        self.name.rsplit('|').next().unwrap_or(self.name)
    }
}

/// The defaults every entry starts from.
const BASE: CommandSpec = CommandSpec {
    name: "",
    arity: 1,
    flags: &[],
    first_key: 0,
    last_key: 0,
    key_step: 0,
    numkeys_index: 0,
    acl_categories: &[],
    group: "generic",
    since: "1.0.0",
    complexity: "O(1)",
    summary: "",
    syntax: "",
    subcommands: &[],
    parse: None,
};

/// Key positions of a command whose only key is its first argument.
const ONE_KEY: CommandSpec = CommandSpec {
    first_key: 1,
    last_key: 1,
    key_step: 1,
    ..BASE
};
/// A string command that writes one key.
const STRING_WRITE: CommandSpec = CommandSpec {
    flags: &["write", "denyoom", "fast"],
    acl_categories: &["@write", "@string", "@fast"],
    group: "string",
    ..ONE_KEY
};
/// A string command that reads one key.
const STRING_READ: CommandSpec = CommandSpec {
    flags: &["readonly", "fast"],
    acl_categories: &["@read", "@string", "@fast"],
    group: "string",
    ..ONE_KEY
};
/// A keyspace command that writes one key.
const KEY_WRITE: CommandSpec = CommandSpec {
    flags: &["write", "fast"],
    acl_categories: &["@keyspace", "@write", "@fast"],
    ..ONE_KEY
};
/// A keyspace command that reads one key.
const KEY_READ: CommandSpec = CommandSpec {
    flags: &["readonly", "fast"],
    acl_categories: &["@keyspace", "@read", "@fast"],
    ..ONE_KEY
};
/// A connection command that works before authentication and while loading.
const CONNECTION: CommandSpec = CommandSpec {
    flags: &["noscript", "loading", "stale", "fast"],
    acl_categories: &["@fast", "@connection"],
    group: "connection",
    ..BASE
};
/// A hash command that writes one key and may grow it.
const HASH_WRITE: CommandSpec = CommandSpec {
    flags: &["write", "denyoom", "fast"],
    acl_categories: &["@write", "@hash", "@fast"],
    group: "hash",
    ..ONE_KEY
};
/// A hash command that writes one key without growing it.
const HASH_WRITE_FAST: CommandSpec = CommandSpec {
    flags: &["write", "fast"],
    ..HASH_WRITE
};
/// A hash command that reads a whole hash.
const HASH_READ: CommandSpec = CommandSpec {
    flags: &["readonly"],
    acl_categories: &["@read", "@hash", "@slow"],
    group: "hash",
    ..ONE_KEY
};
/// A hash command that reads a few fields.
const HASH_READ_FAST: CommandSpec = CommandSpec {
    flags: &["readonly", "fast"],
    acl_categories: &["@read", "@hash", "@fast"],
    ..HASH_READ
};
/// A set command that writes one key and may grow it.
const SET_WRITE: CommandSpec = CommandSpec {
    flags: &["write", "denyoom", "fast"],
    acl_categories: &["@write", "@set", "@fast"],
    group: "set",
    ..ONE_KEY
};
/// A set command that writes one key without growing it.
const SET_WRITE_FAST: CommandSpec = CommandSpec {
    flags: &["write", "fast"],
    ..SET_WRITE
};
/// A set command that reads a whole set.
const SET_READ: CommandSpec = CommandSpec {
    flags: &["readonly"],
    acl_categories: &["@read", "@set", "@slow"],
    group: "set",
    ..ONE_KEY
};
/// A set command that reads a few members.
const SET_READ_FAST: CommandSpec = CommandSpec {
    flags: &["readonly", "fast"],
    acl_categories: &["@read", "@set", "@fast"],
    ..SET_READ
};
/// A list command that writes one key and may grow it.
const LIST_WRITE: CommandSpec = CommandSpec {
    flags: &["write", "denyoom", "fast"],
    acl_categories: &["@write", "@list", "@fast"],
    group: "list",
    ..ONE_KEY
};
/// A list command that writes one key without growing it.
const LIST_WRITE_FAST: CommandSpec = CommandSpec {
    flags: &["write", "fast"],
    ..LIST_WRITE
};
/// A list command that writes one key and may be slow.
const LIST_WRITE_SLOW: CommandSpec = CommandSpec {
    flags: &["write"],
    acl_categories: &["@write", "@list", "@slow"],
    ..LIST_WRITE
};
/// A list command that reads one key.
const LIST_READ: CommandSpec = CommandSpec {
    flags: &["readonly"],
    acl_categories: &["@read", "@list", "@slow"],
    group: "list",
    ..ONE_KEY
};
/// A list command that reads one key quickly.
const LIST_READ_FAST: CommandSpec = CommandSpec {
    flags: &["readonly", "fast"],
    acl_categories: &["@read", "@list", "@fast"],
    ..LIST_READ
};
/// A sorted-set command that writes one key and may grow it.
const ZSET_WRITE: CommandSpec = CommandSpec {
    flags: &["write", "denyoom", "fast"],
    acl_categories: &["@write", "@sortedset", "@fast"],
    group: "sorted-set",
    since: "1.2.0",
    ..ONE_KEY
};
/// A sorted-set command that writes one key without growing it.
const ZSET_WRITE_FAST: CommandSpec = CommandSpec {
    flags: &["write", "fast"],
    ..ZSET_WRITE
};
/// A sorted-set command that writes one key and may be slow.
const ZSET_WRITE_SLOW: CommandSpec = CommandSpec {
    flags: &["write"],
    acl_categories: &["@write", "@sortedset", "@slow"],
    ..ZSET_WRITE
};
/// A sorted-set command that writes its destination from sources named
/// by a count (`ZUNIONSTORE destination numkeys key ...`).
const ZSET_STORE: CommandSpec = CommandSpec {
    arity: -4,
    flags: &["write", "denyoom", "movablekeys"],
    acl_categories: &["@write", "@sortedset", "@slow"],
    numkeys_index: 2,
    syntax: "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>]",
    ..ZSET_WRITE
};
/// A sorted-set command that reads a range.
const ZSET_READ: CommandSpec = CommandSpec {
    flags: &["readonly"],
    acl_categories: &["@read", "@sortedset", "@slow"],
    group: "sorted-set",
    since: "1.2.0",
    ..ONE_KEY
};
/// A sorted-set command that reads a few members.
const ZSET_READ_FAST: CommandSpec = CommandSpec {
    flags: &["readonly", "fast"],
    acl_categories: &["@read", "@sortedset", "@fast"],
    ..ZSET_READ
};
/// A blocking list command (`BLPOP`, ...).
const LIST_BLOCKING: CommandSpec = CommandSpec {
    flags: &["write", "noscript", "blocking"],
    acl_categories: &["@write", "@list", "@slow", "@blocking"],
    ..LIST_WRITE
};
/// A blocking sorted-set command (`BZPOPMIN`, ...).
const ZSET_BLOCKING: CommandSpec = CommandSpec {
    flags: &["write", "noscript", "fast", "blocking"],
    acl_categories: &["@write", "@sortedset", "@fast", "@blocking"],
    ..ZSET_WRITE
};
const EXPIRE_SYNTAX: &str = "key seconds [NX | XX | GT | LT]";

/// Every command distcache speaks, sorted by name (a test checks), so that
/// lookup is a binary search.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "acl",
        arity: -2,
        group: "server",
        since: "6.0.0",
        complexity: "Depends on subcommand.",
        summary: "A container for Access List Control commands.",
        acl_categories: &["@slow"],
        subcommands: ACL_SUBCOMMANDS,
        ..BASE
    },
    CommandSpec {
        name: "append",
        arity: 3,
        since: "2.0.0",
        summary: "Appends a string to the value of a key; creates the key if it does not exist.",
        syntax: "key value",
        parse: Some(strings::append),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "asking",
        arity: 1,
        flags: &["fast", "loading", "stale"],
        acl_categories: &["@fast", "@connection"],
        group: "cluster",
        since: "3.0.0",
        summary: "Signals that a cluster client is following an -ASK redirect.",
        parse: Some(server::asking),
        ..BASE
    },
    CommandSpec {
        name: "auth",
        arity: -2,
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        complexity: "O(N) where N is the number of passwords defined for the user",
        summary: "Authenticates the connection.",
        syntax: "[username] password",
        parse: Some(server::auth),
        ..CONNECTION
    },
    CommandSpec {
        name: "blmove",
        arity: 6,
        since: "6.2.0",
        complexity: "O(1)",
        summary: "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
        syntax: "source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout",
        last_key: 2,
        parse: Some(blocking::blmove),
        ..LIST_BLOCKING
    },
    CommandSpec {
        name: "blmpop",
        arity: -5,
        flags: &["write", "blocking", "movablekeys"],
        since: "7.0.0",
        complexity: "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
        summary: "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        syntax: "timeout numkeys key [key ...] <LEFT | RIGHT> [COUNT count]",
        first_key: 0,
        last_key: 0,
        key_step: 0,
        numkeys_index: 2,
        parse: Some(blocking::blmpop),
        ..LIST_BLOCKING
    },
    CommandSpec {
        name: "blpop",
        arity: -3,
        since: "2.0.0",
        complexity: "O(N) where N is the number of provided keys.",
        summary: "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        syntax: "key [key ...] timeout",
        last_key: -2,
        parse: Some(blocking::blpop),
        ..LIST_BLOCKING
    },
    CommandSpec {
        name: "brpop",
        arity: -3,
        since: "2.0.0",
        complexity: "O(N) where N is the number of provided keys.",
        summary: "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        syntax: "key [key ...] timeout",
        last_key: -2,
        parse: Some(blocking::brpop),
        ..LIST_BLOCKING
    },
    CommandSpec {
        name: "brpoplpush",
        arity: 4,
        flags: &["write", "denyoom", "noscript", "blocking"],
        since: "2.2.0",
        complexity: "O(1)",
        summary: "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
        syntax: "source destination timeout",
        last_key: 2,
        parse: Some(blocking::brpoplpush),
        ..LIST_BLOCKING
    },
    CommandSpec {
        name: "bzmpop",
        arity: -5,
        flags: &["write", "blocking", "movablekeys"],
        since: "7.0.0",
        complexity: "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
        summary: "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
        syntax: "timeout numkeys key [key ...] <MIN | MAX> [COUNT count]",
        first_key: 0,
        last_key: 0,
        key_step: 0,
        numkeys_index: 2,
        parse: Some(blocking::bzmpop),
        ..ZSET_BLOCKING
    },
    CommandSpec {
        name: "bzpopmax",
        arity: -3,
        since: "5.0.0",
        complexity: "O(log(N)) with N being the number of elements in the sorted set.",
        summary: "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise. Deletes the sorted set if the last element was popped.",
        syntax: "key [key ...] timeout",
        last_key: -2,
        parse: Some(blocking::bzpopmax),
        ..ZSET_BLOCKING
    },
    CommandSpec {
        name: "bzpopmin",
        arity: -3,
        since: "5.0.0",
        complexity: "O(log(N)) with N being the number of elements in the sorted set.",
        summary: "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
        syntax: "key [key ...] timeout",
        last_key: -2,
        parse: Some(blocking::bzpopmin),
        ..ZSET_BLOCKING
    },
    CommandSpec {
        name: "client",
        arity: -2,
        group: "connection",
        since: "2.4.0",
        complexity: "Depends on subcommand.",
        summary: "A container for client connection commands.",
        acl_categories: &["@slow"],
        subcommands: CLIENT_SUBCOMMANDS,
        ..BASE
    },
    CommandSpec {
        name: "cluster",
        arity: -2,
        group: "cluster",
        since: "3.0.0",
        complexity: "Depends on subcommand.",
        summary: "A container for Redis Cluster commands.",
        acl_categories: &["@slow"],
        subcommands: CLUSTER_SUBCOMMANDS,
        ..BASE
    },
    CommandSpec {
        name: "command",
        arity: -1,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@connection"],
        group: "server",
        since: "2.8.13",
        complexity: "O(N) where N is the total number of commands",
        summary: "Returns detailed information about all commands.",
        subcommands: COMMAND_SUBCOMMANDS,
        parse: Some(server::command_all),
        ..BASE
    },
    CommandSpec {
        name: "config",
        arity: -2,
        group: "server",
        since: "2.0.0",
        complexity: "Depends on subcommand.",
        summary: "A container for server configuration commands.",
        acl_categories: &["@slow"],
        subcommands: CONFIG_SUBCOMMANDS,
        ..BASE
    },
    CommandSpec {
        name: "copy",
        arity: -3,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 2,
        key_step: 1,
        acl_categories: &["@keyspace", "@write", "@slow"],
        since: "6.2.0",
        complexity: "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
        summary: "Copies the value of a key to a new key.",
        syntax: "source destination [DB destination-db] [REPLACE]",
        parse: Some(keys::copy),
        ..BASE
    },
    CommandSpec {
        name: "dbsize",
        arity: 1,
        flags: &["readonly", "fast"],
        acl_categories: &["@keyspace", "@read", "@fast"],
        group: "server",
        summary: "Returns the number of keys in the database.",
        parse: Some(keys::dbsize),
        ..BASE
    },
    CommandSpec {
        name: "decr",
        arity: 2,
        summary: "Decrements the integer value of a key by one; uses 0 as initial value if the key does not exist.",
        syntax: "key",
        parse: Some(strings::decr),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "decrby",
        arity: 3,
        summary: "Decrements a number from the integer value of a key; uses 0 as initial value if the key does not exist.",
        syntax: "key decrement",
        parse: Some(strings::decrby),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "del",
        arity: -2,
        flags: &["write"],
        last_key: -1,
        acl_categories: &["@keyspace", "@write", "@slow"],
        complexity: "O(N) where N is the number of keys that will be removed.",
        summary: "Deletes one or more keys.",
        syntax: "key [key ...]",
        parse: Some(keys::del),
        ..ONE_KEY
    },
    CommandSpec {
        name: "echo",
        arity: 2,
        flags: &["fast"],
        summary: "Returns the given string.",
        syntax: "message",
        parse: Some(server::echo),
        ..CONNECTION
    },
    CommandSpec {
        name: "exists",
        arity: -2,
        last_key: -1,
        complexity: "O(N) where N is the number of keys to check.",
        summary: "Determines whether one or more keys exist.",
        syntax: "key [key ...]",
        parse: Some(keys::exists),
        ..KEY_READ
    },
    CommandSpec {
        name: "expire",
        arity: -3,
        summary: "Sets the expiration time of a key in seconds.",
        syntax: EXPIRE_SYNTAX,
        parse: Some(keys::expire),
        ..KEY_WRITE
    },
    CommandSpec {
        name: "expireat",
        arity: -3,
        since: "1.2.0",
        summary: "Sets the expiration time of a key to a Unix timestamp.",
        syntax: "key unix-time-seconds [NX | XX | GT | LT]",
        parse: Some(keys::expireat),
        ..KEY_WRITE
    },
    CommandSpec {
        name: "expiretime",
        arity: 2,
        since: "7.0.0",
        summary: "Returns the expiration time of a key as a Unix timestamp.",
        syntax: "key",
        parse: Some(keys::expiretime),
        ..KEY_READ
    },
    CommandSpec {
        name: "flushall",
        arity: -1,
        flags: &["write"],
        acl_categories: &["@keyspace", "@write", "@slow", "@dangerous"],
        group: "server",
        complexity: "O(N) where N is the total number of keys in all databases",
        summary: "Removes all keys from all databases.",
        syntax: "[ASYNC | SYNC]",
        parse: Some(keys::flushall),
        ..BASE
    },
    CommandSpec {
        name: "flushdb",
        arity: -1,
        flags: &["write"],
        acl_categories: &["@keyspace", "@write", "@slow", "@dangerous"],
        group: "server",
        complexity: "O(N) where N is the number of keys in the selected database",
        summary: "Remove all keys from the current database.",
        syntax: "[ASYNC | SYNC]",
        parse: Some(keys::flushdb),
        ..BASE
    },
    CommandSpec {
        name: "get",
        arity: 2,
        summary: "Returns the string value of a key.",
        syntax: "key",
        parse: Some(strings::get),
        ..STRING_READ
    },
    CommandSpec {
        name: "getdel",
        arity: 2,
        flags: &["write", "fast"],
        since: "6.2.0",
        summary: "Returns the string value of a key after deleting the key.",
        syntax: "key",
        parse: Some(strings::getdel),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "getex",
        arity: -2,
        flags: &["write", "fast"],
        since: "6.2.0",
        summary: "Returns the string value of a key after setting its expiration time.",
        syntax: "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]",
        parse: Some(strings::getex),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "getrange",
        arity: 4,
        flags: &["readonly"],
        acl_categories: &["@read", "@string", "@slow"],
        since: "2.4.0",
        complexity: "O(N) where N is the length of the returned string.",
        summary: "Returns a substring of the string stored at a key.",
        syntax: "key start end",
        parse: Some(strings::getrange),
        ..STRING_READ
    },
    CommandSpec {
        name: "getset",
        arity: 3,
        summary: "Returns the previous string value of a key after setting it to a new value.",
        syntax: "key value",
        parse: Some(strings::getset),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "hdel",
        arity: -3,
        since: "2.0.0",
        complexity: "O(N) where N is the number of fields to be removed.",
        summary: "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
        syntax: "key field [field ...]",
        parse: Some(collections::hdel),
        ..HASH_WRITE_FAST
    },
    CommandSpec {
        name: "hello",
        arity: -1,
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        since: "6.0.0",
        summary: "Handshakes with the server: protocol version, authentication, client name.",
        syntax: "[protover [AUTH username password] [SETNAME clientname]]",
        parse: Some(server::hello),
        ..CONNECTION
    },
    CommandSpec {
        name: "hexists",
        arity: 3,
        since: "2.0.0",
        complexity: "O(log N)",
        summary: "Determines whether a field exists in a hash.",
        syntax: "key field",
        parse: Some(collections::hexists),
        ..HASH_READ_FAST
    },
    CommandSpec {
        name: "hget",
        arity: 3,
        since: "2.0.0",
        complexity: "O(log N)",
        summary: "Returns the value of a field in a hash.",
        syntax: "key field",
        parse: Some(collections::hget),
        ..HASH_READ_FAST
    },
    CommandSpec {
        name: "hgetall",
        arity: 2,
        since: "2.0.0",
        complexity: "O(N) where N is the size of the hash.",
        summary: "Returns all fields and values in a hash.",
        syntax: "key",
        parse: Some(collections::hgetall),
        ..HASH_READ
    },
    CommandSpec {
        name: "hincrby",
        arity: 4,
        since: "2.0.0",
        complexity: "O(log N)",
        summary: "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
        syntax: "key field increment",
        parse: Some(collections::hincrby),
        ..HASH_WRITE
    },
    CommandSpec {
        name: "hincrbyfloat",
        arity: 4,
        since: "2.6.0",
        complexity: "O(log N)",
        summary: "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
        syntax: "key field increment",
        parse: Some(collections::hincrbyfloat),
        ..HASH_WRITE
    },
    CommandSpec {
        name: "hkeys",
        arity: 2,
        since: "2.0.0",
        complexity: "O(N) where N is the size of the hash.",
        summary: "Returns all fields in a hash.",
        syntax: "key",
        parse: Some(collections::hkeys),
        ..HASH_READ
    },
    CommandSpec {
        name: "hlen",
        arity: 2,
        since: "2.0.0",
        complexity: "O(1)",
        summary: "Returns the number of fields in a hash.",
        syntax: "key",
        parse: Some(collections::hlen),
        ..HASH_READ_FAST
    },
    CommandSpec {
        name: "hmget",
        arity: -3,
        since: "2.0.0",
        complexity: "O(N log M) where N is the number of fields being requested.",
        summary: "Returns the values of all fields in a hash.",
        syntax: "key field [field ...]",
        parse: Some(collections::hmget),
        ..HASH_READ_FAST
    },
    CommandSpec {
        name: "hmset",
        arity: -4,
        since: "2.0.0",
        complexity: "O(N log M) where N is the number of fields being set.",
        summary: "Sets the values of multiple fields.",
        syntax: "key field value [field value ...]",
        parse: Some(collections::hmset),
        ..HASH_WRITE
    },
    CommandSpec {
        name: "hrandfield",
        arity: -2,
        since: "6.2.0",
        complexity: "O(N) where N is the size of the hash.",
        summary: "Returns one or more random fields from a hash.",
        syntax: "key [count [WITHVALUES]]",
        parse: Some(collections::hrandfield),
        ..HASH_READ
    },
    CommandSpec {
        name: "hscan",
        arity: -3,
        since: "2.8.0",
        complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        summary: "Iterates over fields and values of a hash.",
        syntax: "key cursor [MATCH pattern] [COUNT count]",
        parse: Some(collections::hscan),
        ..HASH_READ
    },
    CommandSpec {
        name: "hset",
        arity: -4,
        since: "2.0.0",
        complexity: "O(N log M) where N is the number of field/value pairs being set.",
        summary: "Creates or modifies the value of a field in a hash.",
        syntax: "key field value [field value ...]",
        parse: Some(collections::hset),
        ..HASH_WRITE
    },
    CommandSpec {
        name: "hsetnx",
        arity: 4,
        since: "2.0.0",
        complexity: "O(log N)",
        summary: "Sets the value of a field in a hash only when the field doesn't exist.",
        syntax: "key field value",
        parse: Some(collections::hsetnx),
        ..HASH_WRITE
    },
    CommandSpec {
        name: "hstrlen",
        arity: 3,
        since: "3.2.0",
        complexity: "O(log N)",
        summary: "Returns the length of the value of a field.",
        syntax: "key field",
        parse: Some(collections::hstrlen),
        ..HASH_READ_FAST
    },
    CommandSpec {
        name: "hvals",
        arity: 2,
        since: "2.0.0",
        complexity: "O(N) where N is the size of the hash.",
        summary: "Returns all values in a hash.",
        syntax: "key",
        parse: Some(collections::hvals),
        ..HASH_READ
    },
    CommandSpec {
        name: "incr",
        arity: 2,
        summary: "Increments the integer value of a key by one; uses 0 as initial value if the key does not exist.",
        syntax: "key",
        parse: Some(strings::incr),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "incrby",
        arity: 3,
        summary: "Increments the integer value of a key by a number; uses 0 as initial value if the key does not exist.",
        syntax: "key increment",
        parse: Some(strings::incrby),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "incrbyfloat",
        arity: 3,
        since: "2.6.0",
        summary: "Increments the floating point value of a key by a number; uses 0 as initial value if the key does not exist.",
        syntax: "key increment",
        parse: Some(strings::incrbyfloat),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "info",
        arity: -1,
        flags: &["loading", "stale"],
        acl_categories: &["@slow", "@dangerous"],
        group: "server",
        complexity: "O(1)",
        summary: "Returns information and statistics about the server.",
        syntax: "[section [section ...]]",
        parse: Some(server::info),
        ..BASE
    },
    CommandSpec {
        name: "keys",
        arity: 2,
        flags: &["readonly"],
        acl_categories: &["@keyspace", "@read", "@slow", "@dangerous"],
        complexity: "O(N) with N being the number of keys in the database",
        summary: "Returns all key names that match a pattern.",
        syntax: "pattern",
        parse: Some(keys::keys),
        ..BASE
    },
    CommandSpec {
        name: "lcs",
        arity: -3,
        flags: &["readonly"],
        last_key: 2,
        acl_categories: &["@read", "@string", "@slow"],
        since: "7.0.0",
        complexity: "O(N*M) where N and M are the lengths of s1 and s2, respectively",
        summary: "Finds the longest common substring.",
        syntax: "key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]",
        parse: Some(strings::lcs),
        ..STRING_READ
    },
    CommandSpec {
        name: "lindex",
        arity: 3,
        since: "1.0.0",
        complexity: "O(1)",
        summary: "Returns an element from a list by its index.",
        syntax: "key index",
        parse: Some(lists::lindex),
        ..LIST_READ_FAST
    },
    CommandSpec {
        name: "linsert",
        arity: 5,
        since: "2.2.0",
        complexity: "O(N) where N is the number of elements to traverse before seeing the value pivot.",
        summary: "Inserts an element before or after another element in a list.",
        syntax: "key <BEFORE | AFTER> pivot element",
        parse: Some(lists::linsert),
        ..LIST_WRITE_SLOW
    },
    CommandSpec {
        name: "llen",
        arity: 2,
        since: "1.0.0",
        complexity: "O(1)",
        summary: "Returns the length of a list.",
        syntax: "key",
        parse: Some(lists::llen),
        ..LIST_READ_FAST
    },
    CommandSpec {
        name: "lmove",
        arity: 5,
        since: "6.2.0",
        complexity: "O(1)",
        summary: "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
        syntax: "source destination <LEFT | RIGHT> <LEFT | RIGHT>",
        last_key: 2,
        parse: Some(lists::lmove),
        ..LIST_WRITE_SLOW
    },
    CommandSpec {
        name: "lmpop",
        arity: -4,
        flags: &["write", "movablekeys"],
        since: "7.0.0",
        complexity: "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
        summary: "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
        syntax: "numkeys key [key ...] <LEFT | RIGHT> [COUNT count]",
        first_key: 0,
        last_key: 0,
        key_step: 0,
        numkeys_index: 1,
        parse: Some(blocking::lmpop),
        ..LIST_WRITE_SLOW
    },
    CommandSpec {
        name: "lpop",
        arity: -2,
        since: "1.0.0",
        complexity: "O(N) where N is the number of elements returned",
        summary: "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.",
        syntax: "key [count]",
        parse: Some(lists::lpop),
        ..LIST_WRITE_FAST
    },
    CommandSpec {
        name: "lpos",
        arity: -3,
        since: "6.0.6",
        complexity: "O(N) where N is the number of elements in the list, for the average case.",
        summary: "Returns the index of matching elements in a list.",
        syntax: "key element [RANK rank] [COUNT num-matches] [MAXLEN len]",
        parse: Some(lists::lpos),
        ..LIST_READ
    },
    CommandSpec {
        name: "lpush",
        arity: -3,
        since: "1.0.0",
        complexity: "O(1) for each element added.",
        summary: "Prepends one or more elements to a list. Creates the key if it doesn't exist.",
        syntax: "key element [element ...]",
        parse: Some(lists::lpush),
        ..LIST_WRITE
    },
    CommandSpec {
        name: "lpushx",
        arity: -3,
        since: "2.2.0",
        complexity: "O(1) for each element added.",
        summary: "Prepends one or more elements to a list only when the list exists.",
        syntax: "key element [element ...]",
        parse: Some(lists::lpushx),
        ..LIST_WRITE
    },
    CommandSpec {
        name: "lrange",
        arity: 4,
        since: "1.0.0",
        complexity: "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.",
        summary: "Returns a range of elements from a list.",
        syntax: "key start stop",
        parse: Some(lists::lrange),
        ..LIST_READ
    },
    CommandSpec {
        name: "lrem",
        arity: 4,
        since: "1.0.0",
        complexity: "O(N+M) where N is the length of the list and M is the number of elements removed.",
        summary: "Removes elements from a list. Deletes the list if the last element was removed.",
        syntax: "key count element",
        parse: Some(lists::lrem),
        ..LIST_WRITE_SLOW
    },
    CommandSpec {
        name: "lset",
        arity: 4,
        since: "1.0.0",
        complexity: "O(1)",
        summary: "Sets the value of an element in a list by its index.",
        syntax: "key index element",
        parse: Some(lists::lset),
        ..LIST_WRITE_SLOW
    },
    CommandSpec {
        name: "ltrim",
        arity: 4,
        since: "1.0.0",
        complexity: "O(N) where N is the number of elements to be removed by the operation.",
        summary: "Removes elements from both ends a list. Deletes the list if all elements were trimmed.",
        syntax: "key start stop",
        parse: Some(lists::ltrim),
        ..LIST_WRITE_SLOW
    },
    CommandSpec {
        name: "memory",
        arity: -2,
        group: "server",
        since: "4.0.0",
        complexity: "Depends on subcommand.",
        summary: "A container for memory diagnostics commands.",
        acl_categories: &["@slow"],
        subcommands: MEMORY_SUBCOMMANDS,
        ..BASE
    },
    CommandSpec {
        name: "mget",
        arity: -2,
        last_key: -1,
        complexity: "O(N) where N is the number of keys to retrieve.",
        summary: "Atomically returns the string values of one or more keys.",
        syntax: "key [key ...]",
        parse: Some(strings::mget),
        ..STRING_READ
    },
    CommandSpec {
        name: "mset",
        arity: -3,
        flags: &["write", "denyoom"],
        last_key: -1,
        key_step: 2,
        acl_categories: &["@write", "@string", "@slow"],
        since: "1.0.1",
        complexity: "O(N) where N is the number of keys to set.",
        summary: "Atomically creates or modifies the string values of one or more keys.",
        syntax: "key value [key value ...]",
        parse: Some(strings::mset),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "msetnx",
        arity: -3,
        flags: &["write", "denyoom"],
        last_key: -1,
        key_step: 2,
        acl_categories: &["@write", "@string", "@slow"],
        since: "1.0.1",
        complexity: "O(N) where N is the number of keys to set.",
        summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        syntax: "key value [key value ...]",
        parse: Some(strings::msetnx),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "object",
        arity: -2,
        group: "generic",
        since: "2.2.3",
        complexity: "Depends on subcommand.",
        summary: "A container for object introspection commands.",
        acl_categories: &["@slow"],
        subcommands: OBJECT_SUBCOMMANDS,
        ..BASE
    },
    CommandSpec {
        name: "persist",
        arity: 2,
        since: "2.2.0",
        summary: "Removes the expiration time of a key.",
        syntax: "key",
        parse: Some(keys::persist),
        ..KEY_WRITE
    },
    CommandSpec {
        name: "pexpire",
        arity: -3,
        since: "2.6.0",
        summary: "Sets the expiration time of a key in milliseconds.",
        syntax: "key milliseconds [NX | XX | GT | LT]",
        parse: Some(keys::pexpire),
        ..KEY_WRITE
    },
    CommandSpec {
        name: "pexpireat",
        arity: -3,
        since: "2.6.0",
        summary: "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        syntax: "key unix-time-milliseconds [NX | XX | GT | LT]",
        parse: Some(keys::pexpireat),
        ..KEY_WRITE
    },
    CommandSpec {
        name: "pexpiretime",
        arity: 2,
        since: "7.0.0",
        summary: "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        syntax: "key",
        parse: Some(keys::pexpiretime),
        ..KEY_READ
    },
    CommandSpec {
        name: "ping",
        arity: -1,
        flags: &["fast"],
        summary: "Returns the server's liveliness response.",
        syntax: "[message]",
        parse: Some(server::ping),
        ..CONNECTION
    },
    CommandSpec {
        name: "psetex",
        arity: 4,
        flags: &["write", "denyoom"],
        acl_categories: &["@write", "@string", "@slow"],
        since: "2.6.0",
        summary: "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
        syntax: "key milliseconds value",
        parse: Some(strings::psetex),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "pttl",
        arity: 2,
        since: "2.6.0",
        summary: "Returns the expiration time in milliseconds of a key.",
        syntax: "key",
        parse: Some(keys::pttl),
        ..KEY_READ
    },
    CommandSpec {
        name: "quit",
        arity: -1,
        flags: &[
            "allow_busy",
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
        ],
        summary: "Closes the connection.",
        parse: Some(server::quit),
        ..CONNECTION
    },
    CommandSpec {
        name: "randomkey",
        arity: 1,
        flags: &["readonly"],
        acl_categories: &["@keyspace", "@read", "@slow"],
        summary: "Returns a random key name from the database.",
        parse: Some(keys::randomkey),
        ..BASE
    },
    CommandSpec {
        name: "readonly",
        arity: -1,
        flags: &["fast", "loading", "stale"],
        acl_categories: &["@fast", "@connection"],
        group: "cluster",
        since: "3.0.0",
        summary: "Enables read-only queries for a connection to a Redis Cluster replica node.",
        parse: Some(server::readonly),
        ..BASE
    },
    CommandSpec {
        name: "readwrite",
        arity: 1,
        flags: &["fast", "loading", "stale"],
        acl_categories: &["@fast", "@connection"],
        group: "cluster",
        since: "3.0.0",
        summary: "Enables read-write queries for a connection to a Redis Cluster replica node.",
        parse: Some(server::readwrite),
        ..BASE
    },
    CommandSpec {
        name: "rename",
        arity: 3,
        flags: &["write"],
        last_key: 2,
        acl_categories: &["@keyspace", "@write", "@slow"],
        summary: "Renames a key and overwrites the destination.",
        syntax: "key newkey",
        parse: Some(keys::rename),
        ..ONE_KEY
    },
    CommandSpec {
        name: "renamenx",
        arity: 3,
        last_key: 2,
        summary: "Renames a key only when the target key name doesn't exist.",
        syntax: "key newkey",
        parse: Some(keys::renamenx),
        ..KEY_WRITE
    },
    CommandSpec {
        name: "reset",
        arity: 1,
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        since: "6.2.0",
        summary: "Resets the connection.",
        parse: Some(server::reset),
        ..CONNECTION
    },
    CommandSpec {
        name: "rpop",
        arity: -2,
        since: "1.0.0",
        complexity: "O(N) where N is the number of elements returned",
        summary: "Returns and removes the last elements of a list. Deletes the list if the last element was popped.",
        syntax: "key [count]",
        parse: Some(lists::rpop),
        ..LIST_WRITE_FAST
    },
    CommandSpec {
        name: "rpoplpush",
        arity: 3,
        since: "1.2.0",
        complexity: "O(1)",
        summary: "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
        syntax: "source destination",
        last_key: 2,
        parse: Some(lists::rpoplpush),
        ..LIST_WRITE
    },
    CommandSpec {
        name: "rpush",
        arity: -3,
        since: "1.0.0",
        complexity: "O(1) for each element added.",
        summary: "Appends one or more elements to a list. Creates the key if it doesn't exist.",
        syntax: "key element [element ...]",
        parse: Some(lists::rpush),
        ..LIST_WRITE
    },
    CommandSpec {
        name: "rpushx",
        arity: -3,
        since: "2.2.0",
        complexity: "O(1) for each element added.",
        summary: "Appends an element to a list only when the list exists.",
        syntax: "key element [element ...]",
        parse: Some(lists::rpushx),
        ..LIST_WRITE
    },
    CommandSpec {
        name: "sadd",
        arity: -3,
        since: "1.0.0",
        complexity: "O(N log M) where N is the number of members to be added.",
        summary: "Adds one or more members to a set. Creates the key if it doesn't exist.",
        syntax: "key member [member ...]",
        parse: Some(collections::sadd),
        ..SET_WRITE
    },
    CommandSpec {
        name: "scan",
        arity: -2,
        flags: &["readonly"],
        acl_categories: &["@keyspace", "@read", "@slow"],
        since: "2.8.0",
        complexity: "O(1) for every call. O(N) for a complete iteration.",
        summary: "Iterates over the key names in the database.",
        syntax: "cursor [MATCH pattern] [COUNT count] [TYPE type]",
        parse: Some(keys::scan),
        ..BASE
    },
    CommandSpec {
        name: "scard",
        arity: 2,
        since: "1.0.0",
        complexity: "O(1)",
        summary: "Returns the number of members in a set.",
        syntax: "key",
        parse: Some(collections::scard),
        ..SET_READ_FAST
    },
    CommandSpec {
        name: "sdiff",
        arity: -2,
        since: "1.0.0",
        complexity: "O(N) where N is the total number of elements in all given sets.",
        summary: "Returns the difference of multiple sets.",
        syntax: "key [key ...]",
        last_key: -1,
        parse: Some(collections::sdiff),
        ..SET_READ
    },
    CommandSpec {
        name: "sdiffstore",
        arity: -3,
        flags: &["write", "denyoom"],
        acl_categories: &["@write", "@set", "@slow"],
        since: "1.0.0",
        complexity: "O(N) where N is the total number of elements in all given sets.",
        summary: "Stores the difference of multiple sets in a key.",
        syntax: "destination key [key ...]",
        last_key: -1,
        parse: Some(collections::sdiffstore),
        ..SET_WRITE
    },
    CommandSpec {
        name: "select",
        arity: 2,
        flags: &["loading", "stale", "fast"],
        summary: "Changes the selected database.",
        syntax: "index",
        parse: Some(server::select),
        ..CONNECTION
    },
    CommandSpec {
        name: "set",
        arity: -3,
        flags: &["write", "denyoom"],
        acl_categories: &["@write", "@string", "@slow"],
        summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
        syntax: "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]",
        parse: Some(strings::set),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "setex",
        arity: 4,
        flags: &["write", "denyoom"],
        acl_categories: &["@write", "@string", "@slow"],
        since: "2.0.0",
        summary: "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
        syntax: "key seconds value",
        parse: Some(strings::setex),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "setnx",
        arity: 3,
        summary: "Set the string value of a key only when the key doesn't exist.",
        syntax: "key value",
        parse: Some(strings::setnx),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "setrange",
        arity: 4,
        flags: &["write", "denyoom"],
        acl_categories: &["@write", "@string", "@slow"],
        since: "2.2.0",
        complexity: "O(1), not counting the time taken to copy the new string in place.",
        summary: "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
        syntax: "key offset value",
        parse: Some(strings::setrange),
        ..STRING_WRITE
    },
    CommandSpec {
        name: "sinter",
        arity: -2,
        since: "1.0.0",
        complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        summary: "Returns the intersect of multiple sets.",
        syntax: "key [key ...]",
        last_key: -1,
        parse: Some(collections::sinter),
        ..SET_READ
    },
    CommandSpec {
        name: "sintercard",
        arity: -3,
        flags: &["readonly", "movablekeys"],
        since: "7.0.0",
        complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        summary: "Returns the number of members of the intersect of multiple sets.",
        syntax: "numkeys key [key ...] [LIMIT limit]",
        // The keys follow numkeys (Redis's legacy key positions are all 0).
        first_key: 0,
        last_key: 0,
        key_step: 0,
        numkeys_index: 1,
        parse: Some(collections::sintercard),
        ..SET_READ
    },
    CommandSpec {
        name: "sinterstore",
        arity: -3,
        flags: &["write", "denyoom"],
        acl_categories: &["@write", "@set", "@slow"],
        since: "1.0.0",
        complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        summary: "Stores the intersect of multiple sets in a key.",
        syntax: "destination key [key ...]",
        last_key: -1,
        parse: Some(collections::sinterstore),
        ..SET_WRITE
    },
    CommandSpec {
        name: "sismember",
        arity: 3,
        since: "1.0.0",
        complexity: "O(log N)",
        summary: "Determines whether a member belongs to a set.",
        syntax: "key member",
        parse: Some(collections::sismember),
        ..SET_READ_FAST
    },
    CommandSpec {
        name: "smembers",
        arity: 2,
        since: "1.0.0",
        complexity: "O(N) where N is the set cardinality.",
        summary: "Returns all members of a set.",
        syntax: "key",
        parse: Some(collections::smembers),
        ..SET_READ
    },
    CommandSpec {
        name: "smismember",
        arity: -3,
        since: "6.2.0",
        complexity: "O(N log M) where N is the number of elements being checked for membership",
        summary: "Determines whether multiple members belong to a set.",
        syntax: "key member [member ...]",
        parse: Some(collections::smismember),
        ..SET_READ_FAST
    },
    CommandSpec {
        name: "smove",
        arity: 4,
        since: "1.0.0",
        complexity: "O(1)",
        summary: "Moves a member from one set to another.",
        syntax: "source destination member",
        last_key: 2,
        parse: Some(collections::smove),
        ..SET_WRITE_FAST
    },
    CommandSpec {
        name: "spop",
        arity: -2,
        since: "1.0.0",
        complexity: "O(N) where N is the set cardinality.",
        summary: "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.",
        syntax: "key [count]",
        parse: Some(collections::spop),
        ..SET_WRITE_FAST
    },
    CommandSpec {
        name: "srandmember",
        arity: -2,
        since: "1.0.0",
        complexity: "O(N) where N is the set cardinality.",
        summary: "Get one or multiple random members from a set",
        syntax: "key [count]",
        parse: Some(collections::srandmember),
        ..SET_READ
    },
    CommandSpec {
        name: "srem",
        arity: -3,
        since: "1.0.0",
        complexity: "O(N log M) where N is the number of members to be removed.",
        summary: "Removes one or more members from a set. Deletes the set if the last member was removed.",
        syntax: "key member [member ...]",
        parse: Some(collections::srem),
        ..SET_WRITE_FAST
    },
    CommandSpec {
        name: "sscan",
        arity: -3,
        since: "2.8.0",
        complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        summary: "Iterates over members of a set.",
        syntax: "key cursor [MATCH pattern] [COUNT count]",
        parse: Some(collections::sscan),
        ..SET_READ
    },
    CommandSpec {
        name: "strlen",
        arity: 2,
        since: "2.2.0",
        summary: "Returns the length of a string value.",
        syntax: "key",
        parse: Some(strings::strlen),
        ..STRING_READ
    },
    CommandSpec {
        name: "sunion",
        arity: -2,
        since: "1.0.0",
        complexity: "O(N) where N is the total number of elements in all given sets.",
        summary: "Returns the union of multiple sets.",
        syntax: "key [key ...]",
        last_key: -1,
        parse: Some(collections::sunion),
        ..SET_READ
    },
    CommandSpec {
        name: "sunionstore",
        arity: -3,
        flags: &["write", "denyoom"],
        acl_categories: &["@write", "@set", "@slow"],
        since: "1.0.0",
        complexity: "O(N) where N is the total number of elements in all given sets.",
        summary: "Stores the union of multiple sets in a key.",
        syntax: "destination key [key ...]",
        last_key: -1,
        parse: Some(collections::sunionstore),
        ..SET_WRITE
    },
    CommandSpec {
        name: "time",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        acl_categories: &["@fast"],
        group: "server",
        since: "2.6.0",
        summary: "Returns the server time.",
        parse: Some(server::time),
        ..BASE
    },
    CommandSpec {
        name: "ttl",
        arity: 2,
        summary: "Returns the expiration time in seconds of a key.",
        syntax: "key",
        parse: Some(keys::ttl),
        ..KEY_READ
    },
    CommandSpec {
        name: "type",
        arity: 2,
        summary: "Determines the type of value stored at a key.",
        syntax: "key",
        parse: Some(keys::type_of),
        ..KEY_READ
    },
    CommandSpec {
        name: "unlink",
        arity: -2,
        last_key: -1,
        since: "4.0.0",
        complexity: "O(1) for each key removed regardless of its size.",
        summary: "Asynchronously deletes one or more keys.",
        syntax: "key [key ...]",
        parse: Some(keys::unlink),
        ..KEY_WRITE
    },
    CommandSpec {
        name: "zadd",
        arity: -4,
        complexity: "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
        summary: "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.",
        syntax: "key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]",
        parse: Some(zsets::zadd),
        ..ZSET_WRITE
    },
    CommandSpec {
        name: "zcard",
        arity: 2,
        complexity: "O(1)",
        summary: "Returns the number of members in a sorted set.",
        syntax: "key",
        parse: Some(zsets::zcard),
        ..ZSET_READ_FAST
    },
    CommandSpec {
        name: "zcount",
        arity: 4,
        since: "2.0.0",
        complexity: "O(log(N)) with N being the number of elements in the sorted set.",
        summary: "Returns the count of members in a sorted set that have scores within a range.",
        syntax: "key min max",
        parse: Some(zsets::zcount),
        ..ZSET_READ_FAST
    },
    CommandSpec {
        name: "zdiff",
        arity: -3,
        since: "6.2.0",
        complexity: "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.",
        summary: "Returns the difference between multiple sorted sets.",
        syntax: "numkeys key [key ...] [WITHSCORES]",
        first_key: 0,
        last_key: 0,
        key_step: 0,
        numkeys_index: 1,
        flags: &["readonly", "movablekeys"],
        parse: Some(zsets::zdiff),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zdiffstore",
        arity: -4,
        since: "6.2.0",
        complexity: "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.",
        summary: "Stores the difference of multiple sorted sets in a key.",
        syntax: "destination numkeys key [key ...]",
        parse: Some(zsets::zdiffstore),
        ..ZSET_STORE
    },
    CommandSpec {
        name: "zincrby",
        arity: 4,
        complexity: "O(log(N))",
        summary: "Increments the score of a member in a sorted set.",
        syntax: "key increment member",
        parse: Some(zsets::zincrby),
        ..ZSET_WRITE
    },
    CommandSpec {
        name: "zinter",
        arity: -3,
        since: "6.2.0",
        complexity: "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
        summary: "Returns the intersect of multiple sorted sets.",
        syntax: "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]",
        first_key: 0,
        last_key: 0,
        key_step: 0,
        numkeys_index: 1,
        flags: &["readonly", "movablekeys"],
        parse: Some(zsets::zinter),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zintercard",
        arity: -3,
        since: "7.0.0",
        complexity: "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.",
        summary: "Returns the number of members of the intersect of multiple sorted sets.",
        syntax: "numkeys key [key ...] [LIMIT limit]",
        first_key: 0,
        last_key: 0,
        key_step: 0,
        numkeys_index: 1,
        flags: &["readonly", "movablekeys"],
        parse: Some(zsets::zintercard),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zinterstore",
        arity: -4,
        since: "2.0.0",
        complexity: "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
        summary: "Stores the intersect of multiple sorted sets in a key.",
        parse: Some(zsets::zinterstore),
        ..ZSET_STORE
    },
    CommandSpec {
        name: "zlexcount",
        arity: 4,
        since: "2.8.9",
        complexity: "O(log(N)) with N being the number of elements in the sorted set.",
        summary: "Returns the number of members in a sorted set within a lexicographical range.",
        syntax: "key min max",
        parse: Some(zsets::zlexcount),
        ..ZSET_READ_FAST
    },
    CommandSpec {
        name: "zmpop",
        arity: -4,
        flags: &["write", "movablekeys"],
        since: "7.0.0",
        complexity: "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
        summary: "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.",
        syntax: "numkeys key [key ...] <MIN | MAX> [COUNT count]",
        first_key: 0,
        last_key: 0,
        key_step: 0,
        numkeys_index: 1,
        parse: Some(blocking::zmpop),
        ..ZSET_WRITE_SLOW
    },
    CommandSpec {
        name: "zmscore",
        arity: -3,
        since: "6.2.0",
        complexity: "O(N) where N is the number of members being requested.",
        summary: "Returns the score of one or more members in a sorted set.",
        syntax: "key member [member ...]",
        parse: Some(zsets::zmscore),
        ..ZSET_READ_FAST
    },
    CommandSpec {
        name: "zpopmax",
        arity: -2,
        since: "5.0.0",
        complexity: "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.",
        summary: "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
        syntax: "key [count]",
        parse: Some(zsets::zpopmax),
        ..ZSET_WRITE_FAST
    },
    CommandSpec {
        name: "zpopmin",
        arity: -2,
        since: "5.0.0",
        complexity: "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.",
        summary: "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
        syntax: "key [count]",
        parse: Some(zsets::zpopmin),
        ..ZSET_WRITE_FAST
    },
    CommandSpec {
        name: "zrandmember",
        arity: -2,
        since: "6.2.0",
        complexity: "O(N) where N is the number of members returned",
        summary: "Returns one or more random members from a sorted set.",
        syntax: "key [count [WITHSCORES]]",
        parse: Some(zsets::zrandmember),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zrange",
        arity: -4,
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        summary: "Returns members in a sorted set within a range of indexes.",
        syntax: "key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]",
        parse: Some(zsets::zrange),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zrangebylex",
        arity: -4,
        since: "2.8.9",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        summary: "Returns members in a sorted set within a lexicographical range.",
        syntax: "key min max [LIMIT offset count]",
        parse: Some(zsets::zrangebylex),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zrangebyscore",
        arity: -4,
        since: "1.0.5",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        summary: "Returns members in a sorted set within a range of scores.",
        syntax: "key min max [WITHSCORES] [LIMIT offset count]",
        parse: Some(zsets::zrangebyscore),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zrangestore",
        arity: -5,
        since: "6.2.0",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.",
        summary: "Stores a range of members from sorted set in a key.",
        syntax: "dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]",
        flags: &["write", "denyoom"],
        last_key: 2,
        parse: Some(zsets::zrangestore),
        ..ZSET_WRITE_SLOW
    },
    CommandSpec {
        name: "zrank",
        arity: 3,
        since: "2.0.0",
        complexity: "O(log(N))",
        summary: "Returns the index of a member in a sorted set ordered by ascending scores.",
        syntax: "key member",
        parse: Some(zsets::zrank),
        ..ZSET_READ_FAST
    },
    CommandSpec {
        name: "zrem",
        arity: -3,
        complexity: "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.",
        summary: "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.",
        syntax: "key member [member ...]",
        parse: Some(zsets::zrem),
        ..ZSET_WRITE_FAST
    },
    CommandSpec {
        name: "zremrangebylex",
        arity: 4,
        since: "2.8.9",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
        summary: "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.",
        syntax: "key min max",
        parse: Some(zsets::zremrangebylex),
        ..ZSET_WRITE_SLOW
    },
    CommandSpec {
        name: "zremrangebyrank",
        arity: 4,
        since: "2.0.0",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
        summary: "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.",
        syntax: "key start stop",
        parse: Some(zsets::zremrangebyrank),
        ..ZSET_WRITE_SLOW
    },
    CommandSpec {
        name: "zremrangebyscore",
        arity: 4,
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
        summary: "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.",
        syntax: "key min max",
        parse: Some(zsets::zremrangebyscore),
        ..ZSET_WRITE_SLOW
    },
    CommandSpec {
        name: "zrevrange",
        arity: -4,
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        summary: "Returns members in a sorted set within a range of indexes in reverse order.",
        syntax: "key start stop [WITHSCORES]",
        parse: Some(zsets::zrevrange),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zrevrangebylex",
        arity: -4,
        since: "2.8.9",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        summary: "Returns members in a sorted set within a lexicographical range in reverse order.",
        syntax: "key max min [LIMIT offset count]",
        parse: Some(zsets::zrevrangebylex),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zrevrangebyscore",
        arity: -4,
        since: "2.2.0",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        summary: "Returns members in a sorted set within a range of scores in reverse order.",
        syntax: "key max min [WITHSCORES] [LIMIT offset count]",
        parse: Some(zsets::zrevrangebyscore),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zrevrank",
        arity: 3,
        since: "2.0.0",
        complexity: "O(log(N))",
        summary: "Returns the index of a member in a sorted set ordered by descending scores.",
        syntax: "key member",
        parse: Some(zsets::zrevrank),
        ..ZSET_READ_FAST
    },
    CommandSpec {
        name: "zscan",
        arity: -3,
        since: "2.8.0",
        complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        summary: "Iterates over members and scores of a sorted set.",
        syntax: "key cursor [MATCH pattern] [COUNT count]",
        parse: Some(zsets::zscan),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zscore",
        arity: 3,
        complexity: "O(1)",
        summary: "Returns the score of a member in a sorted set.",
        syntax: "key member",
        parse: Some(zsets::zscore),
        ..ZSET_READ_FAST
    },
    CommandSpec {
        name: "zunion",
        arity: -3,
        since: "6.2.0",
        complexity: "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
        summary: "Returns the union of multiple sorted sets.",
        syntax: "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]",
        first_key: 0,
        last_key: 0,
        key_step: 0,
        numkeys_index: 1,
        flags: &["readonly", "movablekeys"],
        parse: Some(zsets::zunion),
        ..ZSET_READ
    },
    CommandSpec {
        name: "zunionstore",
        arity: -4,
        since: "2.0.0",
        complexity: "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
        summary: "Stores the union of multiple sorted sets in a key.",
        parse: Some(zsets::zunionstore),
        ..ZSET_STORE
    },
];

/// A subcommand of a server-introspection container.
const ADMIN_SUB: CommandSpec = CommandSpec {
    flags: &["admin", "noscript", "loading", "stale"],
    acl_categories: &["@admin", "@slow", "@dangerous"],
    group: "server",
    ..BASE
};
const CONNECTION_SUB: CommandSpec = CommandSpec {
    flags: &["noscript", "loading", "stale"],
    acl_categories: &["@slow", "@connection"],
    group: "connection",
    ..BASE
};
const CLUSTER_SUB: CommandSpec = CommandSpec {
    flags: &["loading", "stale"],
    acl_categories: &["@slow"],
    group: "cluster",
    since: "3.0.0",
    ..BASE
};
const HELP_SUMMARY: &str = "Returns helpful text about the different subcommands.";

static ACL_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "acl|help",
        arity: 2,
        since: "6.0.0",
        summary: HELP_SUMMARY,
        parse: Some(server::help),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "acl|whoami",
        arity: 2,
        since: "6.0.0",
        summary: "Returns the authenticated username of the current connection.",
        parse: Some(server::acl_whoami),
        acl_categories: &["@slow"],
        ..CONNECTION_SUB
    },
];

static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "client|caching",
        arity: 3,
        since: "6.0.0",
        summary: "Says whether the next read is tracked (OPTIN or OPTOUT tracking).",
        syntax: "<YES | NO>",
        parse: Some(server::client_caching),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "client|getname",
        arity: 2,
        since: "2.6.9",
        summary: "Returns the name of the connection.",
        parse: Some(server::client_getname),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "client|getredir",
        arity: 2,
        since: "6.0.0",
        summary: "Returns where tracking invalidations go: -1 off, 0 this connection.",
        parse: Some(server::client_getredir),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "client|help",
        arity: 2,
        flags: &["loading", "stale"],
        since: "5.0.0",
        summary: HELP_SUMMARY,
        parse: Some(server::help),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "client|id",
        arity: 2,
        since: "5.0.0",
        summary: "Returns the unique client ID of the connection.",
        parse: Some(server::client_id),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "client|info",
        arity: 2,
        since: "6.2.0",
        summary: "Returns information about the connection.",
        parse: Some(server::client_info),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "client|list",
        arity: -2,
        flags: &["admin", "noscript", "loading", "stale"],
        since: "2.4.0",
        complexity: "O(N) where N is the number of client connections",
        summary: "Lists open connections.",
        parse: Some(server::client_list),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "client|setinfo",
        arity: 4,
        since: "7.2.0",
        summary: "Sets information specific to the client or connection.",
        syntax: "<LIB-NAME libname | LIB-VER libver>",
        parse: Some(server::client_setinfo),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "client|setname",
        arity: 3,
        since: "2.6.9",
        summary: "Sets the connection name.",
        syntax: "connection-name",
        parse: Some(server::client_setname),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "client|tracking",
        arity: -3,
        since: "6.0.0",
        summary: "Turns client-side caching's invalidation messages on or off.",
        syntax: "<ON | OFF> [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]",
        parse: Some(server::client_tracking),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "client|trackinginfo",
        arity: 2,
        since: "6.2.0",
        summary: "Returns this connection's tracking mode, redirect and prefixes.",
        parse: Some(server::client_trackinginfo),
        ..CONNECTION_SUB
    },
];

static CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "cluster|help",
        arity: 2,
        since: "5.0.0",
        summary: HELP_SUMMARY,
        parse: Some(server::help),
        ..CLUSTER_SUB
    },
    CommandSpec {
        name: "cluster|info",
        arity: 2,
        summary: "Returns information about the state of a node.",
        parse: Some(server::cluster_info),
        ..CLUSTER_SUB
    },
    CommandSpec {
        name: "cluster|keyslot",
        arity: 3,
        complexity: "O(N) where N is the number of bytes in the key",
        summary: "Returns the hash slot for a key.",
        syntax: "key",
        parse: Some(server::cluster_keyslot),
        ..CLUSTER_SUB
    },
    CommandSpec {
        name: "cluster|myid",
        arity: 2,
        summary: "Returns the ID of a node.",
        parse: Some(server::cluster_myid),
        ..CLUSTER_SUB
    },
    CommandSpec {
        name: "cluster|nodes",
        arity: 2,
        complexity: "O(N) where N is the total number of Cluster nodes",
        summary: "Returns the cluster configuration for a node.",
        parse: Some(server::cluster_nodes),
        ..CLUSTER_SUB
    },
    CommandSpec {
        name: "cluster|shards",
        arity: 2,
        since: "7.0.0",
        complexity: "O(N) where N is the total number of cluster nodes",
        summary: "Returns the mapping of cluster slots to shards.",
        parse: Some(server::cluster_shards),
        ..CLUSTER_SUB
    },
    CommandSpec {
        name: "cluster|slots",
        arity: 2,
        complexity: "O(N) where N is the total number of Cluster nodes",
        summary: "Returns the mapping of cluster slots to nodes.",
        parse: Some(server::cluster_slots),
        ..CLUSTER_SUB
    },
];

static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "command|count",
        arity: 2,
        since: "2.8.13",
        summary: "Returns a count of commands.",
        parse: Some(server::command_count),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "command|docs",
        arity: -2,
        since: "7.0.0",
        complexity: "O(N) where N is the number of commands to look up",
        summary: "Returns documentary information about one, multiple or all commands.",
        syntax: "[command-name [command-name ...]]",
        parse: Some(server::command_docs),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "command|getkeys",
        arity: -3,
        since: "2.8.13",
        complexity: "O(N) where N is the number of arguments to the command",
        summary: "Extracts the key names from an arbitrary command.",
        syntax: "command [arg [arg ...]]",
        parse: Some(server::command_getkeys),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "command|help",
        arity: 2,
        since: "5.0.0",
        summary: HELP_SUMMARY,
        parse: Some(server::help),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "command|info",
        arity: -2,
        since: "2.8.13",
        complexity: "O(N) where N is the number of commands to look up",
        summary: "Returns information about one, multiple or all commands.",
        syntax: "[command-name [command-name ...]]",
        parse: Some(server::command_info),
        ..CONNECTION_SUB
    },
    CommandSpec {
        name: "command|list",
        arity: -2,
        since: "7.0.0",
        complexity: "O(N) where N is the total number of Redis commands",
        summary: "Returns a list of command names.",
        parse: Some(server::command_list),
        ..CONNECTION_SUB
    },
];

static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "config|get",
        arity: -3,
        since: "2.0.0",
        complexity: "O(N) when N is the number of configuration parameters provided",
        summary: "Returns the effective values of configuration parameters.",
        syntax: "parameter [parameter ...]",
        parse: Some(server::config_get),
        ..ADMIN_SUB
    },
    CommandSpec {
        name: "config|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow"],
        since: "5.0.0",
        summary: HELP_SUMMARY,
        parse: Some(server::help),
        ..ADMIN_SUB
    },
    CommandSpec {
        name: "config|resetstat",
        arity: 2,
        since: "2.0.0",
        summary: "Resets the server's statistics.",
        parse: Some(server::config_resetstat),
        ..ADMIN_SUB
    },
    CommandSpec {
        name: "config|set",
        arity: -4,
        since: "2.0.0",
        complexity: "O(N) when N is the number of configuration parameters provided",
        summary: "Sets configuration parameters in-flight.",
        syntax: "parameter value [parameter value ...]",
        parse: Some(server::config_set),
        ..ADMIN_SUB
    },
];

/// `OBJECT`'s subcommands (`IDLETIME` and `FREQ` are not kept here).
static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "object|encoding",
        arity: 3,
        since: "2.2.3",
        complexity: "O(1)",
        summary: "Returns the internal encoding of a Redis object.",
        syntax: "key",
        parse: Some(keys::object_encoding),
        ..OBJECT_SUB
    },
    CommandSpec {
        name: "object|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@keyspace", "@slow"],
        since: "6.2.0",
        summary: HELP_SUMMARY,
        parse: Some(server::help),
        ..BASE
    },
    CommandSpec {
        name: "object|refcount",
        arity: 3,
        since: "2.2.3",
        complexity: "O(1)",
        summary: "Returns the reference count of a value of a key.",
        syntax: "key",
        parse: Some(keys::object_refcount),
        ..OBJECT_SUB
    },
];

/// `MEMORY`'s subcommands (`DOCTOR`, `STATS`, `MALLOC-STATS` and `PURGE`
/// describe Redis's allocator and are not kept here; `INFO memory` gives
/// the node's figures).
static MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "memory|help",
        arity: 2,
        flags: &["loading", "stale"],
        acl_categories: &["@slow"],
        group: "server",
        since: "4.0.0",
        summary: HELP_SUMMARY,
        parse: Some(server::help),
        ..BASE
    },
    CommandSpec {
        name: "memory|usage",
        arity: -3,
        group: "server",
        since: "4.0.0",
        complexity: "O(1)",
        summary: "Estimates the memory usage of a key.",
        syntax: "key [SAMPLES count]",
        parse: Some(keys::memory_usage),
        ..OBJECT_SUB
    },
];

/// An `OBJECT` subcommand that reads one key (the key follows the
/// subcommand).
const OBJECT_SUB: CommandSpec = CommandSpec {
    flags: &["readonly"],
    acl_categories: &["@keyspace", "@read", "@slow"],
    group: "generic",
    first_key: 2,
    last_key: 2,
    key_step: 1,
    ..BASE
};

/// The command named `name` (any case), if distcache has it.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    find_in(COMMANDS, name, "")
}

/// The subcommand `name` (any case) of `container`.
pub fn lookup_subcommand(container: &CommandSpec, name: &[u8]) -> Option<&'static CommandSpec> {
    find_in(container.subcommands, name, container.name)
}

fn find_in(
    table: &'static [CommandSpec],
    name: &[u8],
    container: &str,
) -> Option<&'static CommandSpec> {
    let prefix = if container.is_empty() {
        0
    } else {
        container.len() + 1
    };
    table
        .binary_search_by(|spec| {
            let own = &spec.name.as_bytes()[prefix..];
            own.iter()
                .copied()
                .cmp(name.iter().map(u8::to_ascii_lowercase))
        })
        .ok()
        .map(|index| &table[index])
}
