//! The per-connection session: handshakes and connection commands answer
//! exactly as Redis 7 does; data commands are handed to the server.

use bytes::Bytes;
use resp::command::Command;
use resp::{Action, Frame, ServerFacts, Session, Version, encode_to_vec};

fn args(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|word| Bytes::copy_from_slice(word.as_bytes()))
        .collect()
}

fn facts() -> ServerFacts {
    ServerFacts::standard(false, 10_000, 1 << 20)
}

/// The wire bytes of the reply to `words`, in the session's protocol after it.
fn reply_wire(session: &mut Session, words: &[&str]) -> Vec<u8> {
    match session.handle(&args(words), &facts()) {
        Action::Reply(frame) | Action::ReplyAndClose(frame) => {
            encode_to_vec(&frame, session.version())
        }
        Action::Execute(parsed) => panic!("{words:?} went to the server as {:?}", parsed.command),
    }
}

#[test]
fn hello_3_switches_to_resp3_and_answers_a_map() {
    let mut session = Session::new(7, "127.0.0.1:5000".to_owned());
    assert_eq!(session.version(), Version::Resp2);
    let wire = reply_wire(&mut session, &["HELLO", "3"]);
    assert_eq!(session.version(), Version::Resp3);
    assert_eq!(
        wire,
        b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.4.0\r\n$5\r\nproto\r\n:3\r\n\
$2\r\nid\r\n:7\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
            .to_vec()
    );
    // HELLO 2 goes back, and the map becomes a flat array.
    let wire = reply_wire(&mut session, &["hello", "2"]);
    assert_eq!(session.version(), Version::Resp2);
    assert!(wire.starts_with(b"*14\r\n$6\r\nserver\r\n"));
}

#[test]
fn hello_refuses_bad_versions_and_unknown_users_changing_nothing() {
    let mut session = Session::new(1, "peer".to_owned());
    assert_eq!(
        reply_wire(&mut session, &["HELLO", "4"]),
        b"-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        reply_wire(&mut session, &["HELLO", "3", "AUTH", "alice", "secret"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        session.version(),
        Version::Resp2,
        "a refused HELLO changes nothing"
    );
    reply_wire(
        &mut session,
        &["HELLO", "3", "AUTH", "default", "any", "SETNAME", "app"],
    );
    assert_eq!(session.name(), Some(&Bytes::from_static(b"app")));
}

#[test]
fn client_commands_keep_per_connection_state() {
    let mut session = Session::new(42, "10.0.0.1:1234".to_owned());
    assert_eq!(reply_wire(&mut session, &["CLIENT", "GETNAME"]), b"$-1\r\n");
    assert_eq!(
        reply_wire(&mut session, &["client", "setname", "worker-1"]),
        b"+OK\r\n"
    );
    assert_eq!(
        reply_wire(&mut session, &["CLIENT", "GETNAME"]),
        b"$8\r\nworker-1\r\n"
    );
    assert_eq!(reply_wire(&mut session, &["CLIENT", "ID"]), b":42\r\n");
    assert_eq!(
        reply_wire(&mut session, &["CLIENT", "SETINFO", "lib-name", "redis-py"]),
        b"+OK\r\n"
    );
    assert_eq!(
        session.info_line(),
        "id=42 addr=10.0.0.1:1234 name=worker-1 db=0 resp=2 lib-name=redis-py lib-ver="
    );
    assert_eq!(
        reply_wire(&mut session, &["CLIENT", "MAINT_NOTIFICATIONS", "ON"]),
        b"-ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(reply_wire(&mut session, &["RESET"]), b"+RESET\r\n");
    assert_eq!(session.name(), None);
    assert_eq!(session.id(), 42, "RESET keeps the connection's id");
}

#[test]
fn select_quit_ping_echo() {
    let mut session = Session::new(1, "peer".to_owned());
    assert_eq!(reply_wire(&mut session, &["SELECT", "0"]), b"+OK\r\n");
    assert_eq!(
        reply_wire(&mut session, &["SELECT", "1"]),
        b"-ERR DB index is out of range\r\n"
    );
    assert_eq!(reply_wire(&mut session, &["PING"]), b"+PONG\r\n");
    assert_eq!(reply_wire(&mut session, &["ping", "hi"]), b"$2\r\nhi\r\n");
    assert_eq!(reply_wire(&mut session, &["ECHO", "x"]), b"$1\r\nx\r\n");
    assert_eq!(
        session.handle(&args(&["QUIT"]), &facts()),
        Action::ReplyAndClose(Frame::ok())
    );
    let cluster = ServerFacts::standard(true, 10, 10);
    assert_eq!(
        session.handle(&args(&["SELECT", "1"]), &cluster),
        Action::Reply(Frame::error("ERR SELECT is not allowed in cluster mode"))
    );
}

#[test]
fn config_get_answers_what_redis_benchmark_asks() {
    let mut session = Session::new(1, "peer".to_owned());
    assert_eq!(
        reply_wire(&mut session, &["CONFIG", "GET", "save"]),
        b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
    );
    assert_eq!(
        reply_wire(&mut session, &["CONFIG", "GET", "appendonly"]),
        b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    );
    assert_eq!(
        reply_wire(&mut session, &["CONFIG", "GET", "nothing*"]),
        b"*0\r\n"
    );
    assert_eq!(
        reply_wire(&mut session, &["CONFIG", "SET", "save", "60 1"]),
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'save'\r\n"
    );
    // `save ""` (no RDB snapshots) is what is already so: accepted.
    assert_eq!(
        reply_wire(&mut session, &["CONFIG", "SET", "save", ""]),
        b"+OK\r\n"
    );
    // Redis's encoding thresholds are accepted and change nothing; one
    // unknown parameter refuses the whole command.
    assert_eq!(
        reply_wire(
            &mut session,
            &[
                "CONFIG",
                "SET",
                "zset-max-ziplist-entries",
                "128",
                "ZSET-MAX-LISTPACK-VALUE",
                "64"
            ]
        ),
        b"+OK\r\n"
    );
    assert_eq!(
        reply_wire(
            &mut session,
            &[
                "CONFIG",
                "SET",
                "zset-max-ziplist-entries",
                "128",
                "save",
                "60"
            ]
        ),
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'save'\r\n"
    );
    assert_eq!(
        reply_wire(
            &mut session,
            &["CONFIG", "SET", "list-max-ziplist-size", ""]
        ),
        b"+OK\r\n"
    );
}

#[test]
fn errors_are_replies_and_data_commands_go_to_the_server() {
    let mut session = Session::new(1, "peer".to_owned());
    assert_eq!(
        reply_wire(&mut session, &["GET"]),
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        reply_wire(&mut session, &["CLUSTER", "KEYSLOT", "foo"]),
        b":12182\r\n"
    );
    let Action::Execute(parsed) = session.handle(&args(&["get", "k"]), &facts()) else {
        panic!("GET is the server's");
    };
    assert_eq!(
        parsed.command,
        Command::Get {
            key: Bytes::from_static(b"k")
        }
    );
    assert_eq!(parsed.spec.name, "get");
}

/// Facts of a server with a password for `default` and a restricted user.
fn secured() -> ServerFacts {
    let acl = resp::Acl::from_config(
        Some("s3cret"),
        &["user reader on >r ~cache:* +@read -@dangerous +ping".to_owned()],
    )
    .expect("valid users");
    facts().with_acl(std::sync::Arc::new(acl))
}

fn reply(session: &mut Session, facts: &ServerFacts, words: &[&str]) -> Frame {
    match session.handle(&args(words), facts) {
        Action::Reply(frame) | Action::ReplyAndClose(frame) => frame,
        Action::Execute(parsed) => Frame::simple(&format!("EXECUTE {}", parsed.spec.name)),
    }
}

#[test]
fn a_password_is_required_before_any_command() {
    let facts = secured();
    let mut session = Session::for_acl(3, "peer".to_owned(), &facts.acl);
    let noauth = Frame::error("NOAUTH Authentication required.");
    assert_eq!(reply(&mut session, &facts, &["GET", "k"]), noauth);
    assert_eq!(reply(&mut session, &facts, &["PING"]), noauth);
    assert_eq!(reply(&mut session, &facts, &["ACL", "WHOAMI"]), noauth);
    // An unknown command and a wrong arity are answered first, as Redis.
    assert_eq!(
        reply(&mut session, &facts, &["GET"]),
        Frame::error("ERR wrong number of arguments for 'get' command")
    );
    let wrong = Frame::error("WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(reply(&mut session, &facts, &["AUTH", "nope"]), wrong);
    assert_eq!(
        reply(&mut session, &facts, &["AUTH", "nobody", "s3cret"]),
        wrong
    );
    assert_eq!(reply(&mut session, &facts, &["GET", "k"]), noauth);
    // HELLO without AUTH says how; HELLO with a wrong AUTH keeps RESP2.
    let Frame::Error(text) = reply(&mut session, &facts, &["HELLO", "3"]) else {
        panic!("HELLO before AUTH must fail");
    };
    assert!(text.starts_with(b"NOAUTH HELLO must be called"));
    assert_eq!(
        reply(
            &mut session,
            &facts,
            &["HELLO", "3", "AUTH", "default", "x"]
        ),
        wrong
    );
    assert_eq!(session.version(), Version::Resp2);
    assert_eq!(
        reply(&mut session, &facts, &["AUTH", "s3cret"]),
        Frame::ok()
    );
    assert_eq!(
        reply(&mut session, &facts, &["GET", "k"]),
        Frame::simple("EXECUTE get")
    );
    assert_eq!(
        reply(&mut session, &facts, &["ACL", "WHOAMI"]),
        Frame::bulk("default")
    );
    // RESET forgets the authentication.
    assert_eq!(
        reply(&mut session, &facts, &["RESET"]),
        Frame::simple("RESET")
    );
    assert_eq!(reply(&mut session, &facts, &["GET", "k"]), noauth);
    // HELLO ... AUTH authenticates and switches protocol at once.
    let Frame::Map(_) = reply(&mut session, &facts, &["HELLO", "3", "AUTH", "reader", "r"]) else {
        panic!("HELLO AUTH with the right password answers the map");
    };
    assert_eq!(session.version(), Version::Resp3);
    // ACL WHOAMI is @slow, which reader's rules do not allow.
    assert_eq!(
        reply(&mut session, &facts, &["ACL", "WHOAMI"]),
        Frame::error("NOPERM User reader has no permissions to run the 'acl|whoami' command")
    );
}

#[test]
fn acl_users_are_denied_commands_and_keys_with_noperm() {
    let facts = secured();
    let mut session = Session::for_acl(4, "peer".to_owned(), &facts.acl);
    assert_eq!(
        reply(&mut session, &facts, &["AUTH", "reader", "r"]),
        Frame::ok()
    );
    assert_eq!(
        reply(&mut session, &facts, &["GET", "cache:1"]),
        Frame::simple("EXECUTE get")
    );
    assert_eq!(
        reply(&mut session, &facts, &["SET", "cache:1", "v"]),
        Frame::error("NOPERM User reader has no permissions to run the 'set' command")
    );
    assert_eq!(
        reply(&mut session, &facts, &["GET", "secret"]),
        Frame::error("NOPERM No permissions to access a key")
    );
    assert_eq!(
        reply(&mut session, &facts, &["CONFIG", "GET", "save"]),
        Frame::error("NOPERM User reader has no permissions to run the 'config|get' command")
    );
    assert_eq!(
        reply(&mut session, &facts, &["PING"]),
        Frame::simple("PONG")
    );
}

#[test]
fn auth_with_only_a_password_needs_one_configured() {
    let facts = facts();
    let mut session = Session::for_acl(5, "peer".to_owned(), &facts.acl);
    let Frame::Error(text) = reply(&mut session, &facts, &["AUTH", "x"]) else {
        panic!("AUTH without a configured password fails");
    };
    assert!(text.starts_with(b"ERR AUTH <password> called without any password configured"));
    // With no password, everything runs as default.
    assert_eq!(
        reply(&mut session, &facts, &["ACL", "WHOAMI"]),
        Frame::bulk("default")
    );
    assert_eq!(
        reply(&mut session, &facts, &["AUTH", "a", "b", "c"]),
        Frame::error("ERR syntax error")
    );
}

fn tracking_reply(session: &mut Session, words: &[&str]) -> Frame {
    match session.handle(&args(words), &facts()) {
        Action::Reply(frame) => frame,
        other => panic!("{words:?}: expected a reply, got {other:?}"),
    }
}

fn is_error_containing(frame: &Frame, text: &str) -> bool {
    matches!(frame, Frame::Error(message) if String::from_utf8_lossy(message).contains(text))
}

#[test]
fn client_tracking_needs_resp3_and_refuses_redirect_changing_nothing() {
    let mut session = Session::new(7, "127.0.0.1:5000".into());
    let refused = tracking_reply(&mut session, &["CLIENT", "TRACKING", "ON"]);
    assert!(is_error_containing(&refused, "RESP3"), "{refused:?}");
    assert_eq!(session.tracking(), None);
    tracking_reply(&mut session, &["HELLO", "3"]);
    let refused = tracking_reply(&mut session, &["CLIENT", "TRACKING", "ON", "REDIRECT", "5"]);
    assert!(is_error_containing(&refused, "REDIRECT"), "{refused:?}");
    assert_eq!(session.tracking(), None);
    assert_eq!(
        tracking_reply(&mut session, &["CLIENT", "GETREDIR"]),
        Frame::Integer(-1)
    );
    assert_eq!(
        tracking_reply(&mut session, &["CLIENT", "TRACKING", "ON"]),
        Frame::ok()
    );
    assert!(session.tracking().is_some());
    assert_eq!(
        tracking_reply(&mut session, &["CLIENT", "GETREDIR"]),
        Frame::Integer(0)
    );
    assert_eq!(
        tracking_reply(&mut session, &["CLIENT", "TRACKING", "OFF"]),
        Frame::ok()
    );
    assert_eq!(session.tracking(), None);
}

#[test]
fn client_tracking_checks_its_options_as_redis_does() {
    let mut session = Session::new(7, "127.0.0.1:5000".into());
    tracking_reply(&mut session, &["HELLO", "3"]);
    for (words, text) in [
        (
            &["CLIENT", "TRACKING", "ON", "PREFIX", "a"][..],
            "requires BCAST",
        ),
        (
            &["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"][..],
            "both OPTIN mode and OPTOUT mode",
        ),
        (
            &["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"][..],
            "not compatible with BCAST",
        ),
        (
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a",
            ][..],
            "overlaps",
        ),
        (&["CLIENT", "TRACKING", "MAYBE"][..], "Syntax error"),
        (&["CLIENT", "TRACKING", "ON", "LOUD"][..], "Syntax error"),
    ] {
        let refused = tracking_reply(&mut session, words);
        assert!(
            is_error_containing(&refused, text),
            "{words:?}: {refused:?}"
        );
        assert_eq!(session.tracking(), None, "{words:?} changed nothing");
    }
    let ok = tracking_reply(
        &mut session,
        &[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "item:", "NOLOOP",
        ],
    );
    assert_eq!(ok, Frame::ok());
    let info = tracking_reply(&mut session, &["CLIENT", "TRACKINGINFO"]);
    let Frame::Map(fields) = info else {
        panic!("TRACKINGINFO is a map: {info:?}");
    };
    assert_eq!(
        fields,
        vec![
            (
                Frame::bulk("flags"),
                Frame::Set(vec![
                    Frame::bulk("on"),
                    Frame::bulk("bcast"),
                    Frame::bulk("noloop")
                ])
            ),
            (Frame::bulk("redirect"), Frame::Integer(0)),
            (
                Frame::bulk("prefixes"),
                Frame::Array(vec![Frame::bulk("user:"), Frame::bulk("item:")])
            ),
        ]
    );
    // BCAST tracks by prefix, not by what was read.
    assert!(matches!(
        session.handle(&args(&["GET", "user:1"]), &facts()),
        Action::Execute(_)
    ));
    assert!(!session.tracks_last_read());
    let refused = tracking_reply(&mut session, &["CLIENT", "TRACKING", "ON"]);
    assert!(is_error_containing(&refused, "switch BCAST"), "{refused:?}");
}

#[test]
fn optin_tracks_only_the_read_after_caching_yes() {
    let mut session = Session::new(7, "127.0.0.1:5000".into());
    tracking_reply(&mut session, &["HELLO", "3"]);
    let refused = tracking_reply(&mut session, &["CLIENT", "CACHING", "YES"]);
    assert!(
        is_error_containing(&refused, "OPTIN or OPTOUT"),
        "{refused:?}"
    );
    tracking_reply(&mut session, &["CLIENT", "TRACKING", "ON", "OPTIN"]);
    let read = |session: &mut Session, words: &[&str]| {
        assert!(matches!(
            session.handle(&args(words), &facts()),
            Action::Execute(_)
        ));
        session.tracks_last_read()
    };
    assert!(!read(&mut session, &["GET", "a"]));
    assert_eq!(
        tracking_reply(&mut session, &["CLIENT", "CACHING", "YES"]),
        Frame::ok()
    );
    assert!(read(&mut session, &["GET", "a"]));
    assert!(!read(&mut session, &["GET", "a"]), "only the next command");
    let refused = tracking_reply(&mut session, &["CLIENT", "CACHING", "NO"]);
    assert!(is_error_containing(&refused, "OPTOUT mode"), "{refused:?}");
    // A write is never tracked.
    tracking_reply(&mut session, &["CLIENT", "CACHING", "YES"]);
    assert!(!read(&mut session, &["SET", "a", "1"]));
    // OPTOUT: every read but the one after CACHING NO.
    tracking_reply(&mut session, &["CLIENT", "TRACKING", "OFF"]);
    tracking_reply(&mut session, &["CLIENT", "TRACKING", "ON", "OPTOUT"]);
    assert!(read(&mut session, &["GET", "a"]));
    tracking_reply(&mut session, &["CLIENT", "CACHING", "NO"]);
    assert!(!read(&mut session, &["GET", "a"]));
    assert!(read(&mut session, &["GET", "a"]));
    // RESET turns tracking off.
    assert_eq!(
        tracking_reply(&mut session, &["RESET"]),
        Frame::simple("RESET")
    );
    assert_eq!(session.tracking(), None);
}

#[test]
fn tracking_on_again_keeps_the_mode_rules_of_redis() {
    let mut session = Session::new(7, "127.0.0.1:5000".into());
    tracking_reply(&mut session, &["HELLO", "3"]);
    tracking_reply(&mut session, &["CLIENT", "TRACKING", "ON", "OPTIN"]);
    let refused = tracking_reply(&mut session, &["CLIENT", "TRACKING", "ON", "OPTOUT"]);
    assert!(
        is_error_containing(&refused, "switch OPTIN/OPTOUT"),
        "{refused:?}"
    );
    // ON without OPTIN/OPTOUT clears them, as Redis.
    assert_eq!(
        tracking_reply(&mut session, &["CLIENT", "TRACKING", "ON"]),
        Frame::ok()
    );
    assert!(!session.tracking().is_some_and(|tracking| tracking.optin));
    // BCAST again adds prefixes, refusing one that overlaps those it has.
    tracking_reply(&mut session, &["CLIENT", "TRACKING", "OFF"]);
    tracking_reply(
        &mut session,
        &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a:"],
    );
    let refused = tracking_reply(
        &mut session,
        &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a:b"],
    );
    assert!(is_error_containing(&refused, "overlaps"), "{refused:?}");
    assert_eq!(
        tracking_reply(
            &mut session,
            &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "b:"]
        ),
        Frame::ok()
    );
    let prefixes = session.tracking().map(|tracking| tracking.prefixes.clone());
    assert_eq!(prefixes, Some(vec![Bytes::from("a:"), Bytes::from("b:")]));
    // Back to RESP2: pushes cannot be sent, so tracking ends.
    tracking_reply(&mut session, &["HELLO", "2"]);
    assert_eq!(session.tracking(), None);
}
