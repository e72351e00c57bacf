//! What a key holds: a string or one of four collections.
//!
//! Every collection keeps its own byte count up to date as it changes, so
//! the store can charge an entry its exact size in O(1) after any
//! operation. What an element costs is a fixed formula (its bytes plus a
//! fixed per-element overhead, not `size_of`), so every replica and
//! platform agrees on it:
//!
//! | type | per element | structure |
//! |---|---|---|
//! | string | the bytes | `Vec<u8>` |
//! | hash | field + value + [`HASH_FIELD_OVERHEAD_BYTES`] | `BTreeMap` field → value |
//! | set | member + [`SET_MEMBER_OVERHEAD_BYTES`] | `BTreeSet` |
//! | list | element + [`LIST_ELEMENT_OVERHEAD_BYTES`] | `VecDeque` |
//! | sorted set | 2 × member + [`ZSET_MEMBER_OVERHEAD_BYTES`] (the member is held twice) | `BTreeMap` member → score + an order-statistic treap of (score, member) (`zset.rs`) |
//!
//! **Order.** Hashes and sets iterate in byte order of their fields and
//! members: Redis promises no order there, and byte order is the same on
//! every replica and after a snapshot (a hash map's order would depend on
//! its history). Lists keep their order; sorted sets iterate by score, then
//! member bytes, as Redis does.
//!
//! **Costs.** Hash and set lookups are O(log n) (Redis: O(1)), which buys
//! the replica-independent order. Sorted-set insert, delete, score lookup,
//! rank, and ranges by rank, score or member are O(log n + answer), as in
//! Redis's skip list.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

pub use super::order_tree::Walk;
pub use super::zset::{LexBound, Score, ScoreBound, ZSetValue};

/// Bytes charged per hash field on top of the field and its value.
pub const HASH_FIELD_OVERHEAD_BYTES: u64 = 32;
/// Bytes charged per set member on top of its bytes.
pub const SET_MEMBER_OVERHEAD_BYTES: u64 = 24;
/// Bytes charged per list element on top of its bytes.
pub const LIST_ELEMENT_OVERHEAD_BYTES: u64 = 16;
/// Bytes charged per sorted-set member on top of twice its bytes (the
/// member map and the score index each hold a copy) and its score.
pub const ZSET_MEMBER_OVERHEAD_BYTES: u64 = 48;

/// The type of a value, as Redis's `TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    String,
    Hash,
    Set,
    List,
    ZSet,
}

impl Kind {
    /// Redis's name for the type (`TYPE`'s answer).
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::List => "list",
            Kind::ZSet => "zset",
        }
    }
}

/// What a key holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// Serde bytes: bincode lays them out as a `Vec<u8>`'s sequence (the
    /// snapshot format is unchanged), copied in one go.
    Str(#[serde(with = "serde_bytes")] Vec<u8>),
    Hash(HashValue),
    Set(SetValue),
    List(ListValue),
    ZSet(ZSetValue),
}

impl Default for Value {
    fn default() -> Value {
        Value::Str(Vec::new())
    }
}

impl Value {
    /// An empty value of `kind`.
    pub fn empty(kind: Kind) -> Value {
        match kind {
            Kind::String => Value::Str(Vec::new()),
            Kind::Hash => Value::Hash(HashValue::default()),
            Kind::Set => Value::Set(SetValue::default()),
            Kind::List => Value::List(ListValue::default()),
            Kind::ZSet => Value::ZSet(ZSetValue::default()),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::String,
            Value::Hash(_) => Kind::Hash,
            Value::Set(_) => Kind::Set,
            Value::List(_) => Kind::List,
            Value::ZSet(_) => Kind::ZSet,
        }
    }

    /// The bytes the value counts against the capacity (see the module docs).
    pub fn bytes(&self) -> u64 {
        match self {
            Value::Str(bytes) => bytes.len() as u64,
            Value::Hash(hash) => hash.0.bytes,
            Value::Set(set) => set.0.bytes,
            Value::List(list) => list.0.bytes,
            Value::ZSet(zset) => zset.bytes(),
        }
    }

    /// Whether the value is a collection with no element (Redis removes
    /// such keys; an empty string is a value).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::Hash(hash) => hash.is_empty(),
            Value::Set(set) => set.is_empty(),
            Value::List(list) => list.is_empty(),
            Value::ZSet(zset) => zset.is_empty(),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&[u8]> {
        match self {
            Value::Str(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Recounts the bytes from the elements and compares them with the
    /// kept count (and, for sorted sets, the two indexes); O(n), for tests
    /// and restore.
    pub fn check_invariants(&self) -> Result<(), String> {
        let (kept, counted) = match self {
            Value::Str(_) => return Ok(()),
            Value::Hash(hash) => (
                hash.0.bytes,
                hash.0
                    .fields
                    .iter()
                    .map(|(field, value)| hash_field_bytes(field, value))
                    .sum(),
            ),
            Value::Set(set) => (
                set.0.bytes,
                set.0.members.iter().map(|m| set_member_bytes(m)).sum(),
            ),
            Value::List(list) => (
                list.0.bytes,
                list.0
                    .items
                    .iter()
                    .map(|item| list_element_bytes(item))
                    .sum(),
            ),
            Value::ZSet(zset) => (zset.bytes(), zset.check_indexes()?),
        };
        if kept != counted {
            return Err(format!(
                "{} value: {kept} bytes kept, {counted} counted",
                self.kind().name()
            ));
        }
        Ok(())
    }
}

/// What a hash field costs.
pub fn hash_field_bytes(field: &[u8], value: &[u8]) -> u64 {
    field.len() as u64 + value.len() as u64 + HASH_FIELD_OVERHEAD_BYTES
}

/// What a set member costs.
pub fn set_member_bytes(member: &[u8]) -> u64 {
    member.len() as u64 + SET_MEMBER_OVERHEAD_BYTES
}

/// What a list element costs.
pub fn list_element_bytes(element: &[u8]) -> u64 {
    element.len() as u64 + LIST_ELEMENT_OVERHEAD_BYTES
}

/// What a sorted-set member costs.
pub fn zset_member_bytes(member: &[u8]) -> u64 {
    2 * member.len() as u64 + ZSET_MEMBER_OVERHEAD_BYTES
}

/// A hash: fields to values, in field byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HashValue(Box<HashParts>);

/// A hash's contents, behind one pointer so that a [`Value`] stays as
/// small as a string's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct HashParts {
    fields: BTreeMap<Vec<u8>, Vec<u8>>,
    bytes: u64,
}

impl HashValue {
    pub fn len(&self) -> usize {
        self.0.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.fields.is_empty()
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.0.fields.get(field).map(Vec::as_slice)
    }

    /// Sets a field; returns whether it is new.
    pub fn insert(&mut self, field: &[u8], value: Vec<u8>) -> bool {
        self.0.bytes += hash_field_bytes(field, &value);
        match self.0.fields.get_mut(field) {
            Some(old) => {
                self.0.bytes -= hash_field_bytes(field, old);
                *old = value;
                false
            }
            None => {
                self.0.fields.insert(field.to_vec(), value);
                true
            }
        }
    }

    /// Removes a field; returns whether it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.0.fields.remove(field) {
            Some(value) => {
                self.0.bytes -= hash_field_bytes(field, &value);
                true
            }
            None => false,
        }
    }

    /// Fields and values in field byte order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> {
        self.0
            .fields
            .iter()
            .map(|(field, value)| (field.as_slice(), value.as_slice()))
    }

    /// The `index`th field in iteration order (O(index)).
    pub fn nth(&self, index: usize) -> Option<(&[u8], &[u8])> {
        self.iter().nth(index)
    }
}

/// A set of members, in byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SetValue(Box<SetParts>);

/// A set's contents, behind one pointer so that a [`Value`] stays as
/// small as a string's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SetParts {
    members: BTreeSet<Vec<u8>>,
    bytes: u64,
}

impl SetValue {
    pub fn len(&self) -> usize {
        self.0.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.members.is_empty()
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.0.members.contains(member)
    }

    /// Adds a member; returns whether it is new.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        if self.0.members.contains(member) {
            return false;
        }
        self.0.bytes += set_member_bytes(member);
        self.0.members.insert(member.to_vec());
        true
    }

    /// Removes a member; returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let removed = self.0.members.remove(member);
        if removed {
            self.0.bytes -= set_member_bytes(member);
        }
        removed
    }

    /// Members in byte order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.0.members.iter().map(Vec::as_slice)
    }

    /// The `index`th member in byte order (O(index)).
    pub fn nth(&self, index: usize) -> Option<&[u8]> {
        self.iter().nth(index)
    }
}

/// A list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ListValue(Box<ListParts>);

/// A list's contents, behind one pointer so that a [`Value`] stays as
/// small as a string's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ListParts {
    items: VecDeque<Vec<u8>>,
    bytes: u64,
}

impl ListValue {
    pub fn len(&self) -> usize {
        self.0.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.items.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.0.items.get(index).map(Vec::as_slice)
    }

    pub fn push_front(&mut self, element: Vec<u8>) {
        self.0.bytes += list_element_bytes(&element);
        self.0.items.push_front(element);
    }

    pub fn push_back(&mut self, element: Vec<u8>) {
        self.0.bytes += list_element_bytes(&element);
        self.0.items.push_back(element);
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let element = self.0.items.pop_front()?;
        self.0.bytes -= list_element_bytes(&element);
        Some(element)
    }

    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let element = self.0.items.pop_back()?;
        self.0.bytes -= list_element_bytes(&element);
        Some(element)
    }

    /// Replaces the element at `index`; returns false if out of range.
    pub fn set(&mut self, index: usize, element: Vec<u8>) -> bool {
        let Some(slot) = self.0.items.get_mut(index) else {
            return false;
        };
        self.0.bytes = self.0.bytes - list_element_bytes(slot) + list_element_bytes(&element);
        *slot = element;
        true
    }

    /// Inserts before position `index` (`len`: at the end).
    pub fn insert(&mut self, index: usize, element: Vec<u8>) {
        self.0.bytes += list_element_bytes(&element);
        self.0.items.insert(index, element);
    }

    /// Removes the element at `index`.
    pub fn remove(&mut self, index: usize) -> Option<Vec<u8>> {
        let element = self.0.items.remove(index)?;
        self.0.bytes -= list_element_bytes(&element);
        Some(element)
    }

    /// Keeps only positions `start..end` (clamped).
    pub fn retain_range(&mut self, start: usize, end: usize) {
        let end = end.min(self.0.items.len());
        let start = start.min(end);
        self.0.items.truncate(end);
        for _ in 0..start {
            self.pop_front();
        }
        self.0.bytes = self
            .0
            .items
            .iter()
            .map(|item| list_element_bytes(item))
            .sum();
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.0.items.iter().map(Vec::as_slice)
    }

    /// Removes elements equal to `element`, Redis's `LREM`: `count` > 0
    /// removes the first `count` from the head, < 0 the first `-count`
    /// from the tail, 0 all of them. Returns how many were removed; one
    /// pass, O(n).
    pub fn remove_equal(&mut self, element: &[u8], count: i64) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
        };
        let mut removed = 0;
        let mut kept = VecDeque::with_capacity(self.0.items.len());
        if count >= 0 {
            for item in self.0.items.drain(..) {
                if removed < limit && item == element {
                    removed += 1;
                } else {
                    kept.push_back(item);
                }
            }
        } else {
            for item in self.0.items.drain(..).rev() {
                if removed < limit && item == element {
                    removed += 1;
                } else {
                    kept.push_front(item);
                }
            }
        }
        self.0.items = kept;
        self.0.bytes -= removed as u64 * list_element_bytes(element);
        removed
    }

    /// Positions `start..end` (clamped), in order.
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &[u8]> {
        let end = end.min(self.0.items.len());
        let start = start.min(end);
        self.0.items.range(start..end).map(Vec::as_slice)
    }
}
