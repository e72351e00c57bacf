//! A sorted set: members with scores, ordered by (score, member bytes).
//!
//! Two indexes, as Redis keeps a dict and a skip list: a `BTreeMap` from
//! member to score (score lookup, membership) and an [`OrderTree`] of
//! (score, member) with subtree sizes (rank, ranges by rank, score or
//! member). Both change together in [`ZSetValue::insert`] and
//! [`ZSetValue::remove`], so every operation is O(log n) plus the answer.
//!
//! **Scores.** An `f64`, never NaN (callers refuse it; [`ZSetValue::insert`]
//! asserts); `+inf` and `-inf` are scores like any other. `-0.0` is stored
//! as `0.0`, so the two never sort apart and a score reads back as `0`, as
//! in Redis.
//!
//! **Bytes.** Each member costs [`zset_member_bytes`]: twice its bytes
//! (one copy in each index) plus a fixed overhead; the count is kept as
//! members come and go, so the store charges the set its size in O(1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::order_tree::{OrderTree, Walk};
use super::value::zset_member_bytes;

/// A score ordered by `f64::total_cmp` (NaN is never stored; `-0.0` is
/// stored as `0.0`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One end of a score range (`ZRANGEBYSCORE`'s `5`, `(5`, `-inf`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ScoreBound {
    Inclusive(f64),
    Exclusive(f64),
}

impl ScoreBound {
    pub fn value(self) -> f64 {
        match self {
            ScoreBound::Inclusive(value) | ScoreBound::Exclusive(value) => value,
        }
    }

    /// Whether `score` lies below this bound taken as a range's minimum.
    fn below_min(self, score: f64) -> bool {
        match self {
            ScoreBound::Inclusive(bound) => score < bound,
            ScoreBound::Exclusive(bound) => score <= bound,
        }
    }

    /// Whether `score` lies within this bound taken as a range's maximum.
    fn within_max(self, score: f64) -> bool {
        match self {
            ScoreBound::Inclusive(bound) => score <= bound,
            ScoreBound::Exclusive(bound) => score < bound,
        }
    }
}

/// One end of a member range (`ZRANGEBYLEX`'s `[a`, `(a`, `-`, `+`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LexBound {
    /// `-`: below every member.
    Lowest,
    /// `+`: above every member.
    Highest,
    Inclusive(Vec<u8>),
    Exclusive(Vec<u8>),
}

impl LexBound {
    fn below_min(&self, member: &[u8]) -> bool {
        match self {
            LexBound::Lowest => false,
            LexBound::Highest => true,
            LexBound::Inclusive(bound) => member < bound.as_slice(),
            LexBound::Exclusive(bound) => member <= bound.as_slice(),
        }
    }

    fn within_max(&self, member: &[u8]) -> bool {
        match self {
            LexBound::Lowest => false,
            LexBound::Highest => true,
            LexBound::Inclusive(bound) => member <= bound.as_slice(),
            LexBound::Exclusive(bound) => member < bound.as_slice(),
        }
    }
}

/// A sorted set: members with scores, ordered by (score, member bytes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "ZSetParts", into = "ZSetParts")]
pub struct ZSetValue(Box<ZSetIndexes>);

/// A sorted set's contents, behind one pointer so that a [`Value`] stays
/// as small as a string's.
#[derive(Debug, Clone, Default)]
struct ZSetIndexes {
    scores: BTreeMap<Vec<u8>, f64>,
    order: OrderTree,
    bytes: u64,
}

/// Two sets are equal when they hold the same members with the same
/// scores (the score index's shape is not part of the value).
impl PartialEq for ZSetValue {
    fn eq(&self, other: &ZSetValue) -> bool {
        self.0.scores.len() == other.0.scores.len()
            && self
                .0
                .scores
                .iter()
                .zip(other.0.scores.iter())
                .all(|((a, sa), (b, sb))| a == b && Score(*sa) == Score(*sb))
    }
}

impl Eq for ZSetValue {}

/// The stored form of a sorted set: the member map alone; the score index
/// is rebuilt from it.
#[derive(Serialize, Deserialize)]
struct ZSetParts {
    scores: BTreeMap<Vec<u8>, f64>,
}

impl From<ZSetParts> for ZSetValue {
    fn from(parts: ZSetParts) -> ZSetValue {
        let mut zset = ZSetValue::default();
        for (member, score) in parts.scores {
            // A NaN score in a snapshot is caught by check_indexes.
            zset.0.bytes += zset_member_bytes(&member);
            zset.0.order.insert(Score(score), member.clone());
            zset.0.scores.insert(member, score);
        }
        zset
    }
}

impl From<ZSetValue> for ZSetParts {
    fn from(zset: ZSetValue) -> ZSetParts {
        ZSetParts {
            scores: zset.0.scores,
        }
    }
}

impl ZSetValue {
    pub fn len(&self) -> usize {
        self.0.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.scores.is_empty()
    }

    /// The bytes the set counts against the capacity (see the module docs).
    pub fn bytes(&self) -> u64 {
        self.0.bytes
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.0.scores.get(member).copied()
    }

    /// Sets a member's score (`-0.0` is stored as `0.0`); returns whether
    /// it is new. O(log n).
    ///
    /// # Panics
    /// If `score` is NaN (callers refuse NaN first).
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        assert!(!score.is_nan(), "NaN score for a sorted set");
        let score = if score == 0.0 { 0.0 } else { score };
        match self.0.scores.get_mut(member) {
            Some(old) => {
                if Score(*old) != Score(score) {
                    self.0.order.remove(Score(*old), member);
                    self.0.order.insert(Score(score), member.to_vec());
                    *old = score;
                }
                false
            }
            None => {
                self.0.bytes += zset_member_bytes(member);
                self.0.scores.insert(member.to_vec(), score);
                self.0.order.insert(Score(score), member.to_vec());
                true
            }
        }
    }

    /// Removes a member; returns whether it was there. O(log n).
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.0.scores.remove(member) {
            Some(score) => {
                let removed = self.0.order.remove(Score(score), member);
                assert!(removed, "sorted set: a member missing from the score index");
                self.0.bytes -= zset_member_bytes(member);
                true
            }
            None => false,
        }
    }

    /// Members with their scores, lowest score first (ties by member bytes).
    pub fn iter(&self) -> Walk<'_> {
        self.0.order.walk(0, true, usize::MAX)
    }

    /// Members by rank: from rank `start` up (`forward`) or down to rank 0
    /// (`!forward`), at most `limit` of them. O(log n + answer).
    pub fn walk(&self, start: usize, forward: bool, limit: usize) -> Walk<'_> {
        self.0.order.walk(start, forward, limit)
    }

    /// Members in bytewise order of member (not of score): for scans,
    /// whose cursor is a member.
    pub fn members_from(&self, first: &[u8]) -> impl Iterator<Item = (&[u8], f64)> {
        self.0
            .scores
            .range::<[u8], _>((std::ops::Bound::Included(first), std::ops::Bound::Unbounded))
            .map(|(member, score)| (member.as_slice(), *score))
    }

    /// The member at rank `index` and its score. O(log n).
    pub fn nth(&self, index: usize) -> Option<(&[u8], f64)> {
        self.0.order.walk(index, true, 1).next()
    }

    /// The 0-based position of `member` in score order. O(log n).
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.0.order.rank(Score(score), member))
    }

    /// The ranks `start..end` of the members whose score lies between the
    /// bounds (empty: `start >= end`). O(log n).
    pub fn score_ranks(&self, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
        let start = self.0.order.count_prefix(|score, _| min.below_min(score.0));
        let end = self
            .0
            .order
            .count_prefix(|score, _| max.within_max(score.0));
        (start, end.max(start))
    }

    /// The ranks `start..end` of the members between the bounds by member
    /// bytes; meaningful when every score is equal, as Redis's
    /// `ZRANGEBYLEX` says. O(log n).
    pub fn lex_ranks(&self, min: &LexBound, max: &LexBound) -> (usize, usize) {
        let start = self.0.order.count_prefix(|_, member| min.below_min(member));
        let end = self
            .0
            .order
            .count_prefix(|_, member| max.within_max(member));
        (start, end.max(start))
    }

    /// Members whose score lies between the bounds, in score order
    /// (O(log n + answer)).
    pub fn range_by_score(&self, min: ScoreBound, max: ScoreBound) -> Walk<'_> {
        let (start, end) = self.score_ranks(min, max);
        self.0.order.walk(start, true, end - start)
    }

    /// Members whose score lies between the bounds, highest first
    /// (O(log n + answer)).
    pub fn range_by_score_rev(&self, min: ScoreBound, max: ScoreBound) -> Walk<'_> {
        let (start, end) = self.score_ranks(min, max);
        self.0.order.walk(end.saturating_sub(1), false, end - start)
    }

    /// Checks the two indexes against each other (same members, same
    /// scores, no NaN, a well-formed tree) and answers the bytes counted
    /// from the members. O(n), for tests and restore.
    pub fn check_indexes(&self) -> Result<u64, String> {
        let entries = self.0.order.check()?;
        if entries.len() != self.0.scores.len() {
            return Err("sorted set: score index and member map differ in size".to_owned());
        }
        for (score, member) in entries {
            if score.0.is_nan() {
                return Err("sorted set: NaN score".to_owned());
            }
            if self.0.scores.get(member).map(|found| Score(*found)) != Some(score) {
                return Err("sorted set: score index and member map differ".to_owned());
            }
        }
        Ok(self
            .0
            .scores
            .keys()
            .map(|member| zset_member_bytes(member))
            .sum())
    }
}
