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
        b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:3\r\n\
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
