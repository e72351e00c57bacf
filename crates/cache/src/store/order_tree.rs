//! The score index of a sorted set: an order-statistic treap keyed by
//! (score, member).
//!
//! Every node knows the size of its subtree, so finding a member's rank,
//! the member at a rank, and the number of members below a bound all walk
//! one path from the root: O(depth). A treap's depth is O(log n) expected
//! when its priorities are random and independent of the keys; here they
//! come from a SplitMix64 sequence the tree owns, so no choice of members
//! or scores by a client can unbalance it, and the same operations give
//! the same tree on every replica. (The shape never shows in an answer:
//! a restored tree is rebuilt with other priorities and answers the same.)
//!
//! Insert and remove are a split and a merge, O(log n) expected. Walks in
//! either direction start at any rank in O(log n) and then cost O(1)
//! amortized per member.

use std::cmp::Ordering;

use super::zset::Score;

type Link = Option<Box<Node>>;

#[derive(Debug, Clone)]
struct Node {
    score: Score,
    member: Vec<u8>,
    priority: u64,
    /// Nodes in this subtree, this one included.
    size: usize,
    left: Link,
    right: Link,
}

impl Node {
    fn key_cmp(&self, score: Score, member: &[u8]) -> Ordering {
        self.score
            .cmp(&score)
            .then_with(|| self.member.as_slice().cmp(member))
    }

    fn refresh_size(&mut self) {
        self.size = 1 + size(&self.left) + size(&self.right);
    }
}

fn size(link: &Link) -> usize {
    link.as_ref().map_or(0, |node| node.size)
}

/// An ordered multiset of (score, member) with rank queries; the caller
/// (`ZSetValue`) guarantees each member appears once.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrderTree {
    root: Link,
    /// SplitMix64 state for the next node's priority.
    priority_state: u64,
}

/// Splits `link` into the nodes for which `goes_left` holds (a prefix of
/// the order: the caller guarantees the predicate is monotonic) and the
/// rest.
fn split(link: Link, goes_left: &dyn Fn(&Node) -> bool) -> (Link, Link) {
    match link {
        None => (None, None),
        Some(mut node) => {
            if goes_left(&node) {
                let (low, high) = split(node.right.take(), goes_left);
                node.right = low;
                node.refresh_size();
                (Some(node), high)
            } else {
                let (low, high) = split(node.left.take(), goes_left);
                node.left = high;
                node.refresh_size();
                (low, Some(node))
            }
        }
    }
}

/// Joins two treaps where every key of `low` sorts before every key of
/// `high`, keeping the heap order of priorities.
fn merge(low: Link, high: Link) -> Link {
    match (low, high) {
        (None, high) => high,
        (low, None) => low,
        (Some(mut low), Some(mut high)) => {
            if low.priority >= high.priority {
                low.right = merge(low.right.take(), Some(high));
                low.refresh_size();
                Some(low)
            } else {
                high.left = merge(Some(low), high.left.take());
                high.refresh_size();
                Some(high)
            }
        }
    }
}

impl OrderTree {
    pub(crate) fn len(&self) -> usize {
        size(&self.root)
    }

    fn next_priority(&mut self) -> u64 {
        self.priority_state = self.priority_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.priority_state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Adds (score, member); the caller guarantees it is absent.
    pub(crate) fn insert(&mut self, score: Score, member: Vec<u8>) {
        let node = Box::new(Node {
            score,
            member,
            priority: self.next_priority(),
            size: 1,
            left: None,
            right: None,
        });
        let (low, high) = split(self.root.take(), &|other: &Node| {
            other.key_cmp(node.score, &node.member) == Ordering::Less
        });
        self.root = merge(merge(low, Some(node)), high);
    }

    /// Removes (score, member); returns whether it was there.
    pub(crate) fn remove(&mut self, score: Score, member: &[u8]) -> bool {
        let (low, rest) = split(self.root.take(), &|node: &Node| {
            node.key_cmp(score, member) == Ordering::Less
        });
        let (found, high) = split(rest, &|node: &Node| {
            node.key_cmp(score, member) != Ordering::Greater
        });
        self.root = merge(low, high);
        found.is_some()
    }

    /// How many entries satisfy `below`, a predicate that holds on a
    /// prefix of the order (the caller guarantees it is monotonic).
    pub(crate) fn count_prefix(&self, below: impl Fn(Score, &[u8]) -> bool) -> usize {
        let mut count = 0;
        let mut link = &self.root;
        while let Some(node) = link {
            if below(node.score, &node.member) {
                count += size(&node.left) + 1;
                link = &node.right;
            } else {
                link = &node.left;
            }
        }
        count
    }

    /// The 0-based position of (score, member) in the order, counting
    /// the entries before it (whether or not it is present).
    pub(crate) fn rank(&self, score: Score, member: &[u8]) -> usize {
        self.count_prefix(|other_score, other_member| {
            other_score
                .cmp(&score)
                .then_with(|| other_member.cmp(member))
                == Ordering::Less
        })
    }

    /// Entries from rank `start` on, lowest first (`forward`) or from rank
    /// `start` down to rank 0 (`!forward`); at most `limit` of them.
    pub(crate) fn walk(&self, start: usize, forward: bool, limit: usize) -> Walk<'_> {
        let available = if forward {
            self.len().saturating_sub(start)
        } else if start < self.len() {
            start + 1
        } else {
            0
        };
        let mut walk = Walk {
            stack: Vec::new(),
            forward,
            remaining: available.min(limit),
        };
        if walk.remaining == 0 {
            return walk;
        }
        // Descend to rank `start`, keeping the ancestors still to visit in
        // the walk's direction.
        let mut index = if forward {
            start
        } else {
            self.len() - 1 - start
        };
        let mut link = &self.root;
        while let Some(node) = link {
            let (first, second) = walk.children(node);
            let before = size(first);
            match index.cmp(&before) {
                Ordering::Less => {
                    walk.stack.push(node);
                    link = first;
                }
                Ordering::Equal => {
                    walk.stack.push(node);
                    break;
                }
                Ordering::Greater => {
                    index -= before + 1;
                    link = second;
                }
            }
        }
        walk
    }

    /// Checks sizes, order and heap order; the (score, member) pairs in
    /// order. O(n), for tests and restore.
    pub(crate) fn check(&self) -> Result<Vec<(Score, &[u8])>, String> {
        fn visit<'a>(
            link: &'a Link,
            parent_priority: u64,
            out: &mut Vec<(Score, &'a [u8])>,
        ) -> Result<usize, String> {
            let Some(node) = link else {
                return Ok(0);
            };
            if node.priority > parent_priority {
                return Err("sorted set: score index breaks heap order".to_owned());
            }
            let left = visit(&node.left, node.priority, out)?;
            out.push((node.score, &node.member));
            let right = visit(&node.right, node.priority, out)?;
            if node.size != left + right + 1 {
                return Err("sorted set: score index subtree size is wrong".to_owned());
            }
            Ok(node.size)
        }
        let mut entries = Vec::with_capacity(self.len());
        visit(&self.root, u64::MAX, &mut entries)?;
        let ordered = entries
            .windows(2)
            .all(|pair| (pair[0].0, pair[0].1) < (pair[1].0, pair[1].1));
        if !ordered {
            return Err("sorted set: score index out of order".to_owned());
        }
        Ok(entries)
    }
}

/// An in-order walk over part of an `OrderTree`, in either direction;
/// yields (member, score).
pub struct Walk<'a> {
    /// Nodes still to visit, the next on top (each with the part of its
    /// subtree after it in the walk's direction not yet visited).
    stack: Vec<&'a Node>,
    forward: bool,
    remaining: usize,
}

impl<'a> Walk<'a> {
    /// The child visited first and the one visited last in this direction.
    fn children(&self, node: &'a Node) -> (&'a Link, &'a Link) {
        if self.forward {
            (&node.left, &node.right)
        } else {
            (&node.right, &node.left)
        }
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        if self.remaining == 0 {
            return None;
        }
        let node = self.stack.pop()?;
        self.remaining -= 1;
        let (_, mut link) = self.children(node);
        while let Some(child) = link {
            self.stack.push(child);
            link = self.children(child).0;
        }
        Some((&node.member, node.score.0))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Walk<'_> {}
