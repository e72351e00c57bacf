//! Which shard a key belongs to: Redis Cluster's hash slots.
//!
//! ```text
//!   key ─► hash part ─► slot = CRC16(hash part) mod 16384 ─► shard = slot * shard_count / 16384
//!          (the {tag}
//!           or the key)
//! ```
//!
//! - **Hash part** ([`hash_part`]): Redis's rule, exactly. If the key has a
//!   `{`, and after that first `{` there is a `}`, and the bytes between
//!   them are not empty, only those bytes are hashed; otherwise the whole
//!   key is. So `{user1000}.following` and `{user1000}.followers` share a
//!   slot, `foo{}{bar}` hashes all of itself (the first `{}` is empty) and
//!   `foo{{bar}}zap` hashes `{bar`.
//! - **Slot** ([`key_slot`], computed by the `resp` crate's
//!   `command::key_slot`, the one implementation): CRC16, the XMODEM variant (polynomial
//!   `0x1021`, initial value 0, no reflection, no final xor), modulo
//!   [`SLOT_COUNT`]. This is the value `CLUSTER KEYSLOT` answers, so a Redis
//!   Cluster client computes the same slot as the servers.
//! - **Shard** ([`slot_to_shard`]): each shard owns one contiguous range of
//!   slots (`slot * shard_count / 16384`), so `CLUSTER SLOTS` can report a
//!   group's slots as a few ranges. With more than 16384 shards some shards
//!   would own no slot; the controller's shard counts are far below that.
//!
//! Nothing here has a seed or depends on the platform, the compiler or the
//! Rust version, so every clerk, server, forwarder and client of any version
//! maps a key to the same shard. Changing this function would move every
//! key: it is part of the wire contract (the unit tests pin known values).
//! Every layer calls [`key_to_shard`]; nothing else maps keys.

/// A shard's index in [`shardctrler::Config::shards`].
pub type ShardId = usize;

/// A Redis Cluster hash slot, `0..SLOT_COUNT`.
pub type Slot = u16;

/// The number of hash slots, as in Redis Cluster.
pub const SLOT_COUNT: usize = resp::command::SLOT_COUNT as usize;

/// The bytes of `key` that decide its slot: the content of the first
/// `{...}` if that content is not empty, else the whole key.
pub fn hash_part(key: &[u8]) -> &[u8] {
    resp::command::hash_tag(key)
}

/// The hash slot of `key` (what `CLUSTER KEYSLOT key` answers):
/// CRC16/XMODEM of [`hash_part`] modulo [`SLOT_COUNT`]. The `resp` crate
/// holds the one implementation, so the codec's `CLUSTER KEYSLOT` and the
/// routing here cannot disagree.
pub fn key_slot(key: &[u8]) -> Slot {
    resp::command::key_slot(key)
}

/// The shard that owns `slot` among `shard_count` shards: shards own
/// contiguous, nearly equal slot ranges in order.
///
/// # Panics
/// If `shard_count` is 0 (a configuration bug: there is nowhere to put a
/// key) or `slot` is not below [`SLOT_COUNT`].
pub fn slot_to_shard(slot: Slot, shard_count: usize) -> ShardId {
    assert!(shard_count > 0, "slot_to_shard needs at least one shard");
    assert!(
        usize::from(slot) < SLOT_COUNT,
        "slot {slot} is out of range"
    );
    // slot < 2^14 and shard_count is a usize: compute in u128 so no
    // product overflows on any platform.
    (u128::from(slot) * shard_count as u128 / SLOT_COUNT as u128) as ShardId
}

/// The slots `shard` owns among `shard_count` shards, as a half-open range
/// (empty if `shard_count` exceeds [`SLOT_COUNT`] and this shard owns none).
///
/// # Panics
/// If `shard_count` is 0 or `shard` is not below it.
pub fn shard_slots(shard: ShardId, shard_count: usize) -> std::ops::Range<usize> {
    assert!(shard_count > 0, "shard_slots needs at least one shard");
    assert!(
        shard < shard_count,
        "shard {shard} is out of range ({shard_count} shards)"
    );
    // The first slot s with s * shard_count / SLOT_COUNT >= shard is
    // ceil(shard * SLOT_COUNT / shard_count).
    let first_slot = |shard: usize| -> usize {
        let numerator = shard as u128 * SLOT_COUNT as u128;
        numerator.div_ceil(shard_count as u128) as usize
    };
    first_slot(shard)..first_slot(shard + 1)
}

/// The shard of `key` among `shard_count` shards.
///
/// # Panics
/// If `shard_count` is 0 (a configuration bug: there is nowhere to put a key).
pub fn key_to_shard(key: &[u8], shard_count: usize) -> ShardId {
    assert!(shard_count > 0, "key_to_shard needs at least one shard");
    slot_to_shard(key_slot(key), shard_count)
}

/// The shard an operation is routed to: its key's, or for a whole-shard
/// operation the shard it names (possibly out of range: the caller
/// checks it against the configuration).
///
/// # Panics
/// If `shard_count` is 0.
pub fn op_shard(op: &api::Op, shard_count: usize) -> ShardId {
    match op.target() {
        api::Target::Key(key) => key_to_shard(key, shard_count),
        api::Target::Shard(shard) => usize::try_from(shard).unwrap_or(usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_published_check_value() {
        // The CRC catalogue's check value for CRC-16/XMODEM, and the value
        // in Redis Cluster's specification.
        assert_eq!(resp::command::crc16(b"123456789"), 0x31c3);
        assert_eq!(resp::command::crc16(b""), 0);
    }

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // Values redis-server answers to CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"hello"), 866);
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b""), 0);
        assert_eq!(key_slot(b"key-17"), 9140);
        assert_eq!(key_slot(b"{user1000}.following"), 3443);
        assert_eq!(key_slot(b"foo{hash_tag}"), 2515);
    }

    #[test]
    fn hash_tags_follow_redis_rule() {
        // The examples in Redis Cluster's specification.
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(hash_part(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_part(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_part(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_part(b"{}"), b"{}");
        assert_eq!(hash_part(b"no tag"), b"no tag");
        assert_eq!(hash_part(b"open{only"), b"open{only");
        assert_eq!(hash_part(b"}before{x}"), b"x");
    }

    #[test]
    fn shards_own_contiguous_slot_ranges() {
        for shard_count in [1usize, 3, 10, 64, 256, 1000, SLOT_COUNT, SLOT_COUNT + 7] {
            let mut next = 0;
            for shard in 0..shard_count {
                let range = shard_slots(shard, shard_count);
                assert_eq!(range.start, next, "{shard_count} shards, shard {shard}");
                for slot in range.clone() {
                    assert_eq!(slot_to_shard(slot as Slot, shard_count), shard);
                }
                next = range.end;
            }
            assert_eq!(next, SLOT_COUNT, "{shard_count} shards cover every slot");
        }
        assert_eq!(shard_slots(0, 10), 0..1639);
        assert_eq!(shard_slots(9, 10), 14746..16384);
    }

    #[test]
    fn shards_are_pinned() {
        // If this changes, keys would move between groups across versions.
        let shards: Vec<ShardId> = ["0", "1", "2", "a", "key-17", "", "foo"]
            .iter()
            .map(|key| key_to_shard(key.as_bytes(), 10))
            .collect();
        assert_eq!(shards, PINNED_SHARDS);
    }

    /// `CRC16(key) % 16384 * 10 / 16384` of each key, from the slots
    /// redis-server reports ("0" 13907, "1" 9842, "2" 5649, "a" 15495,
    /// "key-17" 9140, "" 0, "foo" 12182).
    const PINNED_SHARDS: [ShardId; 7] = [8, 6, 3, 9, 5, 0, 7];

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
