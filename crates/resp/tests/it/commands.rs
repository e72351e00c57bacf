//! The command layer: typed parsing and Redis 7's exact error strings.

use bytes::Bytes;
use resp::command::{
    self, COMMANDS, Command, CommandError, ExpireCondition, ExpireTime, GetExExpiry, SetCondition,
    SetExpiry, TimeUnit, glob_match, introspection, key_slot,
};
use resp::{Frame, Version, encode_to_vec};

fn args(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|word| Bytes::copy_from_slice(word.as_bytes()))
        .collect()
}

fn parse(words: &[&str]) -> Result<Command, CommandError> {
    command::parse(&args(words)).map(|parsed| parsed.command)
}

fn error_text(words: &[&str]) -> String {
    match parse(words) {
        Ok(command) => panic!("{words:?} parsed as {command:?}, expected an error"),
        Err(error) => error.to_string(),
    }
}

fn key(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[test]
fn the_table_is_sorted_unique_and_complete() {
    for table in std::iter::once(COMMANDS).chain(COMMANDS.iter().map(|spec| spec.subcommands)) {
        for pair in table.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} must sort before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }
    for spec in COMMANDS {
        assert!(
            spec.parse.is_some() || !spec.subcommands.is_empty(),
            "{} has neither a parser nor subcommands",
            spec.name
        );
        assert!(!spec.summary.is_empty(), "{} has no summary", spec.name);
        for sub in spec.subcommands {
            assert!(
                sub.name.starts_with(&format!("{}|", spec.name)),
                "{} is misnamed",
                sub.name
            );
            assert!(sub.parse.is_some(), "{} has no parser", sub.name);
        }
    }
}

#[test]
fn the_issues_commands_are_all_there() {
    let wanted = "get set setnx setex psetex getset getdel getex mget mset msetnx append strlen \
        getrange setrange incr decr incrby decrby incrbyfloat lcs del unlink exists type expire \
        pexpire expireat pexpireat ttl pttl expiretime pexpiretime persist rename renamenx copy \
        keys scan randomkey dbsize flushdb flushall ping echo info command config time cluster \
        hello client select quit reset";
    for name in wanted.split_whitespace() {
        assert!(
            command::lookup(name.as_bytes()).is_some(),
            "{name} is missing from the table"
        );
    }
}

#[test]
fn names_match_in_any_case() {
    assert_eq!(parse(&["gEt", "k"]), Ok(Command::Get { key: key("k") }));
    assert_eq!(
        parse(&["CONFIG", "gEt", "save"]),
        Ok(Command::ConfigGet {
            patterns: args(&["save"])
        })
    );
}

#[test]
fn unknown_commands_preview_their_arguments_as_redis() {
    assert_eq!(
        error_text(&["FOO", "a", "b"]),
        "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        error_text(&["foo"]),
        "ERR unknown command 'foo', with args beginning with: "
    );
    let long = "x".repeat(200);
    let text = error_text(&["foo", &long, "next"]);
    assert_eq!(
        text,
        format!(
            "ERR unknown command 'foo', with args beginning with: '{}' ",
            "x".repeat(128)
        )
    );
    assert_eq!(
        error_text(&["CONFIG", "nope"]),
        "ERR unknown subcommand 'nope'. Try CONFIG HELP."
    );
}

#[test]
fn arity_errors_name_the_command_as_redis() {
    assert_eq!(
        error_text(&["GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        error_text(&["get", "a", "b"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        error_text(&["MSET", "a", "1", "b"]),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        error_text(&["config"]),
        "ERR wrong number of arguments for 'config' command"
    );
    assert_eq!(
        error_text(&["config", "get"]),
        "ERR wrong number of arguments for 'config|get' command"
    );
    assert_eq!(
        error_text(&["ping", "a", "b"]),
        "ERR wrong number of arguments for 'ping' command"
    );
}

#[test]
fn set_options_parse_as_redis() {
    assert_eq!(
        parse(&["SET", "k", "v", "nx", "GET", "px", "1500"]),
        Ok(Command::Set {
            key: key("k"),
            value: key("v"),
            condition: SetCondition::IfAbsent,
            expiry: SetExpiry::At(ExpireTime {
                milliseconds: 1500,
                relative: true
            }),
            get: true,
        })
    );
    assert_eq!(
        parse(&["set", "k", "v", "EXAT", "100", "XX"]),
        Ok(Command::Set {
            key: key("k"),
            value: key("v"),
            condition: SetCondition::IfPresent,
            expiry: SetExpiry::At(ExpireTime {
                milliseconds: 100_000,
                relative: false
            }),
            get: false,
        })
    );
    assert!(matches!(
        parse(&["set", "k", "v", "KEEPTTL"]),
        Ok(Command::Set {
            expiry: SetExpiry::Keep,
            ..
        })
    ));
    assert!(matches!(
        parse(&["set", "k", "v", "EX", "1", "EX", "2"]),
        Ok(Command::Set { .. })
    ));
    for bad in [
        &["set", "k", "v", "NX", "XX"][..],
        &["set", "k", "v", "EX", "10", "PX", "10"],
        &["set", "k", "v", "EX", "10", "KEEPTTL"],
        &["set", "k", "v", "KEEPTTL", "EX", "10"],
        &["set", "k", "v", "EX"],
        &["set", "k", "v", "PERSIST"],
        &["set", "k", "v", "foo"],
    ] {
        assert_eq!(error_text(bad), "ERR syntax error", "{bad:?}");
    }
    assert_eq!(
        error_text(&["set", "k", "v", "EX", "0"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        error_text(&["set", "k", "v", "PX", "-5"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        error_text(&["set", "k", "v", "EX", "9223372036854775807"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        error_text(&["set", "k", "v", "EX", "1.5"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        error_text(&["setex", "k", "0", "v"]),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        error_text(&["psetex", "k", "-1", "v"]),
        "ERR invalid expire time in 'psetex' command"
    );
    assert_eq!(
        error_text(&["getex", "k", "EX", "-1"]),
        "ERR invalid expire time in 'getex' command"
    );
    assert_eq!(
        parse(&["getex", "k", "persist"]),
        Ok(Command::GetEx {
            key: key("k"),
            expiry: GetExExpiry::Persist
        })
    );
    assert_eq!(
        error_text(&["getex", "k", "persist", "ex", "1"]),
        "ERR syntax error"
    );
}

#[test]
fn integers_follow_redis_string2ll() {
    assert_eq!(
        parse(&["incrby", "k", "-9223372036854775808"]),
        Ok(Command::IncrBy {
            key: key("k"),
            delta: i64::MIN
        })
    );
    for bad in [
        "9223372036854775808",
        "01",
        "+1",
        " 1",
        "1 ",
        "",
        "-0",
        "1e3",
        "0x10",
    ] {
        assert_eq!(
            error_text(&["incrby", "k", bad]),
            "ERR value is not an integer or out of range",
            "INCRBY k {bad:?}"
        );
    }
    assert_eq!(
        error_text(&["decrby", "k", "-9223372036854775808"]),
        "ERR decrement would overflow"
    );
    assert_eq!(
        parse(&["decr", "k"]),
        Ok(Command::IncrBy {
            key: key("k"),
            delta: -1
        })
    );
    assert_eq!(
        error_text(&["incrbyfloat", "k", "abc"]),
        "ERR value is not a valid float"
    );
    assert_eq!(
        error_text(&["incrbyfloat", "k", "nan"]),
        "ERR value is not a valid float"
    );
    assert_eq!(
        parse(&["incrbyfloat", "k", "1.5e2"]),
        Ok(Command::IncrByFloat {
            key: key("k"),
            delta: 150.0
        })
    );
    assert_eq!(
        error_text(&["setrange", "k", "-1", "v"]),
        "ERR offset is out of range"
    );
    assert_eq!(
        error_text(&["getrange", "k", "a", "1"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn expire_options_follow_redis_7() {
    assert_eq!(
        parse(&["EXPIRE", "k", "10", "xx", "GT"]),
        Ok(Command::Expire {
            key: key("k"),
            time: ExpireTime {
                milliseconds: 10_000,
                relative: true
            },
            condition: ExpireCondition {
                if_has_ttl: true,
                if_greater: true,
                ..Default::default()
            },
        })
    );
    assert_eq!(
        parse(&["pexpireat", "k", "-5"]),
        Ok(Command::Expire {
            key: key("k"),
            time: ExpireTime {
                milliseconds: -5,
                relative: false
            },
            condition: ExpireCondition::default(),
        })
    );
    assert_eq!(
        error_text(&["expire", "k", "10", "NX", "XX"]),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        error_text(&["expire", "k", "10", "GT", "LT"]),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        error_text(&["expire", "k", "10", "foo"]),
        "ERR Unsupported option foo"
    );
    assert_eq!(
        error_text(&["expire", "k", "9223372036854775807"]),
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(
        error_text(&["expire", "k", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        parse(&["pexpiretime", "k"]),
        Ok(Command::Ttl {
            key: key("k"),
            unit: TimeUnit::Milliseconds,
            absolute: true
        })
    );
}

#[test]
fn expire_deadlines_refuse_overflow() {
    let time = ExpireTime {
        milliseconds: i64::MAX - 10,
        relative: true,
    };
    assert_eq!(time.deadline_ms(11), None);
    assert_eq!(time.deadline_ms(10), Some(i64::MAX));
    assert_eq!(
        ExpireTime {
            milliseconds: 5,
            relative: false
        }
        .deadline_ms(1_000),
        Some(5)
    );
}

#[test]
fn key_and_server_commands_parse() {
    assert!(matches!(
        parse(&["scan", "0", "MATCH", "a*", "COUNT", "10", "TYPE", "string"]),
        Ok(Command::Scan { cursor: 0, .. })
    ));
    assert_eq!(error_text(&["scan", "abc"]), "ERR invalid cursor");
    assert_eq!(error_text(&["scan", "0", "COUNT", "0"]), "ERR syntax error");
    assert_eq!(error_text(&["scan", "0", "COUNT"]), "ERR syntax error");
    assert_eq!(
        error_text(&["copy", "a", "b", "DB", "1"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        parse(&["copy", "a", "b", "REPLACE", "db", "0"]),
        Ok(Command::Copy {
            source: key("a"),
            destination: key("b"),
            replace: true
        })
    );
    assert_eq!(error_text(&["flushdb", "now"]), "ERR syntax error");
    assert_eq!(
        parse(&["FLUSHALL", "ASYNC"]),
        Ok(Command::FlushAll { asynchronous: true })
    );
    assert_eq!(
        error_text(&["lcs", "a", "b", "LEN", "IDX"]),
        "ERR If you want both the length and indexes, please just use IDX."
    );
    assert_eq!(
        error_text(&["select", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(parse(&["select", "0"]), Ok(Command::Select { index: 0 }));
}

#[test]
fn handshakes_parse_as_redis() {
    assert_eq!(
        parse(&["HELLO", "3", "SETNAME", "app", "AUTH", "u", "p"]),
        Ok(Command::Hello {
            protocol: Some(3),
            auth: Some((key("u"), key("p"))),
            client_name: Some(key("app"))
        })
    );
    assert_eq!(
        parse(&["hello"]),
        Ok(Command::Hello {
            protocol: None,
            auth: None,
            client_name: None
        })
    );
    assert_eq!(
        error_text(&["HELLO", "4"]),
        "NOPROTO unsupported protocol version"
    );
    assert_eq!(
        error_text(&["HELLO", "x"]),
        "ERR Protocol version is not an integer or out of range"
    );
    assert_eq!(
        error_text(&["HELLO", "3", "FOO"]),
        "ERR Syntax error in HELLO option 'FOO'"
    );
    assert_eq!(
        error_text(&["CLIENT", "SETNAME", "a b"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert!(matches!(
        parse(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]),
        Ok(Command::ClientSetInfo { .. })
    ));
    assert_eq!(
        error_text(&["CLIENT", "SETINFO", "foo", "x"]),
        "ERR Unrecognized option 'foo'"
    );
    assert_eq!(
        error_text(&["CLIENT", "MAINT_NOTIFICATIONS", "on"]),
        "ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP."
    );
    assert_eq!(
        parse(&["config", "get", "save", "appendonly"]),
        Ok(Command::ConfigGet {
            patterns: args(&["save", "appendonly"])
        })
    );
    assert_eq!(
        parse(&["CONFIG", "HELP"]),
        Ok(Command::Help {
            container: "config"
        })
    );
}

#[test]
fn key_positions_come_from_the_table() {
    let spec = |name: &str| command::lookup(name.as_bytes()).expect("in the table");
    assert_eq!(spec("mset").key_indexes(7), vec![1, 3, 5]);
    assert_eq!(spec("del").key_indexes(4), vec![1, 2, 3]);
    assert_eq!(spec("rename").key_indexes(3), vec![1, 2]);
    assert_eq!(spec("set").key_indexes(5), vec![1]);
    assert!(spec("ping").key_indexes(1).is_empty());
    // Keys counted by an argument: exactly the ones it names, not the
    // options after them.
    let sintercard = spec("sintercard");
    assert_eq!(
        sintercard.key_indexes_in(&args(&["sintercard", "2", "a", "b", "LIMIT", "1"])),
        vec![2, 3]
    );
    assert_eq!(
        sintercard.key_indexes_in(&args(&["sintercard", "3", "a", "b"])),
        vec![2, 3]
    );
    assert!(
        sintercard
            .key_indexes_in(&args(&["sintercard", "x", "a"]))
            .is_empty()
    );
    assert_eq!(
        spec("sunionstore").key_indexes_in(&args(&["sunionstore", "d", "a", "b"])),
        vec![1, 2, 3]
    );
    assert_eq!(
        introspection::getkeys_reply(&args(&["MSET", "a", "1", "b", "2"])),
        Ok(Frame::Array(vec![Frame::bulk("a"), Frame::bulk("b")]))
    );
    assert_eq!(
        introspection::getkeys_reply(&args(&["PING"])),
        Err(CommandError::NoKeyArguments)
    );
    assert_eq!(
        introspection::getkeys_reply(&args(&["NOPE", "x"])),
        Err(CommandError::InvalidCommandSpecified)
    );
    assert_eq!(
        introspection::getkeys_reply(&args(&["GET"])),
        Err(CommandError::InvalidArgumentCount)
    );
}

#[test]
fn command_info_is_redis_7_shaped() {
    let reply = introspection::info_reply(&args(&["get", "nope", "config|get"]));
    let wire = encode_to_vec(&reply, Version::Resp2);
    let expected_get = b"*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n";
    assert!(wire.starts_with(b"*3\r\n"), "three entries");
    assert_eq!(&wire[4..4 + expected_get.len()], expected_get);
    let Frame::Array(entries) = reply else {
        panic!("COMMAND INFO is an array")
    };
    assert_eq!(entries[1], Frame::Null);
    assert_eq!(
        introspection::count_reply(),
        Frame::Integer(COMMANDS.len() as i64)
    );
}

#[test]
fn command_docs_give_redis_cli_its_hints() {
    let Frame::Map(docs) = introspection::docs_reply(&args(&["set"])) else {
        panic!("a map")
    };
    assert_eq!(docs.len(), 1);
    let (name, Frame::Map(fields)) = &docs[0] else {
        panic!("docs are a map")
    };
    assert_eq!(name, &Frame::bulk("set"));
    let field = |wanted: &str| {
        fields
            .iter()
            .find(|(key, _)| key == &Frame::bulk(wanted))
            .map(|(_, value)| value.clone())
    };
    assert_eq!(field("group"), Some(Frame::bulk("string")));
    assert_eq!(field("since"), Some(Frame::bulk("1.0.0")));
    let Some(Frame::Array(arguments)) = field("arguments") else {
        panic!("arguments")
    };
    assert_eq!(arguments.len(), 1);
}

#[test]
fn help_lists_the_subcommands() {
    let Frame::Array(lines) = introspection::help_reply("config") else {
        panic!("an array")
    };
    assert_eq!(
        lines[0],
        Frame::simple("CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
    );
    assert!(lines.contains(&Frame::simple("GET parameter [parameter ...]")));
}

#[test]
fn key_slots_match_redis_cluster() {
    assert_eq!(
        command::crc16(b"123456789"),
        0x31C3,
        "the CRC16/XMODEM check value"
    );
    assert_eq!(key_slot(b"foo"), 12182);
    assert_eq!(key_slot(b"bar"), 5061);
    assert_eq!(key_slot(b"hello"), 866);
    assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    assert_eq!(
        key_slot(b"foo{}{bar}"),
        key_slot(b"foo{}{bar}"),
        "empty tag: the whole key"
    );
    assert_eq!(command::hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
    assert_eq!(command::hash_tag(b"foo{{bar}}zap"), b"{bar");
    assert_eq!(command::hash_tag(b"foo{bar}{zap}"), b"bar");
    assert_eq!(command::hash_tag(b"{unclosed"), b"{unclosed");
}

#[test]
fn glob_patterns_match_as_redis() {
    let cases: &[(&str, &str, bool)] = &[
        ("*", "", true),
        ("*", "anything", true),
        ("h?llo", "hello", true),
        ("h?llo", "hllo", false),
        ("h*llo", "heeeello", true),
        ("h[ae]llo", "hallo", true),
        ("h[ae]llo", "hillo", false),
        ("h[^e]llo", "hallo", true),
        ("h[^e]llo", "hello", false),
        ("h[a-b]llo", "hbllo", true),
        ("h[b-a]llo", "hallo", true),
        ("h\\*llo", "h*llo", true),
        ("h\\*llo", "hello", false),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXbYY", false),
        ("key:*", "key:1", true),
        ("save", "appendonly", false),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(
            glob_match(pattern.as_bytes(), text.as_bytes()),
            *expected,
            "{pattern} ~ {text}"
        );
    }
    // A hostile pattern finishes quickly (no exponential backtracking).
    let text = "a".repeat(2000);
    assert!(!glob_match(
        "*a*a*a*a*a*a*a*a*b".as_bytes(),
        text.as_bytes()
    ));
}

#[test]
fn random_counts_are_read_within_plus_minus_i64_max() {
    let range = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
    let cases: &[(&[&str], &str)] = &[
        (&["srandmember", "s", "-9223372036854775808"], range),
        (&["hrandfield", "h", "-9223372036854775808"], range),
        (
            &["hrandfield", "h", "-9223372036854775808", "withvalues"],
            range,
        ),
        // The field-value pairs of half of i64::MAX or more would overflow.
        (
            &["hrandfield", "h", "-9223372036854770000", "withvalues"],
            "ERR value is out of range",
        ),
        (
            &["srandmember", "s", "x"],
            "ERR value is not an integer or out of range",
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(error_text(words), *expected, "{words:?}");
    }
    assert!(parse(&["srandmember", "s", "-9223372036854775807"]).is_ok());
    assert!(parse(&["hrandfield", "h", "-9223372036854775807"]).is_ok());
}
