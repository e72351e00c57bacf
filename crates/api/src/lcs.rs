//! Redis's `LCS`: the longest common subsequence of two keys' strings.
//!
//! The classic dynamic program: a table of `(len(a) + 1) * (len(b) + 1)`
//! 32-bit lengths, filled row by row, then walked back from the end to
//! read the subsequence and the matching ranges. Time and memory are both
//! O(len(a) * len(b)), so the table is bounded: one over
//! [`LCS_TABLE_BYTES_MAX`] is refused ([`Error::TooLarge`]) before anything
//! is allocated. Redis bounds the same table by `proto-max-bulk-len`
//! (512 MiB); distcache's bound is smaller because the answer is computed
//! on a replica's read path.
//!
//! The walk is Redis 7.0's, step for step (`lcsCommand` in `t_string.c`),
//! so the ranges, their order (from the end of the strings backwards) and
//! their boundaries are the ones Redis answers.

use serde::{Deserialize, Serialize};

use crate::Error;

/// The largest LCS table computed, in bytes (4 per cell): 32 MiB, e.g.
/// two strings of about 2,900 bytes each, or 100 bytes against 80,000.
pub const LCS_TABLE_BYTES_MAX: u64 = 32 * 1024 * 1024;

/// What an [`crate::Op::Lcs`] answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LcsAnswer {
    /// The subsequence itself ([`crate::Outcome::Value`]).
    #[default]
    Subsequence,
    /// Its length only, `LEN` ([`crate::Outcome::Integer`]).
    Length,
    /// The matching ranges and the length, `IDX`
    /// ([`crate::Outcome::LcsMatches`]).
    Matches,
}

/// One run of consecutive matching bytes: `first` in the first string,
/// `second` in the second, both inclusive byte positions of equal length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LcsMatch {
    pub first: (u64, u64),
    pub second: (u64, u64),
}

impl LcsMatch {
    /// How many bytes the run covers.
    pub fn length(&self) -> u64 {
        self.first.1 - self.first.0 + 1
    }
}

/// The bytes the table for `first` and `second` takes.
pub fn lcs_table_bytes(first: &[u8], second: &[u8]) -> u64 {
    let rows = first.len() as u64 + 1;
    let columns = second.len() as u64 + 1;
    rows.saturating_mul(columns).saturating_mul(4)
}

/// The longest common subsequence of `first` and `second`, its length,
/// and (with `want_matches`) its matching runs, last first; or
/// [`Error::TooLarge`] if the table would exceed [`LCS_TABLE_BYTES_MAX`].
pub fn longest_common_subsequence(
    first: &[u8],
    second: &[u8],
    want_matches: bool,
) -> Result<(Vec<u8>, Vec<LcsMatch>), Error> {
    let table_bytes = lcs_table_bytes(first, second);
    if table_bytes > LCS_TABLE_BYTES_MAX {
        return Err(Error::TooLarge {
            what: "the LCS table".into(),
            size_bytes: table_bytes,
            limit_bytes: LCS_TABLE_BYTES_MAX,
        });
    }
    let columns = second.len() + 1;
    // table[i * columns + j]: the LCS length of first[..i] and second[..j].
    // Lengths fit in u32: the bound keeps both strings far below 2^32.
    let mut table = vec![0u32; (first.len() + 1) * columns];
    for i in 1..=first.len() {
        for j in 1..=second.len() {
            table[i * columns + j] = if first[i - 1] == second[j - 1] {
                table[(i - 1) * columns + j - 1] + 1
            } else {
                table[(i - 1) * columns + j].max(table[i * columns + j - 1])
            };
        }
    }
    let length = table[first.len() * columns + second.len()] as usize;
    let mut subsequence = vec![0u8; length];
    let mut matches = Vec::new();
    // The walk back, as Redis does it. `run` is the run being tracked:
    // (first start, first end, second start, second end).
    let mut run: Option<(usize, usize, usize, usize)> = None;
    let (mut i, mut j, mut remaining) = (first.len(), second.len(), length);
    while i > 0 && j > 0 {
        let mut emit = false;
        if first[i - 1] == second[j - 1] {
            subsequence[remaining - 1] = first[i - 1];
            match &mut run {
                None => run = Some((i - 1, i - 1, j - 1, j - 1)),
                Some((first_start, _, second_start, _))
                    if *first_start == i && *second_start == j =>
                {
                    *first_start -= 1;
                    *second_start -= 1;
                }
                // Not contiguous: Redis emits the tracked run (and this
                // byte starts no run of its own).
                Some(_) => emit = true,
            }
            if run.is_some_and(|(first_start, _, second_start, _)| {
                first_start == 0 || second_start == 0
            }) {
                emit = true;
            }
            remaining -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * columns + j] > table[i * columns + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = run.is_some();
        }
        // `run.take()` ends the run whether or not it is kept.
        if emit
            && let Some((first_start, first_end, second_start, second_end)) = run.take()
            && want_matches
        {
            matches.push(LcsMatch {
                first: (first_start as u64, first_end as u64),
                second: (second_start as u64, second_end as u64),
            });
        }
    }
    Ok((subsequence, matches))
}
