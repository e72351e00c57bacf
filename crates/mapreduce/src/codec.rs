//! The format of intermediate files `mr-X-Y`: a magic header, the record
//! count, then length-prefixed key/value records.
//!
//! ```text
//! "MRKV1\n" | count u64 LE | (key_len u32 LE, key, value_len u32 LE, value) x count
//! ```
//!
//! Keys and values may hold any text (the crash application uses file names
//! as values; the indexer's values contain commas), so the format is binary
//! and never splits on a separator. Files are published atomically, so a
//! truncated file means a bug or a foreign file; the count and the
//! exact-length checks turn that into an error rather than silently fewer
//! records.

use crate::KeyValue;

const MAGIC: &[u8] = b"MRKV1\n";

/// Why an intermediate file did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt intermediate file: {detail}")]
pub struct CorruptFile {
    pub detail: String,
}

/// Encodes `pairs` in order.
///
/// # Panics
/// If a key or value is 4 GiB or longer (a map output that size is a bug).
pub fn encode_pairs(pairs: &[KeyValue]) -> Vec<u8> {
    let payload_bytes: usize = pairs
        .iter()
        .map(|pair| 8 + pair.key.len() + pair.value.len())
        .sum();
    let mut bytes = Vec::with_capacity(MAGIC.len() + payload_bytes + 8);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(pairs.len() as u64).to_le_bytes());
    for pair in pairs {
        for text in [&pair.key, &pair.value] {
            let length = u32::try_from(text.len()).expect("key or value under 4 GiB");
            bytes.extend_from_slice(&length.to_le_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
    }
    bytes
}

/// Decodes a whole file written by [`encode_pairs`], appending to `pairs`.
pub fn decode_pairs_into(bytes: &[u8], pairs: &mut Vec<KeyValue>) -> Result<(), CorruptFile> {
    let corrupt = |detail: String| CorruptFile { detail };
    let Some(rest) = bytes.strip_prefix(MAGIC) else {
        return Err(corrupt("missing header".into()));
    };
    let Some((count_bytes, mut rest)) = rest.split_first_chunk::<8>() else {
        return Err(corrupt("truncated record count".into()));
    };
    let count = u64::from_le_bytes(*count_bytes);
    // Bounded by the count, and a record takes at least 8 bytes, so a
    // hostile count fails as soon as the bytes run out.
    for index in 0..count {
        let record = |detail: String| corrupt(format!("record {index} of {count}: {detail}"));
        let key = take_text(&mut rest).map_err(record)?;
        let value = take_text(&mut rest).map_err(record)?;
        pairs.push(KeyValue { key, value });
    }
    if !rest.is_empty() {
        return Err(corrupt(format!(
            "{} bytes after the last of {count} records",
            rest.len()
        )));
    }
    Ok(())
}

fn take_text(rest: &mut &[u8]) -> Result<String, String> {
    let Some((length_bytes, after)) = rest.split_first_chunk::<4>() else {
        return Err("truncated length".into());
    };
    let length = u32::from_le_bytes(*length_bytes) as usize;
    if after.len() < length {
        return Err(format!(
            "a {length}-byte field with {} bytes left",
            after.len()
        ));
    }
    let (text, after) = after.split_at(length);
    *rest = after;
    String::from_utf8(text.to_vec()).map_err(|_| "field is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) -> Result<Vec<KeyValue>, CorruptFile> {
        let mut pairs = Vec::new();
        decode_pairs_into(bytes, &mut pairs).map(|()| pairs)
    }

    proptest! {
        #[test]
        fn round_trips(raw in proptest::collection::vec((".*", ".*"), 0..20)) {
            let pairs: Vec<KeyValue> = raw
                .into_iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect();
            prop_assert_eq!(decode(&encode_pairs(&pairs)).unwrap(), pairs);
        }

        #[test]
        fn every_truncation_is_detected(raw in proptest::collection::vec((".*", ".*"), 1..5)) {
            let pairs: Vec<KeyValue> = raw
                .into_iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect();
            let bytes = encode_pairs(&pairs);
            for length in 0..bytes.len() {
                prop_assert!(decode(&bytes[..length]).is_err(), "truncated to {}", length);
            }
        }
    }

    #[test]
    fn empty_file_is_valid_and_garbage_is_not() {
        assert_eq!(decode(&encode_pairs(&[])).unwrap(), vec![]);
        assert!(decode(b"hello").is_err());
        let mut extra = encode_pairs(&[KeyValue::new("a", "1")]);
        extra.push(0);
        assert!(decode(&extra).is_err());
    }
}
