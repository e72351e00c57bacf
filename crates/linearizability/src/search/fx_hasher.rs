//! [`FxHasher`]: a small, fast, deterministic hasher for the memo.
//!
//! The standard library's default hasher is randomly seeded (the project bans
//! `RandomState` so runs replay exactly) and is built to resist attacker-chosen
//! keys, which the memo does not need. This is the multiply-rotate scheme of
//! rustc's `FxHasher`.

use std::hash::{BuildHasherDefault, Hasher};

/// The memo's hash builder.
pub(crate) type FxBuildHasher = BuildHasherDefault<FxHasher>;

#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

/// An odd constant with well-spread bits (from rustc's `FxHasher`).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add_word(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add_word(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        let remainder = chunks.remainder();
        tail[..remainder.len()].copy_from_slice(remainder);
        // The length goes in too, so "a" and "a\0" differ.
        self.add_word(u64::from_le_bytes(tail) ^ ((remainder.len() as u64) << 59));
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.add_word(u64::from(value));
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.add_word(u64::from(value));
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.add_word(value);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add_word(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}
