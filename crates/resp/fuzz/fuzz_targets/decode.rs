//! Arbitrary bytes into both decoders, split at an input-chosen point, then
//! every request through the command parser. Must never panic; every frame
//! decoded must re-encode and decode to itself; and the split must not
//! change what is decoded.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use resp::{Decoder, Frame, Limits, Mode, ProtocolError, Version, encode_to_vec};

/// Small limits so the fuzzer reaches every limit check.
const LIMITS: Limits = Limits {
    max_bulk_bytes: 64,
    max_argument_bytes: 16,
    max_aggregate_len: 16,
    max_depth: 4,
    max_line_bytes: 128,
    max_frame_bytes: 512,
};

/// The frames decoded (a request refused for an oversized argument, after
/// which decoding goes on, shows as an error frame), and the error that
/// ended decoding, if any.
fn decode(mode: Mode, chunks: &[&[u8]]) -> (Vec<Frame>, Option<ProtocolError>) {
    let mut decoder = Decoder::new(mode, LIMITS);
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) if error.is_recoverable() => {
                    frames.push(Frame::error(&error.to_string()))
                }
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, None)
}

fn same(left: &Frame, right: &Frame) -> bool {
    // NaN doubles compare unequal to themselves; compare the wire instead.
    encode_to_vec(left, Version::Resp3) == encode_to_vec(right, Version::Resp3)
}

fuzz_target!(|input: &[u8]| {
    let Some((&split, data)) = input.split_first() else {
        return;
    };
    let at = usize::from(split).min(data.len());
    for mode in [Mode::Requests, Mode::Replies] {
        let (whole, whole_error) = decode(mode, &[data]);
        let (split_frames, split_error) = decode(mode, &[&data[..at], &data[at..]]);
        assert_eq!(whole.len(), split_frames.len(), "the split changed the frame count");
        assert_eq!(whole_error, split_error, "the split changed the error");
        for (left, right) in whole.iter().zip(&split_frames) {
            assert!(same(left, right), "the split changed a frame");
        }
        for frame in &whole {
            let wire = encode_to_vec(frame, Version::Resp3);
            let (again, error) = decode(Mode::Replies, &[&wire]);
            if error.is_none() {
                assert_eq!(again.len(), 1);
                assert!(same(&again[0], frame), "re-encoding changed {frame:?}");
            }
            if mode == Mode::Requests {
                if let Some(args) = frame.clone().into_args() {
                    let _ = resp::command::parse(&args);
                }
            }
        }
    }
});
