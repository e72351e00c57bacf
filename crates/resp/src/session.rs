//! One connection's protocol state, without IO: what a request means for
//! the connection itself, and the replies that need no data.
//!
//! The listener feeds each decoded request to [`Session::handle`]. The
//! session answers what concerns only the connection or the command table
//! (`HELLO`, `CLIENT SETNAME/GETNAME/ID/INFO/SETINFO`, `SELECT`, `QUIT`,
//! `RESET`, `PING`, `ECHO`, `COMMAND ...`, `CONFIG GET`, `HELP`,
//! `CLUSTER KEYSLOT`, every parse error) and hands everything else back as
//! [`Action::Execute`] for the server to run against the data.

use std::sync::Arc;

use bytes::Bytes;

use crate::acl::{self, Acl, User};
use crate::command::{
    self, ClientInfoAttribute, Command, CommandError, Parsed, TrackingOptions, glob_match,
    introspection, key_slot,
};
use crate::frame::{Frame, Version};

/// The Redis version distcache answers as (`HELLO`, `INFO server`). 7.4
/// because redis-py turns its client-side cache (`CLIENT TRACKING`) on
/// only for Redis 7.4 or later; the commands 7.4 added (hash field
/// expiry: `HEXPIRE` ...) are not here and answer unknown command.
pub const REDIS_VERSION: &str = "7.4.0";

/// What the server tells every session.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    /// Cluster mode: clients are redirected with `-MOVED`; `SELECT` is
    /// refused as Redis Cluster refuses it.
    pub cluster_mode: bool,
    /// What `CONFIG GET` reports, as (parameter, value). Read-only.
    pub config: Vec<(String, String)>,
    /// The users and what they may do (default: Redis's passwordless
    /// default user).
    pub acl: Arc<Acl>,
}

impl ServerFacts {
    /// The parameters clients ask for (redis-benchmark asks `save` and
    /// `appendonly`), with values that say what distcache is: no RDB or
    /// AOF (durability is the Raft log), one database.
    pub fn standard(cluster_mode: bool, max_clients: usize, max_value_bytes: usize) -> Self {
        let config = [
            ("appendonly", "no".to_owned()),
            (
                "cluster-enabled",
                if cluster_mode { "yes" } else { "no" }.to_owned(),
            ),
            ("databases", "1".to_owned()),
            ("maxclients", max_clients.to_string()),
            ("proto-max-bulk-len", max_value_bytes.to_string()),
            ("save", String::new()),
        ];
        ServerFacts {
            cluster_mode,
            config: config
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            acl: Arc::new(Acl::default()),
        }
    }

    /// These facts with `acl` as the users.
    pub fn with_acl(mut self, acl: Arc<Acl>) -> Self {
        self.acl = acl;
        self
    }
}

/// What the listener does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this reply.
    Reply(Frame),
    /// Send this reply, then close the connection (`QUIT`).
    ReplyAndClose(Frame),
    /// Run the command against the data (or the server's state) and send
    /// its reply.
    Execute(Parsed),
}

/// A connection's state.
#[derive(Debug, Clone)]
pub struct Session {
    id: u64,
    peer: String,
    version: Version,
    name: Option<Bytes>,
    library_name: Option<Bytes>,
    library_version: Option<Bytes>,
    /// Who the connection is authenticated as; `None`: nobody yet.
    user: Option<Arc<User>>,
    /// Client-side caching (`CLIENT TRACKING ON`); `None`: off.
    tracking: Option<TrackingOptions>,
    /// `CLIENT CACHING YES|NO`, for the next command only.
    caching_next: Option<bool>,
    /// Whether the keys the last [`Action::Execute`] reads are to be
    /// tracked (see [`Session::tracks_last_read`]).
    track_last: bool,
    /// `READONLY`'s staleness bound in ms (until `READWRITE` or `RESET`).
    replica_reads: Option<u64>,
}

impl Session {
    /// A new connection with a server-unique `id` from `peer` (`ip:port`),
    /// authenticated as a default user without a password (a server
    /// without ACL; see [`Session::for_acl`]).
    pub fn new(id: u64, peer: String) -> Self {
        Session::with_user(id, peer, Some(Arc::new(User::unrestricted_default())))
    }

    /// A new connection of a server whose users are `acl`: authenticated
    /// as the default user if it is `on nopass`, else not yet.
    pub fn for_acl(id: u64, peer: String, acl: &Acl) -> Self {
        Session::with_user(id, peer, acl.initial_user())
    }

    fn with_user(id: u64, peer: String, user: Option<Arc<User>>) -> Self {
        Session {
            id,
            peer,
            version: Version::Resp2,
            name: None,
            library_name: None,
            library_version: None,
            user,
            tracking: None,
            caching_next: None,
            track_last: false,
            replica_reads: None,
        }
    }

    /// Client-side caching's options, if `CLIENT TRACKING` is on.
    pub fn tracking(&self) -> Option<&TrackingOptions> {
        self.tracking.as_ref()
    }

    /// Whether the server must remember the keys the last command handed
    /// out as [`Action::Execute`] reads, to tell this connection when they
    /// change: tracking is on in the default mode, the command is
    /// read-only, and `OPTIN`/`OPTOUT` with `CLIENT CACHING` allow it.
    pub fn tracks_last_read(&self) -> bool {
        self.track_last
    }

    /// The user the connection is authenticated as, if any.
    pub fn user(&self) -> Option<&Arc<User>> {
        self.user.as_ref()
    }

    /// `Some(ms)` while `READONLY` is on: this connection's reads may be
    /// served by any replica of the owning group, which spreads a hot
    /// key's reads over the group. With `ms = 0` (plain `READONLY`) they
    /// are linearizable all the same; `READONLY MAXSTALENESS ms` lets an
    /// answer be up to `ms` old (it reflects every write acknowledged more
    /// than `ms` before the read began). `None` at first, after
    /// `READWRITE` and after `RESET`.
    pub fn replica_reads(&self) -> Option<u64> {
        self.replica_reads
    }

    /// The protocol the replies must be written in.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The connection's id (`CLIENT ID`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The connection's name (`CLIENT SETNAME`), if any.
    pub fn name(&self) -> Option<&Bytes> {
        self.name.as_ref()
    }

    /// The `CLIENT INFO` / `CLIENT LIST` line of this connection.
    pub fn info_line(&self) -> String {
        let text = |value: &Option<Bytes>| {
            value
                .as_ref()
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default()
        };
        let protocol = if self.version == Version::Resp3 { 3 } else { 2 };
        format!(
            "id={} addr={} name={} db=0 resp={} lib-name={} lib-ver={}",
            self.id,
            self.peer,
            text(&self.name),
            protocol,
            text(&self.library_name),
            text(&self.library_version)
        )
    }

    /// Decides what to do with one request (`args[0]` is the command).
    ///
    /// In Redis's order: an unknown command or a wrong arity is refused
    /// first; then a connection not authenticated may run only the
    /// `no_auth` commands (`-NOAUTH`); then the user's rules must allow
    /// the command and its keys (`-NOPERM`); then the arguments are parsed.
    pub fn handle(&mut self, args: &[Bytes], facts: &ServerFacts) -> Action {
        let spec = match command::resolve(args) {
            Ok(spec) => spec,
            Err(error) => return Action::Reply(error_reply(&error)),
        };
        if !spec.has_flag("no_auth") {
            let Some(user) = &self.user else {
                return Action::Reply(Frame::error(acl::NOAUTH));
            };
            if let Err(denied) = user.check(spec, args) {
                return Action::Reply(Frame::error(&denied.reply_text()));
            }
        }
        // `CLIENT CACHING` concerns the command after it only.
        let caching = if spec.name == "client|caching" {
            None
        } else {
            self.caching_next.take()
        };
        self.track_last = self.tracking.as_ref().is_some_and(|tracking| {
            !tracking.bcast
                && spec.has_flag("readonly")
                && if tracking.optin {
                    caching == Some(true)
                } else if tracking.optout {
                    caching != Some(false)
                } else {
                    true
                }
        });
        match command::parse(args) {
            Ok(parsed) => self.handle_parsed(parsed, facts),
            Err(error) => {
                self.track_last = false;
                Action::Reply(error_reply(&error))
            }
        }
    }

    /// `CLIENT TRACKING`: invalidations come as RESP3 pushes on this
    /// connection. `REDIRECT` (to a RESP2 connection's `SUBSCRIBE`) is
    /// refused: distcache has no pub/sub.
    fn set_tracking(
        &mut self,
        on: bool,
        options: &TrackingOptions,
        redirect: Option<i64>,
    ) -> Frame {
        if !on {
            self.tracking = None;
            self.caching_next = None;
            return Frame::ok();
        }
        if redirect.is_some() {
            return Frame::error(TRACKING_REDIRECT);
        }
        if self.version != Version::Resp3 {
            return Frame::error(TRACKING_NEEDS_RESP3);
        }
        let mut options = options.clone();
        if let Some(current) = &self.tracking {
            if current.bcast != options.bcast {
                return Frame::error(TRACKING_SWITCH_BCAST);
            }
            // As Redis: OPTIN to OPTOUT (or back) needs OFF first; ON
            // without either clears them.
            if (options.optin && current.optout) || (options.optout && current.optin) {
                return Frame::error(TRACKING_SWITCH_OPT);
            }
            // BCAST again adds its prefixes to those it has.
            for prefix in &options.prefixes {
                if let Some(other) = current.prefixes.iter().find(|other| {
                    *other != prefix && (prefix.starts_with(other) || other.starts_with(prefix))
                }) {
                    return error_reply(&CommandError::OverlappingPrefixes(
                        prefix.clone(),
                        other.clone(),
                    ));
                }
            }
            let mut prefixes = current.prefixes.clone();
            for prefix in options.prefixes {
                if !prefixes.contains(&prefix) {
                    prefixes.push(prefix);
                }
            }
            options.prefixes = prefixes;
        }
        self.tracking = Some(options);
        Frame::ok()
    }

    fn set_caching(&mut self, yes: bool) -> Frame {
        match &self.tracking {
            Some(tracking) if yes && tracking.optin => {}
            Some(tracking) if !yes && tracking.optout => {}
            Some(tracking) if tracking.optin || tracking.optout => {
                return Frame::error(if yes {
                    "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
                } else {
                    "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
                });
            }
            _ => {
                return Frame::error(
                    "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
                );
            }
        }
        self.caching_next = Some(yes);
        Frame::ok()
    }

    /// `CLIENT TRACKINGINFO`'s map, as Redis lays it out.
    fn tracking_info(&self) -> Frame {
        let mut flags = Vec::new();
        let (redirect, prefixes) = match &self.tracking {
            None => {
                flags.push(Frame::bulk("off"));
                (-1, Vec::new())
            }
            Some(tracking) => {
                flags.push(Frame::bulk("on"));
                for (set, name) in [
                    (tracking.bcast, "bcast"),
                    (tracking.optin, "optin"),
                    (tracking.optout, "optout"),
                    (self.caching_next == Some(true), "caching-yes"),
                    (self.caching_next == Some(false), "caching-no"),
                    (tracking.noloop, "noloop"),
                ] {
                    if set {
                        flags.push(Frame::bulk(name));
                    }
                }
                let prefixes = tracking
                    .prefixes
                    .iter()
                    .map(|prefix| Frame::BulkString(prefix.clone()))
                    .collect();
                (0, prefixes)
            }
        };
        Frame::Map(vec![
            (Frame::bulk("flags"), Frame::Set(flags)),
            (Frame::bulk("redirect"), Frame::Integer(redirect)),
            (Frame::bulk("prefixes"), Frame::Array(prefixes)),
        ])
    }

    fn handle_parsed(&mut self, parsed: Parsed, facts: &ServerFacts) -> Action {
        let reply = match &parsed.command {
            Command::Ping { message: None } => Frame::simple("PONG"),
            Command::Ping {
                message: Some(message),
            } => Frame::BulkString(message.clone()),
            Command::Echo { message } => Frame::BulkString(message.clone()),
            Command::Hello {
                protocol,
                auth,
                client_name,
            } => {
                if let Some((user, password)) = auth {
                    match facts.acl.authenticate(user, password) {
                        Some(user) => self.user = Some(user),
                        None => return Action::Reply(Frame::error(acl::WRONGPASS)),
                    }
                }
                if self.user.is_none() {
                    return Action::Reply(Frame::error(HELLO_NOAUTH));
                }
                if let Some(protocol) = protocol {
                    self.version = if *protocol == 3 {
                        Version::Resp3
                    } else {
                        // Invalidations are RESP3 pushes only: tracking
                        // ends (the client drops what it cached).
                        self.tracking = None;
                        self.caching_next = None;
                        Version::Resp2
                    };
                }
                if let Some(name) = client_name {
                    self.name = (!name.is_empty()).then(|| name.clone());
                }
                self.hello_reply(facts)
            }
            Command::Select { index } => {
                if *index == 0 {
                    Frame::ok()
                } else if facts.cluster_mode {
                    Frame::error("ERR SELECT is not allowed in cluster mode")
                } else {
                    error_reply(&CommandError::DbIndexOutOfRange)
                }
            }
            Command::Quit => return Action::ReplyAndClose(Frame::ok()),
            Command::Reset => {
                // As Redis: back to the default user, authenticated only
                // if it needs no password.
                *self = Session::for_acl(self.id, std::mem::take(&mut self.peer), &facts.acl);
                Frame::simple("RESET")
            }
            Command::Auth { username, password } => {
                if username.is_none()
                    && facts
                        .acl
                        .user(acl::DEFAULT_USER)
                        .is_none_or(|user| user.is_nopass())
                {
                    return Action::Reply(Frame::error(AUTH_WITHOUT_PASSWORD));
                }
                let username = username
                    .clone()
                    .unwrap_or_else(|| Bytes::from_static(acl::DEFAULT_USER.as_bytes()));
                match facts.acl.authenticate(&username, password) {
                    Some(user) => {
                        self.user = Some(user);
                        Frame::ok()
                    }
                    None => Frame::error(acl::WRONGPASS),
                }
            }
            Command::AclWhoami => match &self.user {
                Some(user) => Frame::bulk(user.name()),
                None => Frame::error(acl::NOAUTH),
            },
            Command::ClientSetName { name } => {
                self.name = (!name.is_empty()).then(|| name.clone());
                Frame::ok()
            }
            Command::ClientGetName => self.name.clone().map_or(Frame::Null, Frame::BulkString),
            Command::ClientId => Frame::Integer(i64::try_from(self.id).unwrap_or(i64::MAX)),
            Command::ClientInfo => Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from(format!("{}\n", self.info_line())),
            },
            Command::ClientSetInfo { attribute, value } => {
                let value = (!value.is_empty()).then(|| value.clone());
                match attribute {
                    ClientInfoAttribute::LibraryName => self.library_name = value,
                    ClientInfoAttribute::LibraryVersion => self.library_version = value,
                }
                Frame::ok()
            }
            Command::ClientTracking {
                on,
                options,
                redirect,
            } => self.set_tracking(*on, options, *redirect),
            Command::ClientCaching { yes } => self.set_caching(*yes),
            Command::ClientTrackingInfo => self.tracking_info(),
            Command::ClientGetRedir => Frame::Integer(if self.tracking.is_some() { 0 } else { -1 }),
            Command::CommandAll => introspection::info_reply(&[]),
            Command::CommandCount => introspection::count_reply(),
            Command::CommandList => introspection::list_reply(),
            Command::CommandInfo { names } => introspection::info_reply(names),
            Command::CommandDocs { names } => introspection::docs_reply(names),
            Command::CommandGetKeys { args } => match introspection::getkeys_reply(args) {
                Ok(frame) => frame,
                Err(error) => error_reply(&error),
            },
            Command::Help { container } => introspection::help_reply(container),
            Command::ConfigGet { patterns } => config_get_reply(patterns, facts),
            Command::ConfigSet { pairs } => {
                let settable = |(name, value): &(Bytes, Bytes)| {
                    is_encoding_knob(name) || is_no_save(name, value)
                };
                match pairs.iter().find(|pair| !settable(pair)) {
                    // Only Redis's memory-encoding thresholds: they change
                    // no answer in Redis, and distcache has one
                    // representation per type, so there is nothing to set.
                    // Or `save ""`: no snapshots to disk, which is already
                    // so (`CONFIG GET save` answers "").
                    None => Frame::ok(),
                    Some((name, _)) => {
                        error_reply(&CommandError::ConfigSetUnsupported(name.clone()))
                    }
                }
            }
            Command::ClusterKeySlot { key } => Frame::Integer(i64::from(key_slot(key))),
            Command::ClusterNoop => Frame::ok(),
            Command::ReplicaReads(bound) => {
                self.replica_reads = *bound;
                Frame::ok()
            }
            _ => return Action::Execute(parsed),
        };
        Action::Reply(reply)
    }

    /// `HELLO`'s map, as Redis 7 lays it out.
    fn hello_reply(&self, facts: &ServerFacts) -> Frame {
        let protocol = if self.version == Version::Resp3 { 3 } else { 2 };
        Frame::Map(vec![
            (Frame::bulk("server"), Frame::bulk("redis")),
            (Frame::bulk("version"), Frame::bulk(REDIS_VERSION)),
            (Frame::bulk("proto"), Frame::Integer(protocol)),
            (
                Frame::bulk("id"),
                Frame::Integer(i64::try_from(self.id).unwrap_or(i64::MAX)),
            ),
            (
                Frame::bulk("mode"),
                Frame::bulk(if facts.cluster_mode {
                    "cluster"
                } else {
                    "standalone"
                }),
            ),
            (Frame::bulk("role"), Frame::bulk("master")),
            (Frame::bulk("modules"), Frame::Array(Vec::new())),
        ])
    }
}

/// `CLIENT TRACKING ON REDIRECT id`.
const TRACKING_REDIRECT: &str = "ERR CLIENT TRACKING REDIRECT is not supported: distcache has no SUBSCRIBE for __redis__:invalidate; switch to RESP3 (HELLO 3), whose invalidations come on the connection itself";

/// `CLIENT TRACKING ON` on a RESP2 connection.
const TRACKING_NEEDS_RESP3: &str = "ERR client-side caching here needs RESP3 (invalidations are push messages): send HELLO 3 first";

/// `CLIENT TRACKING ON` switching BCAST while on (Redis 7's words).
const TRACKING_SWITCH_BCAST: &str = "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.";

/// `CLIENT TRACKING ON` switching OPTIN/OPTOUT while on (Redis 7's words).
const TRACKING_SWITCH_OPT: &str = "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.";

/// `HELLO` without `AUTH` on a connection not authenticated (Redis 7).
const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

/// `AUTH password` when the default user has no password (Redis 7).
const AUTH_WITHOUT_PASSWORD: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";

/// A command error as a reply frame.
/// Redis's thresholds between a type's compact and full encodings
/// (`zset-max-listpack-entries 128`, ...): accepted by `CONFIG SET`
/// whatever the value and ignored (Redis's test suites set them before
/// every encoding's run, and set back what `CONFIG GET` gave, which here is
/// nothing; the answers are the same either way).
fn is_encoding_knob(name: &[u8]) -> bool {
    const KNOBS: &[&str] = &[
        "hash-max-listpack-entries",
        "hash-max-listpack-value",
        "hash-max-ziplist-entries",
        "hash-max-ziplist-value",
        "list-compress-depth",
        "list-max-listpack-size",
        "list-max-ziplist-size",
        "set-max-intset-entries",
        "zset-max-listpack-entries",
        "zset-max-listpack-value",
        "zset-max-ziplist-entries",
        "zset-max-ziplist-value",
    ];
    KNOBS
        .iter()
        .any(|knob| name.eq_ignore_ascii_case(knob.as_bytes()))
}

/// `CONFIG SET save ""`: turn off Redis's RDB snapshots (the Redis suite's
/// units with `overrides {save ""}` ask it first). distcache writes no RDB
/// files, so it changes nothing; any other `save` value is refused.
fn is_no_save(name: &[u8], value: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"save") && value.is_empty()
}

pub fn error_reply(error: &CommandError) -> Frame {
    Frame::error(&error.to_string())
}

/// `CONFIG GET pattern ...`: every parameter matching any pattern
/// (case-insensitively, as Redis), once, as a map.
fn config_get_reply(patterns: &[Bytes], facts: &ServerFacts) -> Frame {
    let pairs = facts
        .config
        .iter()
        .filter(|(name, _)| {
            patterns
                .iter()
                .any(|pattern| glob_match(&pattern.to_ascii_lowercase(), name.as_bytes()))
        })
        .map(|(name, value)| (Frame::bulk(name), Frame::bulk(value)))
        .collect();
    Frame::Map(pairs)
}
