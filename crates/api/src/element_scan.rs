//! One step of `HSCAN`, `SSCAN` or `ZSCAN`: a collection's elements in
//! [`scan_position`] order of the element (field, member), the order
//! `SCAN` visits keys in.
//!
//! The cursor is a position, not a place in a structure: a step visits the
//! `count` elements with the lowest positions at or after it (plus any
//! that share the last one's position, never split between steps) and
//! answers those that match the pattern. So an element present for the
//! whole iteration is answered exactly once, whatever is added or removed
//! between steps, on any replica; elements written meanwhile may or may
//! not be. Each step costs O(n log n) in the collection's size (bounded by
//! `max_collection_elements`), as `SCAN`'s step costs O(keys in the shard).

use crate::Error;
use crate::op::{SCAN_COUNT_MAX, SCAN_POSITION_END, scan_position};

/// One step's answer: the elements (with what goes along with each: a
/// field's value, a member's score), in position order, and where the next
/// step starts ([`SCAN_POSITION_END`]: done).
pub(crate) type ScanPage<'a, T> = (Vec<(&'a [u8], T)>, u64);

/// One step over `elements` from `position` (see the module docs).
pub(crate) fn scan_elements<'a, T>(
    elements: impl Iterator<Item = (&'a [u8], T)>,
    position: u64,
    count: u64,
    pattern: Option<&[u8]>,
) -> Result<ScanPage<'a, T>, Error> {
    if count == 0 || count > SCAN_COUNT_MAX {
        return Err(Error::TooLarge {
            what: "scan count (1 or more)".into(),
            size_bytes: count,
            limit_bytes: SCAN_COUNT_MAX,
        });
    }
    let mut candidates: Vec<(u64, &'a [u8], T)> = elements
        .map(|(element, extra)| (scan_position(element), element, extra))
        .filter(|(element_position, _, _)| *element_position >= position)
        .collect();
    // count <= SCAN_COUNT_MAX, so it fits in usize.
    let count = count as usize;
    let next_position = if candidates.len() > count {
        candidates.select_nth_unstable_by(count - 1, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let boundary = candidates[..count]
            .iter()
            .map(|(element_position, _, _)| *element_position)
            .max()
            .expect("count is at least 1");
        candidates.retain(|(element_position, _, _)| *element_position <= boundary);
        boundary + 1
    } else {
        SCAN_POSITION_END
    };
    candidates.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let answered = candidates
        .into_iter()
        .filter(|(_, element, _)| {
            pattern.is_none_or(|pattern| resp::command::glob_match(pattern, element))
        })
        .map(|(_, element, extra)| (element, extra))
        .collect();
    Ok((answered, next_position))
}
