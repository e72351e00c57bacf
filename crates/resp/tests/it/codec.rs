//! Exact-output tests of the codec: every type, both versions, every error.

use bytes::{Bytes, BytesMut};
use resp::{Decoder, Frame, Limits, ProtocolError, Version, encode_to_vec};

fn decode_replies(input: &[u8]) -> Result<Option<Frame>, ProtocolError> {
    Decoder::replies(Limits::default()).decode(&mut BytesMut::from(input))
}

fn decode_requests(input: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
    let mut decoder = Decoder::requests(Limits::default());
    let mut buffer = BytesMut::from(input);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buffer)? {
        frames.push(frame);
    }
    Ok(frames)
}

fn bulk(text: &str) -> Frame {
    Frame::bulk(text)
}

#[test]
fn every_type_encodes_exactly_in_resp3() {
    let cases: Vec<(Frame, &[u8])> = vec![
        (Frame::ok(), b"+OK\r\n"),
        (Frame::error("ERR bad"), b"-ERR bad\r\n"),
        (Frame::Integer(-42), b":-42\r\n"),
        (Frame::Integer(i64::MIN), b":-9223372036854775808\r\n"),
        (bulk("foo"), b"$3\r\nfoo\r\n"),
        (bulk(""), b"$0\r\n\r\n"),
        (Frame::Null, b"_\r\n"),
        (Frame::NullArray, b"_\r\n"),
        (
            Frame::Array(vec![bulk("a"), Frame::Integer(1)]),
            b"*2\r\n$1\r\na\r\n:1\r\n",
        ),
        (Frame::Double(3.5), b",3.5\r\n"),
        (Frame::Double(2.0), b",2\r\n"),
        (Frame::Double(f64::INFINITY), b",inf\r\n"),
        (Frame::Double(f64::NEG_INFINITY), b",-inf\r\n"),
        (Frame::Double(f64::NAN), b",nan\r\n"),
        (Frame::Double(1e300), b",1.0000000000000001e+300\r\n"),
        (Frame::Double(1.1), b",1.1000000000000001\r\n"),
        (Frame::Double(1e-5), b",1.0000000000000001e-05\r\n"),
        (Frame::Double(0.0001), b",0.0001\r\n"),
        (
            Frame::Double(1.2345678901234568e17),
            b",1.2345678901234568e+17\r\n",
        ),
        (Frame::Double(1e20), b",1e+20\r\n"),
        (Frame::Boolean(true), b"#t\r\n"),
        (Frame::Boolean(false), b"#f\r\n"),
        (
            Frame::BlobError(Bytes::from_static(b"SYNTAX x\r\ny")),
            b"!11\r\nSYNTAX x\r\ny\r\n",
        ),
        (
            Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"Some string"),
            },
            b"=15\r\ntxt:Some string\r\n",
        ),
        (
            Frame::BigNumber(Bytes::from_static(
                b"-3492890328409238509324850943850943825024385",
            )),
            b"(-3492890328409238509324850943850943825024385\r\n",
        ),
        (
            Frame::Map(vec![(Frame::simple("first"), Frame::Integer(1))]),
            b"%1\r\n+first\r\n:1\r\n",
        ),
        (Frame::Set(vec![Frame::Boolean(false)]), b"~1\r\n#f\r\n"),
        (
            Frame::Attribute {
                attributes: vec![(Frame::simple("ttl"), Frame::Integer(3))],
                value: Box::new(Frame::Integer(7)),
            },
            b"|1\r\n+ttl\r\n:3\r\n:7\r\n",
        ),
        (
            Frame::Push(vec![bulk("message")]),
            b">1\r\n$7\r\nmessage\r\n",
        ),
    ];
    for (frame, expected) in cases {
        assert_eq!(
            encode_to_vec(&frame, Version::Resp3),
            expected,
            "RESP3 encoding of {frame:?}: expected {:?}",
            String::from_utf8_lossy(expected)
        );
    }
}

#[test]
fn resp3_types_down_convert_for_resp2_as_redis_does() {
    let cases: Vec<(Frame, &[u8])> = vec![
        (Frame::Null, b"$-1\r\n"),
        (Frame::NullArray, b"*-1\r\n"),
        (Frame::Double(3.5), b"$3\r\n3.5\r\n"),
        (Frame::Boolean(true), b":1\r\n"),
        (Frame::Boolean(false), b":0\r\n"),
        (
            Frame::BlobError(Bytes::from_static(b"ERR a\r\nb")),
            b"-ERR a  b\r\n",
        ),
        (
            Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"hi"),
            },
            b"$2\r\nhi\r\n",
        ),
        (
            Frame::BigNumber(Bytes::from_static(b"123")),
            b"$3\r\n123\r\n",
        ),
        (
            Frame::Map(vec![
                (bulk("k"), Frame::Integer(1)),
                (bulk("j"), Frame::Null),
            ]),
            b"*4\r\n$1\r\nk\r\n:1\r\n$1\r\nj\r\n$-1\r\n",
        ),
        (Frame::Set(vec![Frame::Integer(1)]), b"*1\r\n:1\r\n"),
        (Frame::Push(vec![Frame::Integer(1)]), b"*1\r\n:1\r\n"),
        (
            Frame::Attribute {
                attributes: vec![(bulk("a"), bulk("b"))],
                value: Box::new(bulk("v")),
            },
            b"$1\r\nv\r\n",
        ),
    ];
    for (frame, expected) in cases {
        assert_eq!(
            encode_to_vec(&frame, Version::Resp2),
            expected,
            "RESP2 encoding of {frame:?}"
        );
    }
}

#[test]
fn line_breaks_in_simple_strings_and_errors_become_spaces() {
    assert_eq!(
        encode_to_vec(&Frame::error("ERR a\r\nb"), Version::Resp2),
        b"-ERR a  b\r\n"
    );
    assert_eq!(
        encode_to_vec(&Frame::simple("x\ny"), Version::Resp3),
        b"+x y\r\n"
    );
}

#[test]
fn every_type_decodes_from_its_wire_form() {
    let cases: Vec<(&[u8], Frame)> = vec![
        (b"+OK\r\n", Frame::ok()),
        (b"-ERR x\r\n", Frame::error("ERR x")),
        (b":12\r\n", Frame::Integer(12)),
        (b"$-1\r\n", Frame::Null),
        (b"*-1\r\n", Frame::NullArray),
        (b"_\r\n", Frame::Null),
        (b",1.25\r\n", Frame::Double(1.25)),
        (b",-inf\r\n", Frame::Double(f64::NEG_INFINITY)),
        (b",1.5e3\r\n", Frame::Double(1500.0)),
        (b"#t\r\n", Frame::Boolean(true)),
        (
            b"!3\r\nERR\r\n",
            Frame::BlobError(Bytes::from_static(b"ERR")),
        ),
        (
            b"=6\r\nmkd:ab\r\n",
            Frame::Verbatim {
                format: *b"mkd",
                text: Bytes::from_static(b"ab"),
            },
        ),
        (b"(-12\r\n", Frame::BigNumber(Bytes::from_static(b"-12"))),
        (b"%0\r\n", Frame::Map(vec![])),
        (
            b"~2\r\n:1\r\n:2\r\n",
            Frame::Set(vec![Frame::Integer(1), Frame::Integer(2)]),
        ),
        (
            b"*1\r\n*1\r\n*0\r\n",
            Frame::Array(vec![Frame::Array(vec![Frame::Array(vec![])])]),
        ),
        (
            b"|1\r\n+a\r\n:1\r\n>1\r\n+m\r\n",
            Frame::Attribute {
                attributes: vec![(Frame::simple("a"), Frame::Integer(1))],
                value: Box::new(Frame::Push(vec![Frame::simple("m")])),
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            decode_replies(input),
            Ok(Some(expected)),
            "decoding {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn bad_replies_are_typed_errors() {
    let cases: Vec<(&[u8], ProtocolError)> = vec![
        (b"?x\r\n", ProtocolError::UnknownType(b'?')),
        (b":12a\r\n", ProtocolError::InvalidInteger),
        (b":99999999999999999999\r\n", ProtocolError::InvalidInteger),
        (b":\r\n", ProtocolError::InvalidInteger),
        (b",1.2.3\r\n", ProtocolError::InvalidDouble),
        (b",abc\r\n", ProtocolError::InvalidDouble),
        (b"#x\r\n", ProtocolError::InvalidBoolean),
        (b"_x\r\n", ProtocolError::InvalidNull),
        (b"(12a\r\n", ProtocolError::InvalidBigNumber),
        (b"=2\r\nab\r\n", ProtocolError::InvalidVerbatim),
        (b"$3\r\nabcd\r\n", ProtocolError::ExpectedCrlf),
        (b"+OK\rX", ProtocolError::ExpectedCrlf),
        (b"$-2\r\n", ProtocolError::InvalidBulkLength),
        (b"!-1\r\n", ProtocolError::InvalidBulkLength),
        (b"*-2\r\n", ProtocolError::InvalidMultibulkLength),
        (b"*x\r\n", ProtocolError::InvalidMultibulkLength),
        (b"$?\r\n", ProtocolError::StreamedNotSupported),
        (b"*?\r\n", ProtocolError::StreamedNotSupported),
    ];
    for (input, expected) in cases {
        assert_eq!(
            decode_replies(input),
            Err(expected),
            "decoding {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn protocol_errors_read_as_redis_writes_them() {
    assert_eq!(
        ProtocolError::InvalidMultibulkLength.to_string(),
        "Protocol error: invalid multibulk length"
    );
    assert_eq!(
        ProtocolError::InvalidBulkLength.to_string(),
        "Protocol error: invalid bulk length"
    );
    assert_eq!(
        ProtocolError::ExpectedBulk(b'+').to_string(),
        "Protocol error: expected '$', got '+'"
    );
    assert_eq!(
        ProtocolError::TooBigInlineRequest.to_string(),
        "Protocol error: too big inline request"
    );
    assert_eq!(
        ProtocolError::UnbalancedQuotes.to_string(),
        "Protocol error: unbalanced quotes in request"
    );
}

#[test]
fn requests_accept_arrays_of_bulk_strings_and_inline_lines() {
    let frames = decode_requests(
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\r\n\r\nPING\r\nSET k \"a b\\x41\\n\" 'it\\'s'\n*0\r\n*-1\r\n",
    )
    .expect("valid requests");
    assert_eq!(
        frames,
        vec![
            Frame::command(["GET", "k"]),
            Frame::command(["PING"]),
            Frame::command([&b"SET"[..], b"k", b"a bA\n", b"it's"]),
        ]
    );
}

#[test]
fn bad_requests_get_redis_protocol_errors() {
    let cases: Vec<(&[u8], ProtocolError)> = vec![
        (b"*1\r\n:1\r\n", ProtocolError::ExpectedBulk(b':')),
        (b"*1\r\n*1\r\n", ProtocolError::ExpectedBulk(b'*')),
        (b"*abc\r\n", ProtocolError::InvalidMultibulkLength),
        (b"*1\r\n$abc\r\n", ProtocolError::InvalidBulkLength),
        (b"*1\r\n$536870913\r\n", ProtocolError::InvalidBulkLength),
        (b"*1048577\r\n", ProtocolError::InvalidMultibulkLength),
        (b"SET k \"unclosed\r\n", ProtocolError::UnbalancedQuotes),
        (b"SET k \"closed\"x\r\n", ProtocolError::UnbalancedQuotes),
        (b"SET k 'a'b\r\n", ProtocolError::UnbalancedQuotes),
    ];
    for (input, expected) in cases {
        assert_eq!(
            decode_requests(input),
            Err(expected),
            "decoding {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn line_limits_apply_before_the_line_ends() {
    let limit = Limits::default().max_line_bytes;
    let mut inline = vec![b'a'; limit + 1];
    assert_eq!(
        decode_requests(&inline),
        Err(ProtocolError::TooBigInlineRequest)
    );
    inline.truncate(limit - 10);
    assert_eq!(
        decode_requests(&inline),
        Ok(vec![]),
        "a shorter partial line waits"
    );
    let mut header = b"*".to_vec();
    header.extend(std::iter::repeat_n(b'1', limit + 1));
    assert_eq!(
        decode_requests(&header),
        Err(ProtocolError::TooBigMultibulkCount)
    );
    let mut simple = b"+".to_vec();
    simple.extend(std::iter::repeat_n(b'x', limit + 1));
    assert_eq!(
        decode_replies(&simple),
        Err(ProtocolError::LineTooLong { limit })
    );
}

#[test]
fn depth_and_frame_size_are_bounded() {
    let limits = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    let mut decoder = Decoder::replies(limits);
    assert_eq!(
        decoder.decode(&mut BytesMut::from(&b"*1\r\n*1\r\n*1\r\n*1\r\n"[..])),
        Err(ProtocolError::TooDeep { limit: 3 })
    );
    let limits = Limits {
        max_frame_bytes: 64,
        ..Limits::default()
    };
    let mut decoder = Decoder::requests(limits);
    // Refused as soon as the header announces too much, before the payload.
    assert_eq!(
        decoder.decode(&mut BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$60\r\n"[..])),
        Err(ProtocolError::FrameTooLarge { limit: 64 })
    );
}

#[test]
fn a_frame_fed_one_byte_at_a_time_is_consumed_as_it_arrives() {
    let wire = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$11\r\nhello world\r\n";
    let mut decoder = Decoder::requests(Limits::default());
    let mut buffer = BytesMut::new();
    let mut decoded = None;
    for (index, byte) in wire.iter().enumerate() {
        buffer.extend_from_slice(&[*byte]);
        let result = decoder.decode(&mut buffer).expect("valid input");
        if index + 1 < wire.len() {
            assert_eq!(result, None, "no frame before byte {index}");
            // Whole elements leave the buffer at once: what remains is at
            // most the element in progress.
            assert!(
                buffer.len() <= 18,
                "buffer holds {} bytes at byte {index}",
                buffer.len()
            );
        } else {
            decoded = result;
        }
    }
    assert_eq!(
        decoded,
        Some(Frame::command(["SET", "hello", "hello world"]))
    );
    assert!(buffer.is_empty());
    assert!(!decoder.is_mid_frame());
}

#[test]
fn pipelined_requests_decode_in_order() {
    let mut wire = Vec::new();
    for index in 0..100 {
        wire.extend_from_slice(&encode_to_vec(
            &Frame::command(["INCR", &format!("key{index}")]),
            Version::Resp2,
        ));
    }
    let frames = decode_requests(&wire).expect("valid pipeline");
    assert_eq!(frames.len(), 100);
    assert_eq!(frames[99], Frame::command(["INCR", "key99"]));
}

/// A request argument over the value limit (`max_argument_bytes`) but
/// within the protocol's bulk bound: the request is refused with a
/// recoverable error once it has been read, its payload is dropped as it
/// arrives (never held), and the requests after it decode as usual.
#[test]
fn an_oversized_argument_refuses_its_request_and_the_stream_goes_on() {
    let limits = Limits {
        max_argument_bytes: 8,
        max_bulk_bytes: 1000,
        ..Limits::default()
    };
    let payload = "x".repeat(100);
    let wire = format!(
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n{payload}\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\
         *3\r\n$3\r\nSET\r\n$12\r\n{}\r\n$9\r\n{}\r\nPING\r\n",
        "k".repeat(12),
        "v".repeat(9),
    );
    let refused_first = ProtocolError::ArgumentTooLarge {
        length_bytes: 100,
        limit_bytes: 8,
    };
    // Twice oversized: the first length is named.
    let refused_second = ProtocolError::ArgumentTooLarge {
        length_bytes: 12,
        limit_bytes: 8,
    };
    let expected = vec![
        Err(refused_first.clone()),
        Ok(Frame::Array(vec![bulk("GET"), bulk("k")])),
        Err(refused_second),
        Ok(Frame::Array(vec![bulk("PING")])),
    ];
    assert!(refused_first.is_recoverable());
    assert!(
        refused_first
            .to_string()
            .starts_with("string exceeds maximum allowed size"),
        "{refused_first}"
    );

    // Whole, then one byte at a time: the same answers, and while the
    // payload streams in the buffer never holds more than what just came.
    for chunk_bytes in [wire.len(), 1, 7] {
        let mut decoder = Decoder::requests(limits);
        let mut buffer = BytesMut::new();
        let mut seen = Vec::new();
        let mut held_bytes_max = 0;
        for chunk in wire.as_bytes().chunks(chunk_bytes) {
            buffer.extend_from_slice(chunk);
            loop {
                match decoder.decode(&mut buffer) {
                    Ok(Some(frame)) => seen.push(Ok(frame)),
                    Ok(None) => break,
                    Err(error) => {
                        assert!(error.is_recoverable(), "{error}");
                        seen.push(Err(error));
                    }
                }
            }
            held_bytes_max = held_bytes_max.max(buffer.len());
        }
        assert_eq!(seen, expected, "fed in chunks of {chunk_bytes}");
        if chunk_bytes == 1 {
            // At most a header line or a kept argument, never the
            // 100-byte payload.
            assert!(held_bytes_max <= 16, "held {held_bytes_max} bytes");
        }
    }
}

#[test]
fn an_argument_over_the_protocol_bound_or_without_its_crlf_ends_the_stream() {
    let limits = Limits {
        max_argument_bytes: 8,
        max_bulk_bytes: 50,
        ..Limits::default()
    };
    let mut decoder = Decoder::requests(limits);
    let mut over_bound = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$51\r\n"[..]);
    assert_eq!(
        decoder.decode(&mut over_bound),
        Err(ProtocolError::InvalidBulkLength)
    );
    let mut decoder = Decoder::requests(limits);
    let mut no_crlf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$10\r\n0123456789xx"[..]);
    assert_eq!(
        decoder.decode(&mut no_crlf),
        Err(ProtocolError::ExpectedCrlf)
    );
    // Replies (the client side) keep what the protocol allows.
    let mut decoder = Decoder::replies(limits);
    let mut reply = BytesMut::from(&b"$10\r\n0123456789\r\n"[..]);
    assert_eq!(decoder.decode(&mut reply), Ok(Some(bulk("0123456789"))));
}
