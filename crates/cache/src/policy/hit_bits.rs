//! Per-slot small counters that a hit may update through a shared borrow.
//!
//! SIEVE's visited bit and S3-FIFO's 2-bit frequency are the only state a
//! hit touches, so the near cache can record hits under a *read* lock: many
//! readers of one hot shard proceed in parallel. Updates use relaxed
//! load-then-store: two racing hits may count once, which only makes the
//! counter a little less eager (the policies tolerate lost hits). Under an
//! exclusive borrow (the deterministic store) the result is exact.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A growable array of `AtomicU8`, serialized as plain bytes.
#[derive(Debug, Default)]
pub struct HitBits {
    values: Vec<AtomicU8>,
}

impl HitBits {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn resize(&mut self, len: usize) {
        if self.values.len() < len {
            crate::growth::reserve_for(&mut self.values, len);
            self.values.resize_with(len, || AtomicU8::new(0));
        }
    }

    #[inline]
    pub fn get(&self, index: usize) -> u8 {
        self.values[index].load(Ordering::Relaxed)
    }

    #[inline]
    pub fn set(&self, index: usize, value: u8) {
        self.values[index].store(value, Ordering::Relaxed);
    }

    /// Raises the value by one, saturating at `maximum`; skips the store when
    /// already saturated so hot slots do not bounce their cache line.
    #[inline]
    pub fn bump(&self, index: usize, maximum: u8) {
        let value = self.get(index);
        if value < maximum {
            self.set(index, value + 1);
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        self.values
            .iter()
            .map(|value| value.load(Ordering::Relaxed))
            .collect()
    }
}

impl Clone for HitBits {
    fn clone(&self) -> Self {
        HitBits {
            values: self.to_bytes().into_iter().map(AtomicU8::new).collect(),
        }
    }
}

impl PartialEq for HitBits {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for HitBits {}

impl Serialize for HitBits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_bytes().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for HitBits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = Vec::<u8>::deserialize(deserializer)?;
        Ok(HitBits {
            values: bytes.into_iter().map(AtomicU8::new).collect(),
        })
    }
}

/// One `AtomicU8` with value semantics (clone, compare, serialize as `u8`),
/// for per-slot records that embed their hit counter.
#[derive(Debug, Default)]
pub struct HitCell(AtomicU8);

impl HitCell {
    #[inline]
    pub fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn set(&self, value: u8) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// See [`HitBits::bump`].
    #[inline]
    pub fn bump(&self, maximum: u8) {
        let value = self.get();
        if value < maximum {
            self.set(value + 1);
        }
    }
}

impl Clone for HitCell {
    fn clone(&self) -> Self {
        HitCell(AtomicU8::new(self.get()))
    }
}

impl PartialEq for HitCell {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for HitCell {}

impl Serialize for HitCell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for HitCell {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(HitCell(AtomicU8::new(u8::deserialize(deserializer)?)))
    }
}
