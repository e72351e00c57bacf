//! Which shard a key belongs to.
//!
//! `shard = FNV-1a-64(key) mod shard_count`. FNV-1a (Fowler–Noll–Vo, the
//! 64-bit variant with offset basis `0xcbf29ce484222325` and prime
//! `0x100000001b3`) is fixed by its definition, has no seed and does not
//! depend on the platform, the compiler or the Rust version, so every
//! clerk and every server, of any version, maps a key to the same shard.
//! Changing this function would move every key: it is part of the wire
//! contract (the unit test pins known values).

/// A shard's index in [`shardctrler::Config::shards`].
pub type ShardId = usize;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// The shard of `key` among `shard_count` shards.
///
/// # Panics
/// If `shard_count` is 0 (a configuration bug: there is nowhere to put a key).
pub fn key_to_shard(key: &[u8], shard_count: usize) -> ShardId {
    assert!(shard_count > 0, "key_to_shard needs at least one shard");
    // The remainder is below shard_count, so it fits in usize.
    (fnv1a_64(key) % shard_count as u64) as ShardId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shards_are_pinned() {
        // If this changes, keys would move between groups across versions.
        let shards: Vec<ShardId> = ["0", "1", "2", "a", "key-17", ""]
            .iter()
            .map(|key| key_to_shard(key.as_bytes(), 10))
            .collect();
        assert_eq!(shards, PINNED_SHARDS);
    }

    /// FNV-1a-64 of each key mod 10, computed independently of this code.
    const PINNED_SHARDS: [ShardId; 6] = [9, 8, 1, 6, 5, 7];

    #[test]
    fn every_shard_gets_keys() {
        let mut counts = [0u32; 10];
        for index in 0..10_000 {
            counts[key_to_shard(format!("key-{index}").as_bytes(), 10)] += 1;
        }
        assert!(
            counts.iter().all(|&count| (800..1200).contains(&count)),
            "10000 keys spread over 10 shards unevenly: {counts:?}"
        );
    }
}
