//! The typed face of labrpc: a request type names its method and its reply.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::CodecError;

/// A request that can be sent with [`crate::Client::call`] and served by a
/// handler registered on a [`crate::Router`].
///
/// A service is defined once, by implementing this trait for each request
/// type; the same definition is callable and servable in production (gRPC
/// over TCP) and in simulation (madsim's network plus labrpc's faults).
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Echo(String);
///
/// impl labrpc::Rpc for Echo {
///     const NAME: &'static str = "example.Echo";
///     type Reply = String;
/// }
/// ```
///
/// The caller guarantees that `NAME` is unique within a [`crate::Router`] and
/// identical on both sides of a call; it travels on the wire.
pub trait Rpc: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The method name, conventionally `"<service>.<Method>"`.
    const NAME: &'static str;
    /// What the handler answers.
    type Reply: Serialize + DeserializeOwned + Send + 'static;
    /// Whether calls of this method to one peer share one long-lived
    /// stream (production only; see `transport/call_stream.rs`) instead of
    /// a gRPC call each. For small, frequent calls whose handler ends
    /// promptly: a caller that gives up does not cancel the handler.
    const STREAMED: bool = false;
}

/// Serializes a message (the shared [`codec`]: the encoding whose size the
/// statistics count).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    codec::try_encode(value).map_err(CodecError::from)
}

/// Deserializes a whole message, allocating at most
/// [`codec::MESSAGE_LIMIT`] whatever length prefixes inside a corrupt or
/// hostile payload claim; trailing bytes are an error, not ignored.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    codec::decode(bytes, codec::MESSAGE_LIMIT).map_err(CodecError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let message = (7u64, String::from("hello"), vec![1u8, 2, 3]);
        let bytes = encode(&message).unwrap();
        let back: (u64, String, Vec<u8>) = decode(&bytes).unwrap();
        assert_eq!(back, message);

        let mut trailing = bytes.clone();
        trailing.push(0);
        let error = decode::<(u64, String, Vec<u8>)>(&trailing).unwrap_err();
        assert!(error.detail.contains("trailing"), "{error}");

        let truncated = &bytes[..bytes.len() - 1];
        assert!(decode::<(u64, String, Vec<u8>)>(truncated).is_err());
    }

    #[test]
    fn hostile_length_prefix_does_not_allocate_unbounded() {
        // A varint claiming a string of 2^62 bytes must fail, not allocate.
        let hostile = [0xFFu8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F];
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&hostile);
        assert!(decode::<String>(&bytes).is_err());
    }
}
