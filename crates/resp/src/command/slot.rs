//! Redis Cluster's key slot: CRC16 (XMODEM) of the key, or of its hash tag,
//! modulo 16384.

/// The number of slots in a Redis cluster.
pub const SLOT_COUNT: u16 = 16384;

/// The slot of `key`: if the key holds a `{` followed later by a `}` with
/// at least one byte between them, only the bytes between the first `{`
/// and the first `}` after it are hashed (the hash tag), so `{user1}.a`
/// and `{user1}.b` share a slot.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOT_COUNT
}

/// The part of `key` that decides its slot.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&byte| byte == b'{') else {
        return key;
    };
    let after_open = &key[open + 1..];
    match after_open.iter().position(|&byte| byte == b'}') {
        Some(0) | None => key,
        Some(close) => &after_open[..close],
    }
}

/// CRC-16/XMODEM: polynomial 0x1021, initial value 0, no reflection, no
/// final XOR (the variant the Redis Cluster specification names).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}
