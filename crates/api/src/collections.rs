//! Operations on hashes and sets ([`Op::Hash`], [`Op::Set`]'s sibling
//! [`Op::Sets`]), with Redis 7's meaning, and `TYPE`.
//!
//! Each is one deterministic state-machine command: the same store,
//! operation and log time give the same answer and the same store on every
//! replica. Random choices (`SPOP`, `SRANDMEMBER`, `HRANDFIELD`) draw from
//! a seed the operation carries: the node that receives the command picks
//! it, the log carries it, so every replica chooses the same members.
//!
//! **Bounds.** A command carries at most `max_value_bytes` of fields,
//! values and members in total ([`Op::value_size_bytes`]); a collection
//! holds at most `max_collection_elements` elements (a write that would
//! pass it is refused with [`Error::TooManyElements`] and changes
//! nothing), and its bytes count against the store's capacity like any
//! entry. A count argument (`SPOP`, `SRANDMEMBER`, `HRANDFIELD`) is
//! capped at `max_collection_elements` answers.
//!
//! Reads of a key that holds another type answer [`Error::WrongType`];
//! an absent key reads as an empty collection.

use cache::Store;
use cache::store::value::{HashValue, SetValue, hash_field_bytes, set_member_bytes};
use cache::store::{Kind, Value};
use serde::{Deserialize, Serialize};

use crate::op::{Float, format_float};
use crate::set_algebra::Combination;
use crate::{Error, Limits, Op, Outcome, Reply};

/// An operation on the hash at [`Op::Hash`]'s key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashOp {
    /// `HSET`/`HMSET` (later pairs win); with `only_new`, `HSETNX` (one
    /// pair, set only if the field is absent). [`Outcome::Integer`]:
    /// fields added.
    Set {
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        only_new: bool,
    },
    /// `HDEL`: [`Outcome::Integer`], fields removed.
    Del { fields: Vec<Vec<u8>> },
    /// `HINCRBY`: [`Outcome::Integer`], the new value.
    IncrBy { field: Vec<u8>, delta: i64 },
    /// `HINCRBYFLOAT`: [`Outcome::Value`], the new value as stored.
    IncrByFloat { field: Vec<u8>, delta: Float },
    /// `HGET`: [`Outcome::Value`]. A read.
    Get { field: Vec<u8> },
    /// `HMGET`: [`Outcome::Values`]. A read.
    MGet { fields: Vec<Vec<u8>> },
    /// `HEXISTS`: [`Outcome::Integer`] 0 or 1. A read.
    Exists { field: Vec<u8> },
    /// `HLEN`: [`Outcome::Integer`]. A read.
    Len,
    /// `HSTRLEN`: [`Outcome::Integer`]. A read.
    StrLen { field: Vec<u8> },
    /// `HGETALL`: [`Outcome::Values`], field, value, field, value, ... in
    /// field byte order. A read.
    GetAll,
    /// `HKEYS`: [`Outcome::Values`] in field byte order. A read.
    Keys,
    /// `HVALS`: [`Outcome::Values`] in field byte order. A read.
    Vals,
    /// `HRANDFIELD`: without `count` one field ([`Outcome::Value`]); with
    /// it, Redis's count rules (positive: distinct, negative: may repeat)
    /// as [`Outcome::Values`], with values interleaved if `with_values`.
    /// Chosen with `seed`. A read.
    RandField {
        count: Option<i64>,
        with_values: bool,
        seed: u64,
    },
    /// `HSCAN`: one step (the `element_scan` module), [`Outcome::Keys`] with
    /// field, value, field, value, ... A read.
    Scan {
        position: u64,
        count: u64,
        pattern: Option<Vec<u8>>,
    },
}

impl HashOp {
    pub fn is_read(&self) -> bool {
        !matches!(
            self,
            HashOp::Set { .. }
                | HashOp::Del { .. }
                | HashOp::IncrBy { .. }
                | HashOp::IncrByFloat { .. }
        )
    }

    /// The bytes the operation carries.
    pub fn carried_bytes(&self) -> usize {
        match self {
            HashOp::Set { pairs, .. } => pairs
                .iter()
                .map(|(field, value)| field.len() + value.len())
                .sum(),
            HashOp::Del { fields } | HashOp::MGet { fields } => fields.iter().map(Vec::len).sum(),
            HashOp::IncrBy { field, .. }
            | HashOp::IncrByFloat { field, .. }
            | HashOp::Get { field }
            | HashOp::Exists { field }
            | HashOp::StrLen { field } => field.len(),
            HashOp::Scan { pattern, .. } => pattern.as_ref().map_or(0, Vec::len),
            HashOp::Len
            | HashOp::GetAll
            | HashOp::Keys
            | HashOp::Vals
            | HashOp::RandField { .. } => 0,
        }
    }
}

/// An operation on the set at [`Op::Sets`]'s key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetOp {
    /// `SADD`: [`Outcome::Integer`], members added.
    Add { members: Vec<Vec<u8>> },
    /// `SREM`: [`Outcome::Integer`], members removed.
    Rem { members: Vec<Vec<u8>> },
    /// `SPOP`: without `count` one member ([`Outcome::Value`]), with it
    /// up to `count` distinct members ([`Outcome::Values`]); chosen with
    /// `seed`.
    Pop { count: Option<u64>, seed: u64 },
    /// `SISMEMBER`: [`Outcome::Integer`] 0 or 1. A read.
    IsMember { member: Vec<u8> },
    /// `SMISMEMBER`: [`Outcome::Integers`], 0 or 1 each. A read.
    MIsMember { members: Vec<Vec<u8>> },
    /// `SMEMBERS`: [`Outcome::Values`] in byte order. A read.
    Members,
    /// `SCARD`: [`Outcome::Integer`]. A read.
    Card,
    /// `SRANDMEMBER`: like [`HashOp::RandField`] without values. A read.
    RandMember { count: Option<i64>, seed: u64 },
    /// `SINTER`/`SUNION`/`SDIFF` of the key's set and `others`, in that
    /// order: [`Outcome::Values`] in byte order. A read (see
    /// [`crate::set_algebra`]).
    Combine {
        how: Combination,
        others: Vec<Vec<u8>>,
    },
    /// `SINTERSTORE`/`SUNIONSTORE`/`SDIFFSTORE`: the combination of
    /// `sources` replaces whatever the key held (an empty one removes
    /// it). [`Outcome::Integer`]: its size.
    Store {
        how: Combination,
        sources: Vec<Vec<u8>>,
    },
    /// `SINTERCARD`: the size of the intersection of the key's set and
    /// `others`, counting at most `limit` (0: all).
    /// [`Outcome::Integer`]. A read.
    InterCard { others: Vec<Vec<u8>>, limit: u64 },
    /// `SMOVE`: moves `member` from the key's set to `destination`'s.
    /// [`Outcome::Integer`] 1 if it moved, 0 if the source lacks it.
    Move {
        destination: Vec<u8>,
        member: Vec<u8>,
    },
    /// `SSCAN`: one step (the `element_scan` module), [`Outcome::Keys`] with
    /// the members. A read.
    Scan {
        position: u64,
        count: u64,
        pattern: Option<Vec<u8>>,
    },
}

impl SetOp {
    pub fn is_read(&self) -> bool {
        !matches!(
            self,
            SetOp::Add { .. }
                | SetOp::Rem { .. }
                | SetOp::Pop { .. }
                | SetOp::Store { .. }
                | SetOp::Move { .. }
        )
    }

    /// The keys besides [`crate::Op::Sets`]'s own that the operation
    /// reads or writes, in order.
    pub fn other_keys(&self) -> &[Vec<u8>] {
        match self {
            SetOp::Combine { others, .. } | SetOp::InterCard { others, .. } => others,
            SetOp::Store { sources, .. } => sources,
            SetOp::Move { destination, .. } => std::slice::from_ref(destination),
            SetOp::Add { .. }
            | SetOp::Rem { .. }
            | SetOp::Pop { .. }
            | SetOp::IsMember { .. }
            | SetOp::MIsMember { .. }
            | SetOp::Members
            | SetOp::Card
            | SetOp::RandMember { .. }
            | SetOp::Scan { .. } => &[],
        }
    }

    /// Whether the operation names keys besides its own (and so must
    /// find them all in its shard).
    pub fn is_multi_key(&self) -> bool {
        matches!(
            self,
            SetOp::Combine { .. }
                | SetOp::Store { .. }
                | SetOp::InterCard { .. }
                | SetOp::Move { .. }
        )
    }

    /// The bytes the operation carries.
    pub fn carried_bytes(&self) -> usize {
        match self {
            SetOp::Add { members } | SetOp::Rem { members } | SetOp::MIsMember { members } => {
                members.iter().map(Vec::len).sum()
            }
            SetOp::IsMember { member } | SetOp::Move { member, .. } => member.len(),
            SetOp::Scan { pattern, .. } => pattern.as_ref().map_or(0, Vec::len),
            SetOp::Pop { .. }
            | SetOp::Members
            | SetOp::Card
            | SetOp::RandMember { .. }
            | SetOp::Combine { .. }
            | SetOp::Store { .. }
            | SetOp::InterCard { .. } => 0,
        }
    }
}

/// A small deterministic generator (SplitMix64) for the seeded choices.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// `count` distinct positions out of `0..len`, in increasing order
    /// (Floyd's algorithm: O(count log count)).
    fn distinct(&mut self, len: usize, count: usize) -> Vec<usize> {
        let count = count.min(len);
        let mut chosen = std::collections::BTreeSet::new();
        for upper in (len - count)..len {
            let pick = self.below(upper + 1);
            if !chosen.insert(pick) {
                chosen.insert(upper);
            }
        }
        chosen.into_iter().collect()
    }
}

/// Positions a random-member command answers, in answer order: Redis's
/// rules for `count` (positive: distinct, at most the size; negative:
/// `-count` draws that may repeat), capped at `cap`.
pub(crate) fn random_positions(
    len: usize,
    count: i64,
    cap: u64,
    seed: u64,
) -> Result<Vec<usize>, Error> {
    let wanted = count.unsigned_abs();
    if len == 0 || count == 0 {
        return Ok(Vec::new());
    }
    if count < 0 && wanted > cap {
        return Err(Error::TooManyElements {
            count: wanted,
            limit: cap,
        });
    }
    let mut choices = Choices(seed);
    if count > 0 {
        Ok(choices.distinct(len, usize::try_from(wanted).unwrap_or(usize::MAX)))
    } else {
        Ok((0..wanted).map(|_| choices.below(len)).collect())
    }
}

pub(crate) fn wrong_type<T>(kind: Kind, value: Option<&Value>) -> Result<Option<&T>, Error>
where
    Value: AsCollection<T>,
{
    match value {
        None => Ok(None),
        Some(value) if value.kind() == kind => Ok(value.as_collection()),
        Some(_) => Err(Error::WrongType),
    }
}

/// Access to one collection type inside a [`Value`].
pub(crate) trait AsCollection<T> {
    fn as_collection(&self) -> Option<&T>;
    fn as_collection_mut(&mut self) -> &mut T;
}

impl AsCollection<HashValue> for Value {
    fn as_collection(&self) -> Option<&HashValue> {
        match self {
            Value::Hash(hash) => Some(hash),
            _ => None,
        }
    }

    fn as_collection_mut(&mut self) -> &mut HashValue {
        match self {
            Value::Hash(hash) => hash,
            _ => unreachable!("Store::update checked the type"),
        }
    }
}

impl AsCollection<SetValue> for Value {
    fn as_collection(&self) -> Option<&SetValue> {
        match self {
            Value::Set(set) => Some(set),
            _ => None,
        }
    }

    fn as_collection_mut(&mut self) -> &mut SetValue {
        match self {
            Value::Set(set) => set,
            _ => unreachable!("Store::update checked the type"),
        }
    }
}

pub(crate) fn too_many(len: usize, added: usize, limits: &Limits) -> Result<(), Error> {
    let count = (len + added) as u64;
    if added > 0 && count > limits.max_collection_elements {
        return Err(Error::TooManyElements {
            count,
            limit: limits.max_collection_elements,
        });
    }
    Ok(())
}

/// A value of a hash field as Redis reads an integer for `HINCRBY`.
fn hash_integer(value: &[u8]) -> Result<i64, Error> {
    crate::parse_redis_integer(value).ok_or(Error::HashNotInteger)
}

/// A value of a hash field as Redis reads a float for `HINCRBYFLOAT`.
fn hash_float(value: &[u8]) -> Result<f64, Error> {
    crate::execute::parse_float(value).ok_or(Error::HashNotFloat)
}

/// Runs a hash operation (writes through [`Store::update`]).
pub(crate) fn execute_hash(
    store: &mut Store,
    key: &[u8],
    op: &HashOp,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    if op.is_read() {
        let value = store.value(key, now_ms);
        return read_hash(wrong_type(Kind::Hash, value)?, op, limits);
    }
    match op {
        HashOp::Set { pairs, only_new } => {
            let growth = pairs
                .iter()
                .map(|(field, value)| hash_field_bytes(field, value))
                .sum();
            store.update(key, Kind::Hash, growth, now_ms, |value| {
                let hash: &mut HashValue = value.as_collection_mut();
                if *only_new && pairs.iter().any(|(field, _)| hash.get(field).is_some()) {
                    return Ok(Outcome::Integer(0));
                }
                let mut new_fields = std::collections::BTreeSet::new();
                for (field, _) in pairs {
                    if hash.get(field).is_none() {
                        new_fields.insert(field.as_slice());
                    }
                }
                too_many(hash.len(), new_fields.len(), limits)?;
                for (field, value) in pairs {
                    hash.insert(field, value.clone());
                }
                Ok(Outcome::Integer(new_fields.len() as i64))
            })
        }
        HashOp::Del { fields } => store.update(key, Kind::Hash, 0, now_ms, |value| {
            let hash: &mut HashValue = value.as_collection_mut();
            let removed = fields.iter().filter(|field| hash.remove(field)).count();
            Ok(Outcome::Integer(removed as i64))
        }),
        HashOp::IncrBy { field, delta } => {
            // An i64 in decimal is at most 20 bytes.
            let growth = hash_field_bytes(field, &[0; 20]);
            store.update(key, Kind::Hash, growth, now_ms, |value| {
                let hash: &mut HashValue = value.as_collection_mut();
                let current = match hash.get(field) {
                    Some(text) => hash_integer(text)?,
                    None => {
                        too_many(hash.len(), 1, limits)?;
                        0
                    }
                };
                let next = current
                    .checked_add(*delta)
                    .ok_or(Error::IncrementOverflow)?;
                hash.insert(field, next.to_string().into_bytes());
                Ok(Outcome::Integer(next))
            })
        }
        HashOp::IncrByFloat { field, delta } => {
            let current = match wrong_type::<HashValue>(Kind::Hash, store.peek_value(key, now_ms))?
                .and_then(|hash| hash.get(field))
            {
                Some(text) => hash_float(text)?,
                None => 0.0,
            };
            let next = current + delta.0;
            if !next.is_finite() {
                return Err(Error::NotFinite);
            }
            let text = format_float(next).into_bytes();
            let growth = hash_field_bytes(field, &text);
            store.update(key, Kind::Hash, growth, now_ms, |value| {
                let hash: &mut HashValue = value.as_collection_mut();
                if hash.get(field).is_none() {
                    too_many(hash.len(), 1, limits)?;
                }
                hash.insert(field, text.clone());
                Ok(Outcome::Value(Some(text)))
            })
        }
        _ => unreachable!("reads are answered above"),
    }
}

/// Answers a hash read from the hash (`None`: the key is absent).
pub(crate) fn read_hash(hash: Option<&HashValue>, op: &HashOp, limits: &Limits) -> Reply {
    let empty = HashValue::default();
    let hash = hash.unwrap_or(&empty);
    let field_value = |field: &[u8]| hash.get(field).map(<[u8]>::to_vec);
    Ok(match op {
        HashOp::Get { field } => Outcome::Value(field_value(field)),
        HashOp::MGet { fields } => {
            Outcome::Values(fields.iter().map(|field| field_value(field)).collect())
        }
        HashOp::Exists { field } => Outcome::Integer(i64::from(hash.get(field).is_some())),
        HashOp::Len => Outcome::Integer(hash.len() as i64),
        HashOp::StrLen { field } => Outcome::Integer(hash.get(field).map_or(0, <[u8]>::len) as i64),
        HashOp::GetAll => Outcome::Values(
            hash.iter()
                .flat_map(|(field, value)| [Some(field.to_vec()), Some(value.to_vec())])
                .collect(),
        ),
        HashOp::Keys => {
            Outcome::Values(hash.iter().map(|(field, _)| Some(field.to_vec())).collect())
        }
        HashOp::Vals => {
            Outcome::Values(hash.iter().map(|(_, value)| Some(value.to_vec())).collect())
        }
        HashOp::RandField {
            count,
            with_values,
            seed,
        } => match count {
            None => Outcome::Value(
                random_positions(hash.len(), 1, limits.max_collection_elements, *seed)?
                    .first()
                    .and_then(|&index| hash.nth(index))
                    .map(|(field, _)| field.to_vec()),
            ),
            Some(count) => {
                let positions =
                    random_positions(hash.len(), *count, limits.max_collection_elements, *seed)?;
                let fields: Vec<(&[u8], &[u8])> = hash.iter().collect();
                let mut answer = Vec::new();
                for index in positions {
                    let (field, value) = fields[index];
                    answer.push(Some(field.to_vec()));
                    if *with_values {
                        answer.push(Some(value.to_vec()));
                    }
                }
                Outcome::Values(answer)
            }
        },
        HashOp::Scan {
            position,
            count,
            pattern,
        } => {
            let (found, next_position) = crate::element_scan::scan_elements(
                hash.iter(),
                *position,
                *count,
                pattern.as_deref(),
            )?;
            Outcome::Keys {
                keys: found
                    .into_iter()
                    .flat_map(|(field, value)| [field.to_vec(), value.to_vec()])
                    .collect(),
                next_position,
            }
        }
        HashOp::Set { .. }
        | HashOp::Del { .. }
        | HashOp::IncrBy { .. }
        | HashOp::IncrByFloat { .. } => {
            panic!("api::read: a hash write is not a read")
        }
    })
}

/// Runs a set operation (writes through [`Store::update`]).
/// A multi-key collection op's access of each of its keys, for the
/// eviction policy, as a one-key read through the log records.
pub(crate) fn touch_keys(store: &mut Store, key: &[u8], others: &[Vec<u8>], now_ms: u64) {
    for other in std::iter::once(key).chain(others.iter().map(Vec::as_slice)) {
        store.value(other, now_ms);
    }
}

pub(crate) fn execute_set(
    store: &mut Store,
    key: &[u8],
    op: &SetOp,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    if op.is_multi_key() {
        touch_keys(store, key, op.other_keys(), now_ms);
        return if op.is_read() {
            crate::set_algebra::read_algebra(store, key, op, limits, now_ms)
        } else {
            crate::set_algebra::execute_algebra(store, key, op, limits, now_ms)
        };
    }
    if op.is_read() {
        let value = store.value(key, now_ms);
        return read_set(wrong_type(Kind::Set, value)?, op, limits);
    }
    match op {
        SetOp::Add { members } => {
            let growth = members.iter().map(|member| set_member_bytes(member)).sum();
            store.update(key, Kind::Set, growth, now_ms, |value| {
                let set: &mut SetValue = value.as_collection_mut();
                let new: std::collections::BTreeSet<&[u8]> = members
                    .iter()
                    .map(Vec::as_slice)
                    .filter(|member| !set.contains(member))
                    .collect();
                too_many(set.len(), new.len(), limits)?;
                for member in &new {
                    set.insert(member);
                }
                Ok(Outcome::Integer(new.len() as i64))
            })
        }
        SetOp::Rem { members } => store.update(key, Kind::Set, 0, now_ms, |value| {
            let set: &mut SetValue = value.as_collection_mut();
            let removed = members.iter().filter(|member| set.remove(member)).count();
            Ok(Outcome::Integer(removed as i64))
        }),
        SetOp::Pop { count, seed } => store.update(key, Kind::Set, 0, now_ms, |value| {
            let set: &mut SetValue = value.as_collection_mut();
            let wanted = count.unwrap_or(1).min(limits.max_collection_elements);
            let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
            let positions = Choices(*seed).distinct(set.len(), wanted);
            let chosen: Vec<Vec<u8>> = {
                let mut positions = positions.iter().peekable();
                let mut chosen = Vec::new();
                for (index, member) in set.iter().enumerate() {
                    if positions.peek() == Some(&&index) {
                        positions.next();
                        chosen.push(member.to_vec());
                    }
                }
                chosen
            };
            for member in &chosen {
                set.remove(member);
            }
            Ok(match count {
                None => Outcome::Value(chosen.into_iter().next()),
                Some(_) => Outcome::Values(chosen.into_iter().map(Some).collect()),
            })
        }),
        _ => unreachable!("reads are answered above"),
    }
}

/// Answers a set read from the set (`None`: the key is absent).
pub(crate) fn read_set(set: Option<&SetValue>, op: &SetOp, limits: &Limits) -> Reply {
    let empty = SetValue::default();
    let set = set.unwrap_or(&empty);
    Ok(match op {
        SetOp::IsMember { member } => Outcome::Integer(i64::from(set.contains(member))),
        SetOp::MIsMember { members } => Outcome::Integers(
            members
                .iter()
                .map(|member| i64::from(set.contains(member)))
                .collect(),
        ),
        SetOp::Members => Outcome::Values(set.iter().map(|member| Some(member.to_vec())).collect()),
        SetOp::Card => Outcome::Integer(set.len() as i64),
        SetOp::RandMember { count, seed } => {
            let positions = random_positions(
                set.len(),
                count.unwrap_or(1),
                limits.max_collection_elements,
                *seed,
            )?;
            let members: Vec<&[u8]> = if positions.is_empty() {
                Vec::new()
            } else {
                set.iter().collect()
            };
            let mut chosen = positions.iter().map(|&index| members[index].to_vec());
            match count {
                None => Outcome::Value(chosen.next()),
                Some(_) => Outcome::Values(chosen.map(Some).collect()),
            }
        }
        SetOp::Scan {
            position,
            count,
            pattern,
        } => {
            let (found, next_position) = crate::element_scan::scan_elements(
                set.iter().map(|member| (member, ())),
                *position,
                *count,
                pattern.as_deref(),
            )?;
            Outcome::Keys {
                keys: found
                    .into_iter()
                    .map(|(member, ())| member.to_vec())
                    .collect(),
                next_position,
            }
        }
        SetOp::Combine { .. } | SetOp::InterCard { .. } => {
            panic!("api::read: a read of several sets is answered by set_algebra")
        }
        SetOp::Add { .. }
        | SetOp::Rem { .. }
        | SetOp::Pop { .. }
        | SetOp::Store { .. }
        | SetOp::Move { .. } => {
            panic!("api::read: a set write is not a read")
        }
    })
}

/// Reads for the read path (no log entry, nothing changed).
pub(crate) fn read_collection(store: &Store, op: &Op, limits: &Limits, now_ms: u64) -> Reply {
    match op {
        Op::Hash { key, op } => read_hash(
            wrong_type(Kind::Hash, store.peek_value(key, now_ms))?,
            op,
            limits,
        ),
        Op::Sets { key, op } if op.is_multi_key() => {
            crate::set_algebra::read_algebra(store, key, op, limits, now_ms)
        }
        Op::Sets { key, op } => read_set(
            wrong_type(Kind::Set, store.peek_value(key, now_ms))?,
            op,
            limits,
        ),
        Op::List { key, op } => {
            crate::lists::read_list(wrong_type(Kind::List, store.peek_value(key, now_ms))?, op)
        }
        Op::ZSet { key, op } if op.is_multi_key() => {
            crate::zset_algebra::read_zset_combination(store, key, op, limits, now_ms)
        }
        Op::ZSet { key, op } => crate::zsets::read_zset(
            wrong_type(Kind::ZSet, store.peek_value(key, now_ms))?,
            op,
            limits,
        ),
        Op::Type { key } => Ok(Outcome::Value(
            store
                .kind(key, now_ms)
                .map(|kind| kind.name().as_bytes().to_vec()),
        )),
        other => panic!("api::read: {} is not a collection read", other.name()),
    }
}
