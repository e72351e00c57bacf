//! The one serialization of distcache: everything that is sent between
//! nodes or stored (labrpc messages, Raft's log records and snapshot
//! files, the replicated machines' log entries and snapshots, cache store
//! snapshots, shard transfers) is bincode 2 in its standard configuration
//! (little endian, variable-length integers), encoded and decoded here.
//!
//! Why a crate of its own: the crates that serialize (`labrpc`, `raft`,
//! `rsm`, `cache`, `shardkv`) have no common lower crate (`cache` depends
//! on no other distcache crate, `labrpc` on none either), and the codec
//! needs nothing but serde and bincode, so it sits under all of them.
//!
//! # Decode limits
//!
//! [`decode`] takes an explicit [`DecodeLimit`]: the most the decoder may
//! allocate for one value, whatever the length prefixes inside corrupt or
//! hostile bytes claim (bincode counts every decoded primitive and every
//! byte of a string against it, before allocating), and the largest input
//! it accepts at all (a longer input is [`CodecError::TooLarge`] before any
//! decoding). The limits in use, each a bound on what its kind of data can
//! legitimately need:
//!
//! | limit | for |
//! |---|---|
//! | [`MESSAGE_LIMIT`] (64 MiB) | one labrpc message (at most 16 MiB on the wire by default) |
//! | [`ENTRY_LIMIT`] (128 MiB) | one log entry's payload (an entry is at most about 15 MiB) |
//! | [`STATE_LIMIT`] (8 GiB) | a snapshot, a shard transfer, a storage record (at most 1 GiB on disk) |
//!
//! Every decode refuses trailing bytes: a value is the whole input.
//!
//! # Format versions
//!
//! Data that outlives a release (log entries, snapshots) starts with a
//! version header: the byte [`VERSION_MARK`] (255) and one version byte per
//! layer ([`encode_versioned`]). 255 is never the first byte of a value
//! whose encoding starts with an integer (bincode's variable-length integers
//! use 0..=254), so bytes written before versions existed, which have no
//! header, are still read, as version 1 of every layer. A version newer
//! than the build knows is refused with [`CodecError::UnknownVersion`],
//! which names the data and both versions; nothing is decoded.

use serde::{Serialize, de::DeserializeOwned};

/// The most a decode may allocate, and the largest input it accepts, in
/// bytes. The bound is a type parameter because bincode checks it at
/// compile-time cost zero; the named constants below are the ones in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeLimit<const BYTES: usize>;

impl<const BYTES: usize> DecodeLimit<BYTES> {
    /// The limit in bytes.
    pub const BYTES: usize = BYTES;
}

/// One labrpc message.
pub const MESSAGE_LIMIT: DecodeLimit<{ 64 << 20 }> = DecodeLimit;
/// One log entry's payload.
pub const ENTRY_LIMIT: DecodeLimit<{ 128 << 20 }> = DecodeLimit;
/// A whole state: a snapshot, a shard transfer, a storage record.
pub const STATE_LIMIT: DecodeLimit<{ 8 << 30 }> = DecodeLimit;

/// First byte of a versioned value ([`encode_versioned`]).
pub const VERSION_MARK: u8 = 0xFF;

/// Why bytes are not a value (or a value not bytes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input is longer than the decode limit allows.
    #[error("{bytes} bytes exceed the decode limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    /// bincode refused the bytes (malformed, truncated, or claiming more
    /// than the limit).
    #[error("does not decode: {detail}")]
    Decode { detail: String },
    /// A value decoded but did not use the whole input.
    #[error("{trailing_bytes} trailing bytes after {read_bytes} bytes")]
    TrailingBytes {
        read_bytes: usize,
        trailing_bytes: usize,
    },
    /// A version header names a format version this build does not read.
    #[error(
        "{what} format version {found} is not one this build reads (it reads versions 1 to {supported}): \
         written by a newer release?"
    )]
    UnknownVersion {
        what: &'static str,
        found: u8,
        supported: u8,
    },
    /// A version header names a format version older than this build still
    /// reads (its layout can no longer be decoded in the current shape).
    #[error(
        "{what} format version {found} is older than this build reads (it reads versions {oldest} and later): \
         written by an older release"
    )]
    RetiredVersion {
        what: &'static str,
        found: u8,
        oldest: u8,
    },
    /// serde refused to encode the value.
    #[error("does not encode: {detail}")]
    Encode { detail: String },
}

fn config<const BYTES: usize>() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<BYTES>()
}

/// The bytes of `value`, or why serde refused it (a sequence of unknown
/// length, a failing `Serialize` impl).
pub fn try_encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    // Sized first (a pass that writes nothing), then written into a buffer
    // of exactly that size: a buffer grown by doubling reallocates and
    // copies at each step, and keeps up to twice the bytes for as long as
    // they are kept (a Raft log entry: until the next snapshot).
    let mut out = Vec::with_capacity(try_encoded_len(value)?);
    encode_into(value, &mut out)?;
    Ok(out)
}

/// The bytes of `value`.
///
/// # Panics
/// If serde refuses the value: a bug in its `Serialize`, not an input
/// error (the types encoded with this always encode).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    try_encode(value)
        .unwrap_or_else(|error| panic!("{} failed to encode: {error}", std::any::type_name::<T>()))
}

/// Appends the bytes of `value` to `out`. On an error `out` keeps what
/// was written before it (as with bincode's own writers): callers discard
/// the buffer.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_writer(value, VecWriter(out), bincode::config::standard()).map_err(
        |error| CodecError::Encode {
            detail: error.to_string(),
        },
    )
}

/// bincode's writer over a `Vec<u8>`: appends, and never fails. The same
/// bytes as bincode's `std::io::Write` adapter, which goes through
/// `write_all` for every field: encoding a store of a million 100-byte
/// strings took 256 ms this way against 340 ms through the adapter.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// How many bytes [`encode`] would give for `value`, without allocating
/// them.
///
/// # Panics
/// As [`encode`].
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> u64 {
    try_encoded_len(value)
        .unwrap_or_else(|error| panic!("{} failed to encode: {error}", std::any::type_name::<T>()))
        as u64
}

fn try_encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, CodecError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, bincode::config::standard()).map_err(
        |error| CodecError::Encode {
            detail: error.to_string(),
        },
    )?;
    Ok(size.bytes_written)
}

/// The value `bytes` encode, allocating at most `BYTES` for it; input
/// longer than the limit, malformed input and trailing bytes are errors.
pub fn decode<T: DeserializeOwned, const BYTES: usize>(
    bytes: &[u8],
    _limit: DecodeLimit<BYTES>,
) -> Result<T, CodecError> {
    if bytes.len() > BYTES {
        return Err(CodecError::TooLarge {
            bytes: bytes.len(),
            limit: BYTES,
        });
    }
    let (value, read_bytes) =
        bincode::serde::decode_from_slice(bytes, config::<BYTES>()).map_err(|error| {
            CodecError::Decode {
                detail: error.to_string(),
            }
        })?;
    if read_bytes != bytes.len() {
        return Err(CodecError::TrailingBytes {
            read_bytes,
            trailing_bytes: bytes.len() - read_bytes,
        });
    }
    Ok(value)
}

/// One layer of a versioned value: what it is (for errors) and the newest
/// format version this build writes and reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub what: &'static str,
    pub version: u8,
}

/// `value` behind a version header: [`VERSION_MARK`], then the version of
/// each of `formats` (outermost first), then the value.
///
/// # Panics
/// As [`encode`].
pub fn encode_versioned<T: Serialize + ?Sized>(formats: &[Format], value: &T) -> Vec<u8> {
    // Exactly sized, as `try_encode` is.
    encode_versioned_into_capacity(formats, value, encoded_len(value) as usize)
}

/// [`encode_versioned`] into a buffer made room for `value_bytes` of value
/// at once: for a large value whose size is known or estimated (a
/// snapshot), one allocation instead of a doubling buffer's copies and
/// freshly faulted pages at each step. A wrong estimate costs only
/// that: the buffer still grows as needed.
///
/// # Panics
/// As [`encode`].
pub fn encode_versioned_into_capacity<T: Serialize + ?Sized>(
    formats: &[Format],
    value: &T,
    value_bytes: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + formats.len() + value_bytes);
    encode_versions_into(formats, &mut out);
    encode_into(value, &mut out)
        .unwrap_or_else(|error| panic!("{} failed to encode: {error}", std::any::type_name::<T>()));
    out
}

/// Appends the version header of `formats` to `out`: what
/// [`encode_versioned`] writes before the value, for a value written after
/// it in parts.
pub fn encode_versions_into(formats: &[Format], out: &mut Vec<u8>) {
    out.push(VERSION_MARK);
    out.extend(formats.iter().map(|format| format.version));
}

/// The versions in `bytes`' header (one per format; all 1 for bytes
/// without a header, written before versions existed) and the value's
/// bytes after it. A version above what `formats` says this build reads
/// (or 0) is [`CodecError::UnknownVersion`].
pub fn split_versions<'a>(
    bytes: &'a [u8],
    formats: &[Format],
) -> Result<(Vec<u8>, &'a [u8]), CodecError> {
    if bytes.first() != Some(&VERSION_MARK) {
        return Ok((vec![1; formats.len()], bytes));
    }
    let header = 1 + formats.len();
    if bytes.len() < header {
        return Err(CodecError::Decode {
            detail: format!(
                "a version header of {header} bytes, but only {} bytes",
                bytes.len()
            ),
        });
    }
    let versions = bytes[1..header].to_vec();
    for (format, &found) in formats.iter().zip(&versions) {
        if found == 0 || found > format.version {
            return Err(CodecError::UnknownVersion {
                what: format.what,
                found,
                supported: format.version,
            });
        }
    }
    Ok((versions, &bytes[header..]))
}

/// The inverse of [`encode_versioned`] for types whose every version so far
/// decodes with the current shape: checks the header ([`split_versions`]),
/// then decodes the rest as [`decode`] does.
pub fn decode_versioned<T: DeserializeOwned, const BYTES: usize>(
    bytes: &[u8],
    limit: DecodeLimit<BYTES>,
    formats: &[Format],
) -> Result<T, CodecError> {
    let (_versions, body) = split_versions(bytes, formats)?;
    decode(body, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: DecodeLimit<1024> = DecodeLimit;
    const ENTRY: Format = Format {
        what: "test entry",
        version: 2,
    };

    /// An encoding's buffer is exactly its size, not a doubled buffer's
    /// leftover (kept as long as the bytes are: a log entry's payload).
    #[test]
    fn encodings_are_allocated_at_their_exact_size() {
        // Small fields after the large one, as a command's options follow
        // its value: a doubling buffer would be near twice the size.
        let value = (
            7u64,
            String::from("key:000000012345"),
            vec![b'x'; 100],
            3u64,
            Some(5u32),
        );
        let bytes = encode(&value);
        assert_eq!(bytes.capacity(), bytes.len());
        let versioned = encode_versioned(&[ENTRY], &value);
        assert_eq!(versioned.capacity(), versioned.len());
        assert_eq!(versioned.len(), bytes.len() + 2, "the mark and one version");
    }

    #[test]
    fn the_vec_writer_writes_what_bincodes_std_writer_writes() {
        // Varints of every width, a sequence of u8 (byte by byte), serde
        // bytes (in one go), a string, an option and a map.
        let mut map = std::collections::BTreeMap::new();
        map.insert(3u32, String::from("three"));
        map.insert(70_000u32, String::new());
        let value = (
            [
                0u64,
                250,
                251,
                65_535,
                65_536,
                u64::from(u32::MAX) + 1,
                u64::MAX,
            ],
            vec![7u8; 300],
            serde_bytes::ByteBuf::from(vec![9u8; 1_000]),
            (-5i64, Some(1.5f64), None::<u8>),
            map,
        );
        let mut expected = Vec::new();
        bincode::serde::encode_into_std_write(&value, &mut expected, bincode::config::standard())
            .expect("encodes");
        let mut appended = vec![0xAA];
        encode_into(&value, &mut appended).expect("encodes");
        assert_eq!(appended[0], 0xAA, "what the buffer held is kept");
        assert_eq!(&appended[1..], &expected[..]);
        assert_eq!(encode(&value), expected);
    }

    #[test]
    fn round_trips_and_refuses_trailing_and_truncated_bytes() {
        let value = (7u64, String::from("hello"), vec![1u8, 2, 3]);
        let bytes = encode(&value);
        assert_eq!(encoded_len(&value), bytes.len() as u64);
        let back: (u64, String, Vec<u8>) = decode(&bytes, SMALL).unwrap();
        assert_eq!(back, value);

        let mut trailing = bytes.clone();
        trailing.push(0);
        let error = decode::<(u64, String, Vec<u8>), 1024>(&trailing, SMALL).unwrap_err();
        assert_eq!(
            error,
            CodecError::TrailingBytes {
                read_bytes: bytes.len(),
                trailing_bytes: 1
            }
        );
        assert!(error.to_string().contains("trailing"), "{error}");

        let truncated = &bytes[..bytes.len() - 1];
        assert!(matches!(
            decode::<(u64, String, Vec<u8>), 1024>(truncated, SMALL),
            Err(CodecError::Decode { .. })
        ));
    }

    #[test]
    fn hostile_length_prefix_is_refused_before_allocating() {
        // A varint claiming a string of 2^62 bytes must fail, not allocate.
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F]);
        let error = decode::<String, { 64 << 20 }>(&bytes, MESSAGE_LIMIT).unwrap_err();
        assert!(matches!(error, CodecError::Decode { .. }), "{error}");
        // A short input whose length prefix claims more than the limit
        // fails on the claim, before the string is allocated.
        let claim = [251u8, 0x88, 0x13, b'a', b'b']; // a string of 5000 bytes
        let error = decode::<String, 4096>(&claim, DecodeLimit::<4096>).unwrap_err();
        assert!(
            matches!(&error, CodecError::Decode { detail } if detail.contains("imit")),
            "{error}"
        );
    }

    #[test]
    fn input_longer_than_the_limit_is_refused_before_decoding() {
        let bytes = encode(&vec![0u8; 2000]);
        assert_eq!(
            decode::<Vec<u8>, 1024>(&bytes, SMALL),
            Err(CodecError::TooLarge {
                bytes: bytes.len(),
                limit: 1024
            })
        );
    }

    #[test]
    fn versioned_values_round_trip_and_old_bytes_read_as_version_one() {
        let value = (3u64, String::from("x"));
        let bytes = encode_versioned(&[ENTRY], &value);
        assert_eq!(&bytes[..2], &[VERSION_MARK, 2]);
        let back: (u64, String) = decode_versioned(&bytes, SMALL, &[ENTRY]).unwrap();
        assert_eq!(back, value);

        // Written before versions: no header, read as version 1.
        let old = encode(&value);
        assert_eq!(split_versions(&old, &[ENTRY]).unwrap(), (vec![1], &old[..]));
        let back: (u64, String) = decode_versioned(&old, SMALL, &[ENTRY]).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_newer_version_is_refused_and_named() {
        let newer = Format {
            what: "test entry",
            version: 3,
        };
        let bytes = encode_versioned(&[newer], &(1u64, 2u64));
        let error = decode_versioned::<(u64, u64), 1024>(&bytes, SMALL, &[ENTRY]).unwrap_err();
        assert_eq!(
            error,
            CodecError::UnknownVersion {
                what: "test entry",
                found: 3,
                supported: 2
            }
        );
        let message = error.to_string();
        assert!(
            message.contains("test entry format version 3") && message.contains("1 to 2"),
            "{message}"
        );
        // Version 0 is never written: refused as well.
        let zero = [VERSION_MARK, 0, 1, 2];
        assert!(matches!(
            split_versions(&zero, &[ENTRY]),
            Err(CodecError::UnknownVersion { found: 0, .. })
        ));
        // A header cut short.
        assert!(matches!(
            split_versions(&[VERSION_MARK], &[ENTRY, ENTRY]),
            Err(CodecError::Decode { .. })
        ));
    }
}
