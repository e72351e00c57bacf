//! Property tests: round trips in both versions, any split of the input,
//! and arbitrary bytes never panic.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use resp::{Decoder, Frame, Limits, Mode, Version, encode_to_vec};

/// Bytes without CR or LF, for the one-line types.
fn line_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no line break", |b| *b != b'\r' && *b != b'\n'),
        0..16,
    )
    .prop_map(Bytes::from)
}

fn any_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..32).prop_map(Bytes::from)
}

fn leaf() -> impl Strategy<Value = Frame> {
    prop_oneof![
        line_bytes().prop_map(Frame::SimpleString),
        line_bytes().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        any_bytes().prop_map(Frame::BulkString),
        Just(Frame::Null),
        any::<f64>()
            .prop_filter("NaN never equals itself", |v| !v.is_nan())
            .prop_map(Frame::Double),
        any::<bool>().prop_map(Frame::Boolean),
        any_bytes().prop_map(Frame::BlobError),
        (proptest::array::uniform3(any::<u8>()), any_bytes())
            .prop_map(|(format, text)| Frame::Verbatim { format, text }),
        ("-?[1-9][0-9]{0,40}").prop_map(|digits| Frame::BigNumber(Bytes::from(digits))),
    ]
}

/// Any RESP3 frame (RESP2's `NullArray` aside: in RESP3 it is `_`).
fn frame() -> impl Strategy<Value = Frame> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Push),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Frame::Map),
            (
                proptest::collection::vec((inner.clone(), inner.clone()), 0..3),
                inner
            )
                .prop_map(|(attributes, value)| Frame::Attribute {
                    attributes,
                    value: Box::new(value)
                }),
        ]
    })
}

/// What a RESP2 encoding reads back as.
fn as_resp2(frame: Frame) -> Frame {
    match frame {
        Frame::Double(value) => Frame::BulkString(Bytes::from(resp::format_double(value))),
        Frame::Boolean(value) => Frame::Integer(i64::from(value)),
        Frame::BlobError(bytes) => Frame::Error(Bytes::from(
            bytes
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                .collect::<Vec<u8>>(),
        )),
        Frame::Verbatim { text, .. } => Frame::BulkString(text),
        Frame::BigNumber(digits) => Frame::BulkString(digits),
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            Frame::Array(items.into_iter().map(as_resp2).collect())
        }
        Frame::Map(pairs) => Frame::Array(
            pairs
                .into_iter()
                .flat_map(|(key, value)| [as_resp2(key), as_resp2(value)])
                .collect(),
        ),
        Frame::Attribute { value, .. } => as_resp2(*value),
        other => other,
    }
}

fn decode_all(mode: Mode, chunks: &[&[u8]]) -> Result<Vec<Frame>, resp::ProtocolError> {
    let mut decoder = Decoder::new(mode, Limits::default());
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        while let Some(frame) = decoder.decode(&mut buffer)? {
            frames.push(frame);
        }
    }
    Ok(frames)
}

proptest! {
    #[test]
    fn resp3_round_trip(frame in frame()) {
        let wire = encode_to_vec(&frame, Version::Resp3);
        prop_assert_eq!(decode_all(Mode::Replies, &[&wire]), Ok(vec![frame]));
    }

    #[test]
    fn resp2_round_trip_is_the_down_conversion(frame in frame()) {
        let wire = encode_to_vec(&frame, Version::Resp2);
        prop_assert_eq!(decode_all(Mode::Replies, &[&wire]), Ok(vec![as_resp2(frame)]));
    }

    #[test]
    fn any_split_of_a_stream_decodes_the_same(
        frames in proptest::collection::vec(frame(), 1..4),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut wire = Vec::new();
        for frame in &frames {
            wire.extend_from_slice(&encode_to_vec(frame, Version::Resp3));
        }
        let mut positions: Vec<usize> = cuts.iter().map(|cut| cut.index(wire.len() + 1)).collect();
        positions.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for position in positions {
            chunks.push(&wire[start..position]);
            start = position;
        }
        chunks.push(&wire[start..]);
        prop_assert_eq!(decode_all(Mode::Replies, &chunks), Ok(frames));
    }

    #[test]
    fn requests_round_trip(args in proptest::collection::vec(any_bytes(), 1..8)) {
        let frame = Frame::Array(args.into_iter().map(Frame::BulkString).collect());
        let wire = encode_to_vec(&frame, Version::Resp2);
        prop_assert_eq!(decode_all(Mode::Requests, &[&wire]), Ok(vec![frame]));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..256),
        split in any::<prop::sample::Index>(),
    ) {
        let at = split.index(input.len() + 1);
        for mode in [Mode::Requests, Mode::Replies] {
            let _ = decode_all(mode, &[&input[..at], &input[at..]]);
        }
    }

    #[test]
    fn typed_prefixes_with_garbage_never_panic(
        type_byte in prop::sample::select(b"+-:$*_,#!=(%~|>".to_vec()),
        tail in proptest::collection::vec(prop::sample::select(b"0123456789-?\r\n*$:+tfx".to_vec()), 0..64),
    ) {
        let mut input = vec![type_byte];
        input.extend(tail);
        for mode in [Mode::Requests, Mode::Replies] {
            let _ = decode_all(mode, &[&input]);
        }
    }
}
