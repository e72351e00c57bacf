//! [`LinearizedSet`]: which operations of a partition are linearized so far, as
//! a bitset with an incrementally maintained hash.

/// A bitset over a partition's operations.
///
/// Its hash is the XOR of a fixed pseudo-random key per member (Zobrist
/// hashing), updated on every insert and remove, so hashing a memo key costs
/// O(1) instead of O(operations / 64).
#[derive(Clone, Debug)]
pub(crate) struct LinearizedSet {
    words: Vec<u64>,
    hash: u64,
}

impl LinearizedSet {
    pub(crate) fn new(operation_count: usize) -> Self {
        Self {
            words: vec![0; operation_count.div_ceil(64)],
            hash: 0,
        }
    }

    /// # Panics
    ///
    /// If `operation` is already a member (the search never linearizes twice).
    pub(crate) fn insert(&mut self, operation: usize) {
        let (word, bit) = (operation / 64, 1u64 << (operation % 64));
        assert!(
            self.words[word] & bit == 0,
            "operation {operation} linearized twice"
        );
        self.words[word] |= bit;
        self.hash ^= zobrist_key(operation);
    }

    /// # Panics
    ///
    /// If `operation` is not a member.
    pub(crate) fn remove(&mut self, operation: usize) {
        let (word, bit) = (operation / 64, 1u64 << (operation % 64));
        assert!(
            self.words[word] & bit != 0,
            "operation {operation} removed but not linearized"
        );
        self.words[word] &= !bit;
        self.hash ^= zobrist_key(operation);
    }

    /// The incremental (Zobrist) hash of the members.
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// A frozen copy for the memo.
    pub(crate) fn snapshot(&self) -> LinearizedSnapshot {
        let words = if self.words.len() <= INLINE_WORDS {
            let mut inline = [0; INLINE_WORDS];
            inline[..self.words.len()].copy_from_slice(&self.words);
            SnapshotWords::Inline(inline)
        } else {
            SnapshotWords::Heap(self.words.as_slice().into())
        };
        LinearizedSnapshot {
            words,
            hash: self.hash,
        }
    }
}

/// Bitsets of up to this many words (256 operations) are kept inside the
/// memo's table: no allocation per memo entry, and no pointer to follow when
/// a lookup compares them (the memo's hottest path).
const INLINE_WORDS: usize = 4;

/// The words of a snapshot. Every snapshot of one search has the same number
/// of words (the partition's), so an inline one needs no length: the unused
/// words are zero.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SnapshotWords {
    Inline([u64; INLINE_WORDS]),
    Heap(Box<[u64]>),
}

/// An immutable copy of a [`LinearizedSet`], used inside memo keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LinearizedSnapshot {
    words: SnapshotWords,
    hash: u64,
}

impl LinearizedSnapshot {
    /// The hash of the set it was taken from.
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// Whether it has the same members as `set` (the hash first, as a cheap filter).
    pub(crate) fn matches(&self, set: &LinearizedSet) -> bool {
        if self.hash != set.hash {
            return false;
        }
        match &self.words {
            // A short loop: cheaper than calling memcmp for a few words.
            SnapshotWords::Inline(words) => words
                .iter()
                .zip(&set.words)
                .all(|(snapshot, current)| snapshot == current),
            SnapshotWords::Heap(words) => **words == *set.words,
        }
    }

    /// Bytes it owns on the heap, with the allocator's bookkeeping (roughly).
    pub(crate) fn heap_bytes(&self) -> u64 {
        const ALLOCATION_OVERHEAD_BYTES: u64 = 16;
        match &self.words {
            SnapshotWords::Inline(_) => 0,
            SnapshotWords::Heap(words) => words.len() as u64 * 8 + ALLOCATION_OVERHEAD_BYTES,
        }
    }
}

/// A fixed pseudo-random key per operation (SplitMix64 of its index): the same
/// on every run, so the search is deterministic.
fn zobrist_key(operation: usize) -> u64 {
    let mut z = (operation as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_built_in_different_orders_have_equal_snapshots() {
        let mut forward = LinearizedSet::new(130);
        let mut backward = LinearizedSet::new(130);
        for operation in [3, 64, 129] {
            forward.insert(operation);
        }
        for operation in [129, 7, 64, 3] {
            backward.insert(operation);
        }
        backward.remove(7);
        assert_eq!(forward.snapshot(), backward.snapshot());
    }

    #[test]
    fn different_sets_differ() {
        let mut one = LinearizedSet::new(10);
        let mut other = LinearizedSet::new(10);
        one.insert(1);
        other.insert(2);
        assert_ne!(one.snapshot(), other.snapshot());
    }

    #[test]
    #[should_panic(expected = "linearized twice")]
    fn inserting_twice_is_a_bug() {
        let mut set = LinearizedSet::new(10);
        set.insert(1);
        set.insert(1);
    }
}
