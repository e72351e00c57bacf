//! The sorted-set commands' parsing: Redis 7.0's error strings, in the
//! order Redis checks, and the keys routing sees.

use bytes::Bytes;
use resp::command::{self, Command, CommandError, ZRangeArg, ZSetCommand, lookup};

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

#[test]
fn errors_read_as_redis_7_0_writes_them() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["zadd", "z", "1"],
            "ERR wrong number of arguments for 'zadd' command",
        ),
        (&["zadd", "z", "nx", "1"], "ERR syntax error"),
        (&["zadd", "z", "1", "a", "2"], "ERR syntax error"),
        (
            &["zadd", "z", "nx", "xx", "1", "a"],
            "ERR XX and NX options at the same time are not compatible",
        ),
        (
            &["zadd", "z", "gt", "lt", "1", "a"],
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            &["zadd", "z", "nx", "gt", "1", "a"],
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            &["zadd", "z", "incr", "1", "a", "2", "b"],
            "ERR INCR option supports a single increment-element pair",
        ),
        (&["zadd", "z", "x", "a"], "ERR value is not a valid float"),
        (&["zadd", "z", "nan", "a"], "ERR value is not a valid float"),
        (
            &["zadd", "z", "1e400", "a"],
            "ERR value is not a valid float",
        ),
        (&["zadd", "z", " 1", "a"], "ERR value is not a valid float"),
        (
            &["zincrby", "z", "abc", "a"],
            "ERR value is not a valid float",
        ),
        (
            &["zrangebyscore", "z", "(x", "1"],
            "ERR min or max is not a float",
        ),
        (
            &["zcount", "z", "1", "nan"],
            "ERR min or max is not a float",
        ),
        (
            &["zrangebylex", "z", "a", "+"],
            "ERR min or max not valid string range item",
        ),
        (
            &["zlexcount", "z", "-", ""],
            "ERR min or max not valid string range item",
        ),
        (
            &["zrange", "z", "0", "-1", "limit", "0", "1"],
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ),
        (
            &["zrange", "z", "-", "+", "bylex", "withscores"],
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ),
        (
            &["zrange", "z", "0", "1", "byscore", "bylex"],
            "ERR syntax error",
        ),
        (
            &["zrange", "z", "a", "1"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["zrangebyscore", "z", "0", "1", "limit", "0"],
            "ERR syntax error",
        ),
        (&["zrangebyscore", "z", "0", "1", "rev"], "ERR syntax error"),
        (
            &["zrangestore", "d", "z", "0", "-1", "withscores"],
            "ERR syntax error",
        ),
        (
            &["zpopmin", "z", "-1"],
            "ERR value is out of range, must be positive",
        ),
        (
            &["zpopmin", "z", "x"],
            "ERR value is out of range, must be positive",
        ),
        (&["zpopmax", "z", "1", "2"], "ERR syntax error"),
        (&["zrandmember", "z", "1", "withscore"], "ERR syntax error"),
        (
            &["zunionstore", "d", "0", "a"],
            "ERR at least 1 input key is needed for 'zunionstore' command",
        ),
        (&["zinterstore", "d", "3", "a", "b"], "ERR syntax error"),
        (
            &["zunionstore", "d", "2", "a", "b", "weights", "1", "x"],
            "ERR weight value is not a float",
        ),
        (
            &["zunionstore", "d", "2", "a", "b", "weights", "1"],
            "ERR syntax error",
        ),
        (
            &["zunionstore", "d", "1", "a", "aggregate", "avg"],
            "ERR syntax error",
        ),
        (
            &["zdiffstore", "d", "1", "a", "weights", "1"],
            "ERR syntax error",
        ),
        (
            &["zremrangebyrank", "z", "0", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["zrandmember", "z", "-9223372036854775807", "withscores"],
            "ERR value is out of range",
        ),
        (
            &["zrandmember", "z", "-9223372036854775808"],
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(error_text(words), *expected, "{words:?}");
    }
}

#[test]
fn reversed_ranges_take_max_first_and_options_in_any_order() {
    let Ok(Command::ZSet {
        op:
            ZSetCommand::Range {
                range: ZRangeArg::Score { min, max },
                reverse: true,
                limit: Some((1, 2)),
                with_scores: true,
            },
        ..
    }) = parse(&[
        "zrange",
        "z",
        "(5",
        "-inf",
        "withscores",
        "rev",
        "byscore",
        "limit",
        "1",
        "2",
    ])
    else {
        panic!("ZRANGE ... REV BYSCORE parses");
    };
    assert_eq!((min.value, min.exclusive), (f64::NEG_INFINITY, false));
    assert_eq!((max.value, max.exclusive), (5.0, true));
    assert!(matches!(
        parse(&["zrevrangebylex", "z", "+", "[b"]),
        Ok(Command::ZSet {
            op: ZSetCommand::Range {
                range: ZRangeArg::Lex { .. },
                reverse: true,
                ..
            },
            ..
        })
    ));
}

#[test]
fn store_commands_route_by_every_key() {
    let request = args(&[
        "zunionstore",
        "{t}d",
        "2",
        "{t}a",
        "{t}b",
        "weights",
        "1",
        "2",
    ]);
    let spec = lookup(b"zunionstore").expect("known");
    assert_eq!(spec.key_indexes_in(&request), vec![1, 3, 4]);
    let request = args(&["zrangestore", "{t}d", "{t}s", "0", "-1"]);
    let spec = lookup(b"zrangestore").expect("known");
    assert_eq!(spec.key_indexes_in(&request), vec![1, 2]);
    let request = args(&["sintercard", "2", "a", "b", "limit", "1"]);
    let spec = lookup(b"sintercard").expect("known");
    assert_eq!(spec.key_indexes_in(&request), vec![2, 3]);
}
