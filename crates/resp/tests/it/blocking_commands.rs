//! `LMPOP`, `ZMPOP`, the blocking pops and moves, and `OBJECT`: Redis 7.0's
//! error strings in the order Redis checks (the cases of its `unit/type/list`
//! and `unit/type/zset` "illegal argument" tests), and the keys routing sees.

use bytes::Bytes;
use resp::command::{
    self, BlockTimeout, Command, CommandError, ListEnd, MultiPop, ObjectQuery, PopFrom, PopReply,
    lookup,
};

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

fn keys(words: &[&str]) -> Vec<Bytes> {
    args(words)
}

#[test]
fn lmpop_and_blmpop_refuse_as_redis_7_0() {
    let syntax = "ERR syntax error";
    let numkeys = "ERR numkeys should be greater than 0";
    let count = "ERR count should be greater than 0";
    let cases: &[(&[&str], &str)] = &[
        (
            &["lmpop"],
            "ERR wrong number of arguments for 'lmpop' command",
        ),
        (
            &["lmpop", "1"],
            "ERR wrong number of arguments for 'lmpop' command",
        ),
        (
            &["lmpop", "1", "l"],
            "ERR wrong number of arguments for 'lmpop' command",
        ),
        (&["lmpop", "0", "l", "LEFT"], numkeys),
        (&["lmpop", "a", "l", "LEFT"], numkeys),
        (&["lmpop", "-1", "l", "RIGHT"], numkeys),
        (&["lmpop", "1", "l", "bad_where"], syntax),
        (&["lmpop", "1", "l", "LEFT", "bar_arg"], syntax),
        (&["lmpop", "1", "l", "RIGHT", "LEFT"], syntax),
        (&["lmpop", "1", "l", "COUNT"], syntax),
        (
            &["lmpop", "1", "l", "LEFT", "COUNT", "1", "COUNT", "2"],
            syntax,
        ),
        (&["lmpop", "2", "l", "l2", "bad_arg"], syntax),
        (&["lmpop", "5", "l", "LEFT"], syntax),
        (&["lmpop", "1", "l", "LEFT", "COUNT", "0"], count),
        (&["lmpop", "1", "l", "RIGHT", "COUNT", "a"], count),
        (&["lmpop", "1", "l", "LEFT", "COUNT", "-1"], count),
        (&["lmpop", "2", "l", "l2", "RIGHT", "COUNT", "-1"], count),
        (&["blmpop", "0", "0", "l", "LEFT"], numkeys),
        (&["blmpop", "0", "1", "l", "LEFT", "COUNT", "0"], count),
        // The timeout is checked after the rest, as in Redis.
        (&["blmpop", "-1", "1", "l", "LEFT", "COUNT", "0"], count),
        (
            &["blmpop", "-1", "1", "l", "LEFT"],
            "ERR timeout is negative",
        ),
        (
            &["blmpop", "x", "1", "l", "LEFT"],
            "ERR timeout is not a float or out of range",
        ),
        (&["zmpop", "1", "z", "bad_where"], syntax),
        (&["zmpop", "1", "z", "LEFT"], syntax),
        (&["zmpop", "0", "z", "MIN"], numkeys),
        (&["zmpop", "1", "z", "MAX", "COUNT", "0"], count),
        (&["bzmpop", "0", "1", "z", "MIN", "COUNT", "-1"], count),
        (&["blpop", "l", "-1"], "ERR timeout is negative"),
        (
            &["blpop", "l", "abc"],
            "ERR timeout is not a float or out of range",
        ),
        (
            &["blpop", "l", "0x7FFFFFFFFFFFFF"],
            "ERR timeout is negative",
        ),
        (&["bzpopmin", "z", "-0.5"], "ERR timeout is negative"),
        (&["blmove", "a", "b", "LEFT", "UP", "0"], syntax),
        (
            &["blmove", "a", "b", "LEFT", "RIGHT", "-1"],
            "ERR timeout is negative",
        ),
        (
            &["brpoplpush", "a", "b", "nope"],
            "ERR timeout is not a float or out of range",
        ),
        (
            &["object", "encoding"],
            "ERR wrong number of arguments for 'object|encoding' command",
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(&error_text(words), expected, "{words:?}");
    }
}

#[test]
fn pops_parse_with_their_shapes() {
    assert_eq!(
        parse(&["LMPOP", "2", "a", "b", "right", "count", "3"]),
        Ok(Command::MultiPop(MultiPop {
            keys: keys(&["a", "b"]),
            from: PopFrom::List(ListEnd::Right),
            count: 3,
            reply: PopReply::Nested,
            timeout: None,
        }))
    );
    assert_eq!(
        parse(&["BLPOP", "a", "b", "0.1"]),
        Ok(Command::MultiPop(MultiPop {
            keys: keys(&["a", "b"]),
            from: PopFrom::List(ListEnd::Left),
            count: 1,
            reply: PopReply::Flat,
            timeout: Some(BlockTimeout { ms: 100 }),
        }))
    );
    assert_eq!(
        parse(&["BZMPOP", "1.5", "1", "z", "MAX"]),
        Ok(Command::MultiPop(MultiPop {
            keys: keys(&["z"]),
            from: PopFrom::ZSet { highest: true },
            count: 1,
            reply: PopReply::Nested,
            timeout: Some(BlockTimeout { ms: 1500 }),
        }))
    );
    assert_eq!(
        parse(&["BRPOPLPUSH", "s", "d", "0"]),
        Ok(Command::BlockingMove {
            source: Bytes::from_static(b"s"),
            destination: Bytes::from_static(b"d"),
            from: ListEnd::Right,
            to: ListEnd::Left,
            timeout: BlockTimeout { ms: 0 },
        })
    );
    assert_eq!(
        parse(&["object", "ENCODING", "k"]),
        Ok(Command::Object {
            key: Bytes::from_static(b"k"),
            query: ObjectQuery::Encoding,
        })
    );
}

#[test]
fn routing_sees_every_key_and_no_timeout() {
    let key_args = |words: &[&str]| {
        let request = args(words);
        let spec = lookup(&request[0]).expect("known command");
        let spec = if spec.subcommands.is_empty() {
            spec
        } else {
            command::lookup_subcommand(spec, &request[1]).expect("known subcommand")
        };
        spec.key_indexes_in(&request)
            .into_iter()
            .map(|index| String::from_utf8_lossy(&request[index]).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(key_args(&["blpop", "a", "b", "0"]), ["a", "b"]);
    assert_eq!(key_args(&["bzpopmax", "a", "0"]), ["a"]);
    assert_eq!(key_args(&["lmpop", "2", "a", "b", "LEFT"]), ["a", "b"]);
    assert_eq!(
        key_args(&["blmpop", "0", "2", "a", "b", "LEFT"]),
        ["a", "b"]
    );
    assert_eq!(key_args(&["zmpop", "1", "z", "MIN", "COUNT", "2"]), ["z"]);
    assert_eq!(key_args(&["bzmpop", "3", "1", "z", "MIN"]), ["z"]);
    assert_eq!(
        key_args(&["blmove", "s", "d", "LEFT", "LEFT", "0"]),
        ["s", "d"]
    );
    assert_eq!(key_args(&["brpoplpush", "s", "d", "0"]), ["s", "d"]);
    assert_eq!(key_args(&["object", "encoding", "k"]), ["k"]);
    for name in [
        "blpop",
        "brpop",
        "blmove",
        "brpoplpush",
        "blmpop",
        "bzpopmin",
        "bzpopmax",
        "bzmpop",
    ] {
        let spec = lookup(name.as_bytes()).expect("in the table");
        assert!(spec.has_flag("blocking"), "{name} is not flagged blocking");
    }
}
