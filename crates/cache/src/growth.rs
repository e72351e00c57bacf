//! How the per-slot arrays grow: the table's slab and the policies'
//! metadata, all indexed by slot id and as long as the highest slot.
//!
//! `Vec` doubles its capacity when it fills, so an array is on average a
//! quarter empty, and a node holds one store per shard. The empty part is
//! not free: the allocator hands a grown array memory that earlier, freed
//! arrays left resident. Measured with ten stores of 100,000 strings each
//! (a node's ten shards) against one store of a million: 54 bytes per key
//! more with doubling. Here an array grows to an eighth more than it needs,
//! so at most an eighth of it is empty; each element is then copied about
//! eight times over the array's life instead of about twice, a `memcpy`
//! that stays small beside the writes that grew it.

/// The fewest spare elements a growth adds, so that small arrays do not
/// reallocate on every insert.
const HEADROOM_MIN: usize = 64;

/// Makes room for `len` elements, reserving an eighth more (at least
/// [`HEADROOM_MIN`]) if the capacity is short.
#[inline]
pub(crate) fn reserve_for<T>(vec: &mut Vec<T>, len: usize) {
    if vec.capacity() < len {
        let target = len + (len / 8).max(HEADROOM_MIN);
        vec.reserve_exact(target - vec.len());
    }
}

/// Lengthens `vec` to `len` elements (if shorter) with `fill`, growing as
/// [`reserve_for`] does.
#[inline]
pub(crate) fn resize_to<T: Clone>(vec: &mut Vec<T>, len: usize, fill: T) {
    if vec.len() < len {
        reserve_for(vec, len);
        vec.resize(len, fill);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_leaves_at_most_an_eighth_spare() {
        let mut vec = Vec::new();
        for len in 1..=100_000usize {
            resize_to(&mut vec, len, 0u32);
            assert_eq!(vec.len(), len);
            assert!(vec.capacity() <= len + (len / 8).max(HEADROOM_MIN));
        }
    }

    #[test]
    fn growth_is_geometric() {
        let mut vec = Vec::new();
        let mut reallocations = 0;
        for len in 1..=1_000_000usize {
            let capacity = vec.capacity();
            reserve_for(&mut vec, len);
            vec.push(0u8);
            reallocations += usize::from(vec.capacity() != capacity);
        }
        // 1.125^n growth from 64 to a million: about 83 steps.
        assert!(reallocations < 100, "{reallocations} reallocations");
    }
}
