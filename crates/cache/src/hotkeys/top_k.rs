//! A bounded list of the heaviest keys seen.

use std::borrow::Borrow;

/// The `capacity` keys with the highest counts offered so far.
///
/// In the style of space-saving (Metwally et al.): the list never grows past
/// its capacity, and a newcomer replaces the lightest member only when its
/// count is larger. Counts come from the caller (the count-min estimate), so
/// a key that left the list and comes back re-enters with its full history.
/// Ties are broken by key order, so the answer is deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopK<K> {
    capacity: usize,
    /// `(key, key_hash, count)`, unordered; `capacity` is small, so linear
    /// scans are cheaper than keeping an ordered structure up to date.
    members: Vec<(K, u64, u64)>,
}

impl<K: Ord + Clone> TopK<K> {
    /// # Panics
    /// If `capacity` is zero.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "top-k capacity must be positive");
        TopK {
            capacity,
            members: Vec::with_capacity(capacity),
        }
    }

    /// Offers `key` (or a borrowed form of it: a key is copied only when
    /// it joins the list) with its current `count`.
    pub fn offer<Q>(&mut self, key: &Q, key_hash: u64, count: u64)
    where
        K: Borrow<Q>,
        Q: Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(member) = self
            .members
            .iter_mut()
            .find(|member| member.1 == key_hash && member.0.borrow() == key)
        {
            member.2 = member.2.max(count);
            return;
        }
        if self.members.len() < self.capacity {
            self.members.push((key.to_owned(), key_hash, count));
            return;
        }
        let lightest = self
            .members
            .iter()
            .enumerate()
            .min_by(|(_, left), (_, right)| left.2.cmp(&right.2).then_with(|| right.0.cmp(&left.0)))
            .map(|(index, _)| index);
        if let Some(index) = lightest
            && count > self.members[index].2
        {
            self.members[index] = (key.to_owned(), key_hash, count);
        }
    }

    /// Halves every count (the decay step).
    pub fn halve(&mut self) {
        for member in &mut self.members {
            member.2 /= 2;
        }
        self.members.retain(|member| member.2 > 0);
    }

    /// Up to `limit` members, heaviest first, ties by key.
    pub fn top(&self, limit: usize) -> Vec<(K, u64)> {
        let mut sorted: Vec<(K, u64)> = self
            .members
            .iter()
            .map(|(key, _, count)| (key.clone(), *count))
            .collect();
        sorted.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
        sorted.truncate(limit);
        sorted
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}
