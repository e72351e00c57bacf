//! Hostile input, checked the same way by the fuzz targets
//! (`crates/distcache/fuzz`, `scripts/fuzz.sh`) and by the gate's property
//! tests (`tests/hostile_input.rs`): whatever the bytes, decoding a peer
//! message or parsing a node configuration answers a value or an error,
//! never a panic, and never allocates past the codec's limits.
//!
//! Each check returns what it found so that a test can also see that the
//! input reached the parser (a check that accepted nothing would prove
//! nothing).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::NodeConfig;

/// What one input did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Decoded (or parsed and validated) to a value.
    Accepted,
    /// Refused with an error.
    Refused,
}

/// Decodes `bytes` as a `T`; a value must re-encode to bytes that decode
/// and re-encode to themselves (the encoding of a decoded value is stable,
/// so what a node forwards or stores is what it understood).
fn decode_stable<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Outcome {
    let Ok(value) = labrpc::decode::<T>(bytes) else {
        return Outcome::Refused;
    };
    let encoded = labrpc::encode(&value).expect("a decoded value encodes");
    let again: T = labrpc::decode(&encoded).expect("a re-encoded value decodes");
    let encoded_again = labrpc::encode(&again).expect("it encodes again");
    assert_eq!(
        encoded, encoded_again,
        "the encoding of a decoded value is stable"
    );
    Outcome::Accepted
}

/// The peer-facing message types, by the number [`peer_message`] takes:
/// every request and reply a node decodes from another (Raft, shard
/// migration, the controller, kvraft).
pub const PEER_MESSAGE_TYPES: [&str; 12] = [
    "raft Message",
    "raft Message reply",
    "shardkv ShardKvRequest",
    "shardkv ShardKvRequest reply",
    "shardkv PullChunk",
    "shardkv PullChunk reply",
    "shardkv DeleteShards",
    "shardkv DeleteShards reply",
    "shardctrler ControllerRequest",
    "shardctrler ControllerRequest reply",
    "kvraft KvRequest",
    "kvraft KvRequest reply",
];

/// Decodes `bytes` as peer message type `kind` (an index into
/// [`PEER_MESSAGE_TYPES`], taken modulo its length).
pub fn peer_message(kind: u8, bytes: &[u8]) -> Outcome {
    type Reply<T> = <T as labrpc::Rpc>::Reply;
    match usize::from(kind) % PEER_MESSAGE_TYPES.len() {
        0 => decode_stable::<raft::core::Message>(bytes),
        1 => decode_stable::<Reply<raft::core::Message>>(bytes),
        2 => decode_stable::<shardkv::ShardKvRequest>(bytes),
        3 => decode_stable::<Reply<shardkv::ShardKvRequest>>(bytes),
        4 => decode_stable::<shardkv::rpc::PullChunk>(bytes),
        5 => decode_stable::<Reply<shardkv::rpc::PullChunk>>(bytes),
        6 => decode_stable::<shardkv::rpc::DeleteShards>(bytes),
        7 => decode_stable::<Reply<shardkv::rpc::DeleteShards>>(bytes),
        8 => decode_stable::<shardctrler::ControllerRequest>(bytes),
        9 => decode_stable::<Reply<shardctrler::ControllerRequest>>(bytes),
        10 => decode_stable::<kvraft::KvRequest>(bytes),
        _ => decode_stable::<Reply<kvraft::KvRequest>>(bytes),
    }
}

/// Parses `text` as a node configuration and validates it, as
/// `distcache node --config` does before it starts anything.
pub fn node_config(text: &str) -> Outcome {
    match NodeConfig::from_toml(text, "fuzz input") {
        Ok(config) => match config.validate() {
            Ok(_) => Outcome::Accepted,
            Err(_) => Outcome::Refused,
        },
        Err(_) => Outcome::Refused,
    }
}
