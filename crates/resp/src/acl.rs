//! Users, passwords and permissions with Redis's ACL semantics, without IO.
//!
//! An [`Acl`] is a set of named [`User`]s. Each user is built from rule
//! words as Redis's `ACL SETUSER` and ACL files write them:
//!
//! | rule | meaning |
//! | --- | --- |
//! | `on` / `off` | the user may / may not authenticate |
//! | `>password` / `<password` | adds / removes a password (kept as its SHA-256 digest) |
//! | `#<64 hex>` / `!<64 hex>` | adds / removes a password given as its SHA-256 digest |
//! | `nopass` | any password authenticates (removes the passwords) |
//! | `resetpass` | no password and not `nopass`: nobody can authenticate as the user |
//! | `+cmd` / `-cmd` | allows / denies a command (`+config` all its subcommands, `+config\|get` one) |
//! | `+@cat` / `-@cat` | allows / denies every command of an ACL category (`@read`, `@dangerous`, `@all`) |
//! | `allcommands` / `nocommands` | `+@all` / `-@all` |
//! | `~pattern` | allows keys matching a glob pattern; `allkeys` is `~*`, `resetkeys` forgets them |
//! | `&pattern`, `allchannels`, `resetchannels` | accepted and ignored: distcache has no Pub/Sub |
//! | `reset` | `resetpass resetkeys off -@all` |
//!
//! Rules apply left to right, so `+@all -@dangerous +flushdb` allows
//! everything but the dangerous commands except `FLUSHDB`. A new user
//! starts `off`, with no password, no command and no key.
//!
//! The `default` user is the one a connection starts as. With no
//! `requirepass` it is `on nopass ~* &* +@all`, and every connection is
//! authenticated from the start (Redis without a password). With
//! [`Acl::with_requirepass`] it gets that password, and a connection must
//! authenticate first.
//!
//! Checks, as Redis makes them: commands flagged `no_auth` (`AUTH`,
//! `HELLO`, `QUIT`, `RESET`) run for anyone; every other command needs an
//! authenticated user ([`NOAUTH`]) whose rules allow the command and each
//! of its keys ([`Denied`], replied as `-NOPERM ...`). Passwords are only
//! ever held as digests, and no `Debug` output shows them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::command::{COMMANDS, CommandSpec, glob_match, lookup};

/// The name of the user a connection starts as.
pub const DEFAULT_USER: &str = "default";

/// The reply to a command from a connection not yet authenticated.
pub const NOAUTH: &str = "NOAUTH Authentication required.";

/// The reply to a failed `AUTH` or `HELLO ... AUTH`.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Longest user name accepted.
pub const MAX_USER_NAME_BYTES: usize = 128;
/// Most users one ACL holds.
pub const MAX_USERS: usize = 1024;
/// Most passwords and most key patterns one user holds.
pub const MAX_PER_USER: usize = 64;

/// Redis's ACL categories: the table's, plus those of commands distcache
/// does not have (rules naming them are valid and match nothing here).
const KNOWN_CATEGORIES: &[&str] = &[
    "@admin",
    "@all",
    "@bitmap",
    "@blocking",
    "@connection",
    "@dangerous",
    "@fast",
    "@geo",
    "@hash",
    "@hyperloglog",
    "@keyspace",
    "@list",
    "@pubsub",
    "@read",
    "@scripting",
    "@set",
    "@slow",
    "@sortedset",
    "@stream",
    "@string",
    "@transaction",
    "@write",
];

/// A rule that cannot be applied; the ACL is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// One rule word is wrong (Redis's `ACL SETUSER` wording).
    #[error("Error in ACL SETUSER modifier '{rule}': {reason}")]
    Rule {
        /// The rule as written (a password rule is shown as `>***`).
        rule: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A line of the user list that is not `user <name> <rules...>`.
    #[error("{0}")]
    Line(String),
}

/// Why an authenticated user may not run a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The command (full name, `config|get` for a subcommand) is not allowed.
    Command {
        /// The user's name.
        user: String,
        /// The command's full lowercase name.
        command: String,
    },
    /// A key of the command matches none of the user's patterns.
    Key,
}

impl fmt::Display for Denied {
    /// Redis 7.2's text after `NOPERM `.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Command { user, command } => write!(
                formatter,
                "User {user} has no permissions to run the '{command}' command"
            ),
            Denied::Key => formatter.write_str("No permissions to access a key"),
        }
    }
}

impl Denied {
    /// The whole error line (`NOPERM ...`).
    pub fn reply_text(&self) -> String {
        format!("NOPERM {self}")
    }
}

/// One user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    name: String,
    enabled: bool,
    nopass: bool,
    passwords: Vec<[u8; 32]>,
    /// Full names of the allowed commands (`get`, `config|get`).
    commands: BTreeSet<&'static str>,
    all_keys: bool,
    key_patterns: Vec<Bytes>,
}

impl fmt::Debug for User {
    /// Never shows passwords or their digests.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("User")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("nopass", &self.nopass)
            .field("passwords", &self.passwords.len())
            .field("commands", &self.commands.len())
            .field("all_keys", &self.all_keys)
            .field("key_patterns", &self.key_patterns)
            .finish()
    }
}

/// Every command and subcommand of the table.
fn every_spec() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS
        .iter()
        .flat_map(|spec| std::iter::once(spec).chain(spec.subcommands.iter()))
}

/// The SHA-256 digest of a password.
pub fn hash_password(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

fn parse_hex_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (index, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// Compares two digests in time independent of where they differ.
fn digests_equal(left: &[u8; 32], right: &[u8; 32]) -> bool {
    left.iter()
        .zip(right.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

impl User {
    /// A new user as Redis creates one: `off`, no password, nothing allowed.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_owned(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            commands: BTreeSet::new(),
            all_keys: false,
            key_patterns: Vec::new(),
        }
    }

    /// Redis's default user without a password: `on nopass ~* &* +@all`.
    pub fn unrestricted_default() -> User {
        let mut user = User::new(DEFAULT_USER);
        user.enabled = true;
        user.nopass = true;
        user.all_keys = true;
        user.commands = every_spec().map(|spec| spec.name).collect();
        user
    }

    /// The user's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the user may authenticate (`on`).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether any password authenticates the user (`nopass`).
    pub fn is_nopass(&self) -> bool {
        self.nopass
    }

    /// Whether `password` authenticates this user (an `off` user never
    /// authenticates).
    pub fn accepts(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let digest = hash_password(password);
        // Check every stored digest, so the time does not tell which matched.
        self.passwords.iter().fold(false, |found, stored| {
            found | digests_equal(stored, &digest)
        })
    }

    /// Applies one rule word (see the module docs).
    ///
    /// # Errors
    ///
    /// An unknown rule, command or category, a malformed digest, or a
    /// bound exceeded; the user is unchanged.
    pub fn apply(&mut self, rule: &str) -> Result<(), AclError> {
        let error = |reason| AclError::Rule {
            rule: redact(rule),
            reason,
        };
        let lower = rule.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => {
                self.all_keys = true;
                self.key_patterns.clear();
            }
            "resetkeys" => {
                self.all_keys = false;
                self.key_patterns.clear();
            }
            "allcommands" => self.set_category("@all", true),
            "nocommands" => self.set_category("@all", false),
            "allchannels" | "resetchannels" => {}
            "reset" => {
                self.enabled = false;
                self.nopass = false;
                self.passwords.clear();
                self.all_keys = false;
                self.key_patterns.clear();
                self.commands.clear();
            }
            _ => {
                if let Some(password) = rule.strip_prefix('>') {
                    self.add_password(hash_password(password.as_bytes()), rule)?;
                } else if let Some(password) = rule.strip_prefix('<') {
                    let digest = hash_password(password.as_bytes());
                    self.remove_password(&digest, rule)?;
                } else if let Some(hex) = rule.strip_prefix('#') {
                    let digest = parse_hex_digest(hex).ok_or_else(|| {
                        error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
                    })?;
                    self.add_password(digest, rule)?;
                } else if let Some(hex) = rule.strip_prefix('!') {
                    let digest = parse_hex_digest(hex).ok_or_else(|| {
                        error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
                    })?;
                    self.remove_password(&digest, rule)?;
                } else if let Some(pattern) = rule.strip_prefix('~') {
                    if self.all_keys {
                        // Redis refuses a pattern after allkeys as redundant.
                        return Err(error(
                            "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
                        ));
                    }
                    if pattern == "*" {
                        self.all_keys = true;
                        self.key_patterns.clear();
                    } else {
                        if self.key_patterns.len() >= MAX_PER_USER {
                            return Err(error("too many key patterns for one user"));
                        }
                        self.key_patterns
                            .push(Bytes::copy_from_slice(pattern.as_bytes()));
                    }
                } else if rule.starts_with('%') {
                    return Err(error(
                        "read/write key permissions (%R~, %W~) are not supported by distcache; use ~pattern",
                    ));
                } else if rule.starts_with('&') {
                    // Channel patterns: no Pub/Sub here, nothing to allow.
                } else if let Some(name) = lower.strip_prefix('+') {
                    self.set_command_rule(name, true, rule)?;
                } else if let Some(name) = lower.strip_prefix('-') {
                    self.set_command_rule(name, false, rule)?;
                } else {
                    return Err(error("Syntax error"));
                }
            }
        }
        Ok(())
    }

    fn add_password(&mut self, digest: [u8; 32], rule: &str) -> Result<(), AclError> {
        self.nopass = false;
        if self.passwords.contains(&digest) {
            return Ok(());
        }
        if self.passwords.len() >= MAX_PER_USER {
            return Err(AclError::Rule {
                rule: redact(rule),
                reason: "too many passwords for one user",
            });
        }
        self.passwords.push(digest);
        Ok(())
    }

    fn remove_password(&mut self, digest: &[u8; 32], rule: &str) -> Result<(), AclError> {
        let before = self.passwords.len();
        self.passwords.retain(|stored| stored != digest);
        if self.passwords.len() == before {
            return Err(AclError::Rule {
                rule: redact(rule),
                reason: "no such password",
            });
        }
        Ok(())
    }

    fn set_category(&mut self, category: &str, allow: bool) {
        for spec in every_spec() {
            if category == "@all" || spec.acl_categories.contains(&category) {
                if allow {
                    self.commands.insert(spec.name);
                } else {
                    self.commands.remove(spec.name);
                }
            }
        }
    }

    fn set_command_rule(&mut self, name: &str, allow: bool, rule: &str) -> Result<(), AclError> {
        let unknown = || AclError::Rule {
            rule: rule.to_owned(),
            reason: "Unknown command or category name in ACL",
        };
        if name.starts_with('@') {
            if !KNOWN_CATEGORIES.contains(&name) {
                return Err(unknown());
            }
            self.set_category(name, allow);
            return Ok(());
        }
        let (container, subcommand) = match name.split_once('|') {
            Some((container, subcommand)) => (container, Some(subcommand)),
            None => (name, None),
        };
        let spec = lookup(container.as_bytes()).ok_or_else(unknown)?;
        let mut names: Vec<&'static str> = Vec::new();
        match subcommand {
            Some(subcommand) => {
                let sub = spec
                    .subcommands
                    .iter()
                    .find(|sub| sub.short_name() == subcommand)
                    .ok_or_else(unknown)?;
                names.push(sub.name);
            }
            None => {
                names.push(spec.name);
                names.extend(spec.subcommands.iter().map(|sub| sub.name));
            }
        }
        for name in names {
            if allow {
                self.commands.insert(name);
            } else {
                self.commands.remove(name);
            }
        }
        Ok(())
    }

    /// Whether the user may run `spec` (commands flagged `no_auth` always).
    pub fn may_run(&self, spec: &CommandSpec) -> bool {
        spec.has_flag("no_auth") || self.commands.contains(spec.name)
    }

    /// Whether every command of ACL category `category` is allowed.
    pub fn has_category(&self, category: &str) -> bool {
        every_spec()
            .filter(|spec| spec.acl_categories.contains(&category))
            .all(|spec| self.commands.contains(spec.name))
    }

    /// Whether `key` matches one of the user's key patterns.
    pub fn may_access_key(&self, key: &[u8]) -> bool {
        self.all_keys
            || self
                .key_patterns
                .iter()
                .any(|pattern| glob_match(pattern, key))
    }

    /// Checks a request (`args[0]` is the name) resolved to `spec`: the
    /// command, then each key the table locates in `args`.
    ///
    /// # Errors
    ///
    /// The first permission missing.
    pub fn check(&self, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Denied> {
        if self.all_keys {
            // Every key is allowed: the command alone decides, and its
            // keys need not be located (every command runs this).
            return self.check_keys(spec, std::iter::empty());
        }
        let keys = spec
            .key_indexes_in(args)
            .into_iter()
            .filter_map(|index| args.get(index));
        self.check_keys(spec, keys.map(|key| key.as_ref()))
    }

    /// Checks a command by spec with the keys it will touch (the HTTP and
    /// gRPC front ends name the command their operation amounts to).
    ///
    /// # Errors
    ///
    /// The first permission missing.
    pub fn check_keys<'a>(
        &self,
        spec: &CommandSpec,
        mut keys: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(), Denied> {
        if !self.may_run(spec) {
            return Err(Denied::Command {
                user: self.name.clone(),
                command: spec.name.to_owned(),
            });
        }
        if keys.all(|key| self.may_access_key(key)) {
            Ok(())
        } else {
            Err(Denied::Key)
        }
    }

    /// [`User::check_keys`] by command name (`get`, `config|get`).
    ///
    /// # Errors
    ///
    /// The command is not in the table or a permission is missing.
    pub fn check_named<'a>(
        &self,
        command: &str,
        keys: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(), Denied> {
        let spec = every_spec().find(|spec| spec.name == command);
        match spec {
            Some(spec) => self.check_keys(spec, keys),
            None => Err(Denied::Command {
                user: self.name.clone(),
                command: command.to_owned(),
            }),
        }
    }
}

/// A password rule shown without its password.
fn redact(rule: &str) -> String {
    match rule.chars().next() {
        Some(first @ ('>' | '<')) => format!("{first}***"),
        _ => rule.to_owned(),
    }
}

/// The users of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl {
    users: BTreeMap<String, Arc<User>>,
}

impl Default for Acl {
    /// Only the default user, without a password (Redis's default).
    fn default() -> Acl {
        let mut users = BTreeMap::new();
        users.insert(
            DEFAULT_USER.to_owned(),
            Arc::new(User::unrestricted_default()),
        );
        Acl { users }
    }
}

impl Acl {
    /// The default ACL with the default user's password set to `password`
    /// (Redis's `requirepass`).
    pub fn with_requirepass(password: &str) -> Acl {
        let mut user = User::unrestricted_default();
        user.nopass = false;
        user.passwords = vec![hash_password(password.as_bytes())];
        let mut acl = Acl::default();
        acl.users.insert(DEFAULT_USER.to_owned(), Arc::new(user));
        acl
    }

    /// A node's ACL from its configuration: `requirepass` (if any) for the
    /// default user, then each line of `users` (`user <name> <rules...>`,
    /// as in a Redis ACL file), in order; a line for an existing user
    /// (`default` too) applies its rules on top.
    ///
    /// # Errors
    ///
    /// The first line or rule that is wrong, with its line number.
    pub fn from_config(requirepass: Option<&str>, users: &[String]) -> Result<Acl, AclError> {
        let mut acl = match requirepass {
            Some(password) => Acl::with_requirepass(password),
            None => Acl::default(),
        };
        for (index, line) in users.iter().enumerate() {
            acl.apply_line(line)
                .map_err(|error| AclError::Line(format!("users[{index}]: {error}")))?;
        }
        Ok(acl)
    }

    /// Applies one `user <name> <rules...>` line.
    ///
    /// # Errors
    ///
    /// Not such a line, a bad name, or a bad rule; the ACL is unchanged.
    pub fn apply_line(&mut self, line: &str) -> Result<(), AclError> {
        let mut words = line.split_whitespace();
        if words.next() != Some("user") {
            return Err(AclError::Line(
                "a user line starts with `user <name>`".into(),
            ));
        }
        let Some(name) = words.next() else {
            return Err(AclError::Line("a user line names its user".into()));
        };
        let rules: Vec<&str> = words.collect();
        self.set_user(name, &rules)
    }

    /// Creates or changes user `name` by `rules` (Redis's `ACL SETUSER`).
    ///
    /// # Errors
    ///
    /// A bad name or rule, or too many users; the ACL is unchanged.
    pub fn set_user(&mut self, name: &str, rules: &[&str]) -> Result<(), AclError> {
        if name.is_empty()
            || name.len() > MAX_USER_NAME_BYTES
            || !name.bytes().all(|byte| byte.is_ascii_graphic())
        {
            return Err(AclError::Line(format!(
                "user names are 1 to {MAX_USER_NAME_BYTES} printable characters without spaces"
            )));
        }
        let mut user = match self.users.get(name) {
            Some(existing) => User::clone(existing),
            None => {
                if self.users.len() >= MAX_USERS {
                    return Err(AclError::Line(format!("at most {MAX_USERS} users")));
                }
                User::new(name)
            }
        };
        for rule in rules {
            user.apply(rule)?;
        }
        self.users.insert(name.to_owned(), Arc::new(user));
        Ok(())
    }

    /// The user `name`, if any.
    pub fn user(&self, name: &str) -> Option<&Arc<User>> {
        self.users.get(name)
    }

    /// The users' names, sorted.
    pub fn user_names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// Whether a connection must authenticate before its first command:
    /// the default user is off or has no `nopass`.
    pub fn requires_auth(&self) -> bool {
        self.initial_user().is_none()
    }

    /// The user a new connection is authenticated as: the default user
    /// when it is `on nopass`, else none.
    pub fn initial_user(&self) -> Option<Arc<User>> {
        self.users
            .get(DEFAULT_USER)
            .filter(|user| user.enabled && user.nopass)
            .cloned()
    }

    /// The user that `password` authenticates as `user`; `None` for an
    /// unknown or disabled user or a wrong password (one answer for all,
    /// as Redis gives).
    pub fn authenticate(&self, user: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let name = std::str::from_utf8(user).ok()?;
        let found = self.users.get(name)?;
        found.accepts(password).then(|| Arc::clone(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|word| Bytes::copy_from_slice(word.as_bytes()))
            .collect()
    }

    fn check(user: &User, words: &[&str]) -> Result<(), Denied> {
        let request = args(words);
        let spec = crate::command::resolve(&request).expect("a known command");
        user.check(spec, &request)
    }

    #[test]
    fn the_default_acl_lets_everyone_in() {
        let acl = Acl::default();
        assert!(!acl.requires_auth());
        let user = acl.initial_user().expect("default user");
        assert_eq!(user.name(), "default");
        assert_eq!(check(&user, &["flushall"]), Ok(()));
        assert_eq!(check(&user, &["get", "any"]), Ok(()));
    }

    #[test]
    fn requirepass_needs_the_password() {
        let acl = Acl::with_requirepass("s3cret");
        assert!(acl.requires_auth());
        assert!(acl.initial_user().is_none());
        assert!(acl.authenticate(b"default", b"wrong").is_none());
        assert!(acl.authenticate(b"nobody", b"s3cret").is_none());
        let user = acl
            .authenticate(b"default", b"s3cret")
            .expect("right password");
        assert_eq!(check(&user, &["set", "k", "v"]), Ok(()));
    }

    #[test]
    fn categories_commands_and_keys() {
        let mut acl = Acl::with_requirepass("admin");
        acl.apply_line("user reader on >r ~cache:* +@read -@dangerous +ping")
            .expect("valid line");
        let reader = acl.authenticate(b"reader", b"r").expect("reader");
        assert_eq!(check(&reader, &["get", "cache:1"]), Ok(()));
        assert_eq!(check(&reader, &["ping"]), Ok(()));
        assert_eq!(check(&reader, &["get", "other"]), Err(Denied::Key));
        assert_eq!(
            check(&reader, &["set", "cache:1", "v"]),
            Err(Denied::Command {
                user: "reader".into(),
                command: "set".into()
            })
        );
        // KEYS is @read but also @dangerous, removed after.
        assert!(matches!(
            check(&reader, &["keys", "*"]),
            Err(Denied::Command { .. })
        ));
        // MGET checks every key.
        assert_eq!(check(&reader, &["mget", "cache:1", "x"]), Err(Denied::Key));
        // SINTERCARD's keys are the ones its count names, every one checked.
        assert_eq!(
            check(
                &reader,
                &["sintercard", "2", "cache:1", "cache:2", "LIMIT", "1"]
            ),
            Ok(())
        );
        assert_eq!(
            check(&reader, &["sintercard", "2", "cache:1", "x"]),
            Err(Denied::Key)
        );
        // no_auth commands run for anyone.
        assert_eq!(check(&reader, &["hello", "3"]), Ok(()));
        assert_eq!(
            Denied::Command {
                user: "reader".into(),
                command: "set".into()
            }
            .reply_text(),
            "NOPERM User reader has no permissions to run the 'set' command"
        );
        assert_eq!(
            Denied::Key.reply_text(),
            "NOPERM No permissions to access a key"
        );
    }

    #[test]
    fn subcommands_and_order_of_rules() {
        let mut acl = Acl::default();
        acl.apply_line("user ops on nopass allkeys +@all -config +config|get")
            .expect("valid");
        let ops = acl.authenticate(b"ops", b"anything").expect("nopass");
        assert_eq!(check(&ops, &["config", "get", "save"]), Ok(()));
        assert!(check(&ops, &["config", "set", "save", ""]).is_err());
        assert_eq!(check(&ops, &["set", "k", "v"]), Ok(()));
    }

    #[test]
    fn off_users_and_removed_passwords_do_not_authenticate() {
        let mut acl = Acl::default();
        acl.apply_line("user bob off >pw allcommands allkeys")
            .expect("valid");
        assert!(acl.authenticate(b"bob", b"pw").is_none());
        acl.apply_line("user bob on").expect("valid");
        assert!(acl.authenticate(b"bob", b"pw").is_some());
        acl.apply_line("user bob <pw").expect("valid");
        assert!(acl.authenticate(b"bob", b"pw").is_none());
        let digest: String = hash_password(b"hashed")
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        acl.apply_line(&format!("user bob #{digest}"))
            .expect("valid");
        assert!(acl.authenticate(b"bob", b"hashed").is_some());
    }

    #[test]
    fn bad_rules_are_refused_and_change_nothing() {
        let mut acl = Acl::default();
        acl.apply_line("user carol on >pw +get").expect("valid");
        let before = acl.clone();
        for line in [
            "user carol +nosuchcommand",
            "user carol +@nosuchcategory",
            "user carol #abc",
            "user carol bogus",
            "user carol %R~x",
            "carol on",
            "user",
        ] {
            assert!(acl.apply_line(line).is_err(), "{line} must be refused");
            assert_eq!(acl, before, "{line} changed the ACL");
        }
        let error = acl
            .apply_line("user carol >secret bogus")
            .expect_err("bad rule");
        assert!(
            error.to_string().contains("'bogus': Syntax error"),
            "{error}"
        );
    }

    #[test]
    fn passwords_never_show_in_debug_or_errors() {
        let mut acl = Acl::default();
        acl.apply_line("user dave on >hunter2 +get").expect("valid");
        let shown = format!("{acl:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let digest: String = hash_password(b"hunter2")
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert!(!shown.contains(&digest[..16]), "{shown}");
        let error = User::new("x")
            .apply("<hunter2")
            .expect_err("no such password");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
