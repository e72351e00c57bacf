//! Operations on lists ([`Op::List`](crate::Op::List)), with Redis 7's meaning: `LPUSH`
//! `RPUSH` `LPUSHX` `RPUSHX` `LPOP` `RPOP` `LLEN` `LINDEX` `LRANGE` `LSET`
//! `LREM` `LTRIM` `LINSERT` `LPOS` `LMOVE` `RPOPLPUSH`.
//!
//! Each is one deterministic state-machine command. Positions follow
//! Redis: a negative index counts from the tail (`-1` is the last
//! element); `LRANGE`/`LTRIM` clamp their range, `LINDEX` answers nil and
//! `LSET` [`Error::IndexOutOfRange`] past the ends. A list left empty is
//! removed, and an absent key reads as an empty list.
//!
//! **Two keys.** [`ListOp::Move`] (`LMOVE`, `RPOPLPUSH`) takes the element
//! from [`Op::List`](crate::Op::List)'s key and pushes it onto `destination`. Both keys
//! must live in the same shard (the operation is applied by one group on
//! one store): [`Op::keys`](crate::Op::keys) names both and [`Op::is_multi_key`](crate::Op::is_multi_key) holds, so routers
//! and the shard machine can refuse a move across shards
//! ([`Error::CrossShard`]). Checks come first (types, the element limit,
//! the destination's size), so a refused move changes nothing.
//!
//! **Costs and bounds.** Push and pop at either end are O(1) per element
//! (a `VecDeque`); `LINDEX`/`LSET` are O(1) (Redis: O(n)); `LRANGE` is
//! O(answer) and may answer the whole list, as in Redis (a list holds at
//! most `max_collection_elements`, so an answer does too); `LREM`,
//! `LTRIM`, `LINSERT` and `LPOS` are O(n). A push is refused past
//! `max_collection_elements` ([`Error::TooManyElements`]); a pop with a
//! count answers at most the list.

use cache::Store;
use cache::store::value::{ListValue, list_element_bytes};
use cache::store::{Kind, Value, entry_weight_bytes};
use serde::{Deserialize, Serialize};

use crate::collections::{AsCollection, too_many, wrong_type};
use crate::{Error, Limits, Outcome, Reply};

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum End {
    /// The head (`LEFT`, index 0).
    Left,
    /// The tail (`RIGHT`, index -1).
    Right,
}

/// An operation on the list at [`Op::List`](crate::Op::List)'s key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListOp {
    /// `LPUSH`/`RPUSH` (each element in turn at `end`); with
    /// `only_existing`, `LPUSHX`/`RPUSHX` (nothing if the key is absent).
    /// [`Outcome::Integer`]: the length after.
    Push {
        end: End,
        elements: Vec<Vec<u8>>,
        only_existing: bool,
    },
    /// `LPOP`/`RPOP`. Without `count`: [`Outcome::Value`], the element or
    /// nil. With it: [`Outcome::Values`] with up to `count` elements, or
    /// [`Outcome::Value`]`(None)` if the key is absent (Redis's null
    /// array).
    Pop { end: End, count: Option<u64> },
    /// `LLEN`: [`Outcome::Integer`]. A read.
    Len,
    /// `LINDEX`: [`Outcome::Value`], nil out of range. A read.
    Index { index: i64 },
    /// `LRANGE`: [`Outcome::Values`]. A read.
    Range { start: i64, stop: i64 },
    /// `LSET`: [`Outcome::Done`]; [`Error::NoSuchKey`] on an absent key,
    /// [`Error::IndexOutOfRange`] past the ends.
    Set { index: i64, element: Vec<u8> },
    /// `LREM`: [`Outcome::Integer`], elements removed (see
    /// [`ListValue::remove_equal`] for `count`).
    Rem { count: i64, element: Vec<u8> },
    /// `LTRIM`: [`Outcome::Done`]; keeps `start..=stop` (an empty range
    /// removes the key).
    Trim { start: i64, stop: i64 },
    /// `LINSERT`: [`Outcome::Integer`], the length after; -1 if `pivot`
    /// is not there, 0 if the key is absent.
    Insert {
        before: bool,
        pivot: Vec<u8>,
        element: Vec<u8>,
    },
    /// `LPOS`: [`Outcome::Integers`], the indexes of matches. `rank`
    /// (never 0) skips `|rank| - 1` matches and, if negative, searches
    /// from the tail; `count` is how many to answer (0: all); `max_len`
    /// is how many elements to compare (0: all). A read.
    Pos {
        element: Vec<u8>,
        rank: i64,
        count: u64,
        max_len: u64,
    },
    /// `LMOVE`/`RPOPLPUSH`: pops at `from` and pushes at `to` of
    /// `destination` (may be the same key). [`Outcome::Value`]: the
    /// element moved, nil if the source is absent.
    Move {
        destination: Vec<u8>,
        from: End,
        to: End,
    },
    /// `LMPOP` (and the pop of `BLPOP`/`BRPOP`/`BLMPOP`): up to `count`
    /// elements from `end` of the first non-empty list among
    /// [`Op::List`](crate::Op::List)'s key, then `others`, in order.
    /// [`Outcome::KeyValues`]: that key and the elements; nil
    /// ([`Outcome::Value`]`(None)`) if every key is absent. A key of
    /// another type met before that list answers [`Error::WrongType`]
    /// (keys after it are not looked at, as in Redis). All keys in one
    /// shard.
    MultiPop {
        others: Vec<Vec<u8>>,
        end: End,
        count: u64,
    },
}

impl ListOp {
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            ListOp::Len | ListOp::Index { .. } | ListOp::Range { .. } | ListOp::Pos { .. }
        )
    }

    /// The keys besides [`Op::List`](crate::Op::List)'s own that a [`ListOp::MultiPop`]
    /// looks at, in order (a move's destination is named by [`Op::keys`](crate::Op::keys)).
    pub fn other_keys(&self) -> &[Vec<u8>] {
        match self {
            ListOp::MultiPop { others, .. } => others,
            _ => &[],
        }
    }

    /// The bytes the operation carries.
    pub fn carried_bytes(&self) -> usize {
        match self {
            ListOp::Push { elements, .. } => elements.iter().map(Vec::len).sum(),
            ListOp::Set { element, .. }
            | ListOp::Rem { element, .. }
            | ListOp::Pos { element, .. } => element.len(),
            ListOp::Insert { pivot, element, .. } => pivot.len() + element.len(),
            ListOp::Move { destination, .. } => destination.len(),
            ListOp::MultiPop { others, .. } => others.iter().map(Vec::len).sum(),
            ListOp::Pop { .. } | ListOp::Len | ListOp::Index { .. } | ListOp::Range { .. } => 0,
            ListOp::Trim { .. } => 0,
        }
    }
}

impl AsCollection<ListValue> for Value {
    fn as_collection(&self) -> Option<&ListValue> {
        match self {
            Value::List(list) => Some(list),
            _ => None,
        }
    }

    fn as_collection_mut(&mut self) -> &mut ListValue {
        match self {
            Value::List(list) => list,
            _ => unreachable!("Store::update checked the type"),
        }
    }
}

/// An index as `LINDEX`/`LSET` read it (negative: from the tail); `None`
/// out of range.
fn position(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let index = if index < 0 {
        index.checked_add(len)?
    } else {
        index
    };
    (0..len).contains(&index).then_some(index as usize)
}

/// `LRANGE`/`LTRIM`'s range as a half-open `start..end`, clamped (empty:
/// `start == end`).
fn span(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let start = if start < 0 {
        start.saturating_add(len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop.saturating_add(len)
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return (0, 0);
    }
    (start as usize, stop as usize + 1)
}

fn take(list: &mut ListValue, end: End) -> Option<Vec<u8>> {
    match end {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    }
}

fn put(list: &mut ListValue, end: End, element: Vec<u8>) {
    match end {
        End::Left => list.push_front(element),
        End::Right => list.push_back(element),
    }
}

/// Runs a list operation on `key` (writes through [`Store::update`]).
pub(crate) fn execute_list(
    store: &mut Store,
    key: &[u8],
    op: &ListOp,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    if op.is_read() {
        let value = store.value(key, now_ms);
        return read_list(wrong_type(Kind::List, value)?, op);
    }
    match op {
        ListOp::Push {
            end,
            elements,
            only_existing,
        } => {
            let current = wrong_type::<ListValue>(Kind::List, store.peek_value(key, now_ms))?;
            if *only_existing && current.is_none() {
                return Ok(Outcome::Integer(0));
            }
            let growth = elements
                .iter()
                .map(|element| list_element_bytes(element))
                .sum();
            store.update(key, Kind::List, growth, now_ms, |value| {
                let list: &mut ListValue = value.as_collection_mut();
                too_many(list.len(), elements.len(), limits)?;
                for element in elements {
                    put(list, *end, element.clone());
                }
                Ok(Outcome::Integer(list.len() as i64))
            })
        }
        ListOp::MultiPop { others, end, count } => {
            for candidate in std::iter::once(key).chain(others.iter().map(Vec::as_slice)) {
                if wrong_type::<ListValue>(Kind::List, store.peek_value(candidate, now_ms))?
                    .is_none()
                {
                    continue;
                }
                let pop = ListOp::Pop {
                    end: *end,
                    count: Some(*count),
                };
                let Outcome::Values(popped) = execute_list(store, candidate, &pop, limits, now_ms)?
                else {
                    unreachable!("a pop with a count of a present list answers values");
                };
                return Ok(Outcome::KeyValues {
                    key: candidate.to_vec(),
                    values: popped.into_iter().flatten().collect(),
                });
            }
            Ok(Outcome::Value(None))
        }
        ListOp::Pop { end, count } => {
            if wrong_type::<ListValue>(Kind::List, store.peek_value(key, now_ms))?.is_none() {
                return Ok(Outcome::Value(None));
            }
            store.update(key, Kind::List, 0, now_ms, |value| {
                let list: &mut ListValue = value.as_collection_mut();
                Ok(match count {
                    None => Outcome::Value(take(list, *end)),
                    Some(count) => {
                        let wanted = usize::try_from(*count).unwrap_or(usize::MAX);
                        let mut popped = Vec::new();
                        while popped.len() < wanted {
                            match take(list, *end) {
                                Some(element) => popped.push(Some(element)),
                                None => break,
                            }
                        }
                        Outcome::Values(popped)
                    }
                })
            })
        }
        ListOp::Set { index, element } => {
            let Some(list) = wrong_type::<ListValue>(Kind::List, store.peek_value(key, now_ms))?
            else {
                return Err(Error::NoSuchKey);
            };
            let at = position(*index, list.len()).ok_or(Error::IndexOutOfRange)?;
            store.update(
                key,
                Kind::List,
                list_element_bytes(element),
                now_ms,
                |value| {
                    let list: &mut ListValue = value.as_collection_mut();
                    list.set(at, element.clone());
                    Ok(Outcome::Done)
                },
            )
        }
        ListOp::Rem { count, element } => {
            if wrong_type::<ListValue>(Kind::List, store.peek_value(key, now_ms))?.is_none() {
                return Ok(Outcome::Integer(0));
            }
            store.update(key, Kind::List, 0, now_ms, |value| {
                let list: &mut ListValue = value.as_collection_mut();
                Ok(Outcome::Integer(list.remove_equal(element, *count) as i64))
            })
        }
        ListOp::Trim { start, stop } => {
            if wrong_type::<ListValue>(Kind::List, store.peek_value(key, now_ms))?.is_none() {
                return Ok(Outcome::Done);
            }
            store.update(key, Kind::List, 0, now_ms, |value| {
                let list: &mut ListValue = value.as_collection_mut();
                let (from, to) = span(*start, *stop, list.len());
                list.retain_range(from, to);
                Ok(Outcome::Done)
            })
        }
        ListOp::Insert {
            before,
            pivot,
            element,
        } => {
            let Some(list) = wrong_type::<ListValue>(Kind::List, store.peek_value(key, now_ms))?
            else {
                return Ok(Outcome::Integer(0));
            };
            let Some(found) = list.iter().position(|item| item == pivot.as_slice()) else {
                return Ok(Outcome::Integer(-1));
            };
            too_many(list.len(), 1, limits)?;
            let at = if *before { found } else { found + 1 };
            store.update(
                key,
                Kind::List,
                list_element_bytes(element),
                now_ms,
                |value| {
                    let list: &mut ListValue = value.as_collection_mut();
                    list.insert(at, element.clone());
                    Ok(Outcome::Integer(list.len() as i64))
                },
            )
        }
        ListOp::Move {
            destination,
            from,
            to,
        } => move_element(store, key, destination, *from, *to, limits, now_ms),
        ListOp::Len | ListOp::Index { .. } | ListOp::Range { .. } | ListOp::Pos { .. } => {
            unreachable!("reads are answered above")
        }
    }
}

/// `LMOVE`: checks everything, then pops and pushes (see the module docs).
fn move_element(
    store: &mut Store,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    let Some(list) = wrong_type::<ListValue>(Kind::List, store.peek_value(source, now_ms))? else {
        return Ok(Outcome::Value(None));
    };
    let element = match from {
        End::Left => list.iter().next(),
        End::Right => list.iter().next_back(),
    }
    .expect("a stored list is never empty")
    .to_vec();
    if source == destination {
        return store.update(source, Kind::List, 0, now_ms, |value| {
            let list: &mut ListValue = value.as_collection_mut();
            let element = take(list, from).expect("checked non-empty");
            put(list, to, element.clone());
            Ok(Outcome::Value(Some(element)))
        });
    }
    let target_value = store.peek_value(destination, now_ms);
    let target = wrong_type::<ListValue>(Kind::List, target_value)?;
    // The weight from the stored value itself: no copy of the list, so a
    // move stays O(1).
    let weight_after = match (target, target_value) {
        (Some(target), Some(value)) => {
            too_many(target.len(), 1, limits)?;
            entry_weight_bytes(destination, value) + list_element_bytes(&element)
        }
        _ => {
            let mut single = ListValue::default();
            single.push_back(element.clone());
            entry_weight_bytes(destination, &Value::List(single))
        }
    };
    let capacity_bytes = store.config().capacity_bytes;
    if weight_after > capacity_bytes {
        return Err(Error::TooLarge {
            what: "entry".into(),
            size_bytes: weight_after,
            limit_bytes: capacity_bytes,
        });
    }
    store.update(source, Kind::List, 0, now_ms, |value| {
        let list: &mut ListValue = value.as_collection_mut();
        take(list, from);
        Ok::<_, Error>(())
    })?;
    // Checked above: the destination fits, so this cannot be refused.
    store.update(
        destination,
        Kind::List,
        list_element_bytes(&element),
        now_ms,
        |value| {
            let list: &mut ListValue = value.as_collection_mut();
            put(list, to, element.clone());
            Ok::<_, Error>(())
        },
    )?;
    Ok(Outcome::Value(Some(element)))
}

/// Answers a list read from the list (`None`: the key is absent).
pub(crate) fn read_list(list: Option<&ListValue>, op: &ListOp) -> Reply {
    let empty = ListValue::default();
    let list = list.unwrap_or(&empty);
    Ok(match op {
        ListOp::Len => Outcome::Integer(list.len() as i64),
        ListOp::Index { index } => Outcome::Value(
            position(*index, list.len())
                .and_then(|at| list.get(at))
                .map(<[u8]>::to_vec),
        ),
        ListOp::Range { start, stop } => {
            let (from, to) = span(*start, *stop, list.len());
            Outcome::Values(
                list.range(from, to)
                    .map(|item| Some(item.to_vec()))
                    .collect(),
            )
        }
        ListOp::Pos {
            element,
            rank,
            count,
            max_len,
        } => {
            // Redis 7.0 reads i64::MIN as -1 (its negation overflows).
            let skip = if *rank == i64::MIN {
                0
            } else {
                rank.unsigned_abs() - 1
            };
            let wanted = if *count == 0 { u64::MAX } else { *count };
            let compared = if *max_len == 0 {
                usize::MAX
            } else {
                usize::try_from(*max_len).unwrap_or(usize::MAX)
            };
            let len = list.len();
            let indexes: Box<dyn Iterator<Item = (usize, &[u8])>> = if *rank > 0 {
                Box::new(list.iter().enumerate())
            } else {
                Box::new(
                    list.iter()
                        .rev()
                        .enumerate()
                        .map(move |(i, x)| (len - 1 - i, x)),
                )
            };
            let found: Vec<i64> = indexes
                .take(compared)
                .filter(|(_, item)| *item == element.as_slice())
                .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                .take(usize::try_from(wanted).unwrap_or(usize::MAX))
                .map(|(index, _)| index as i64)
                .collect();
            Outcome::Integers(found)
        }
        ListOp::Push { .. }
        | ListOp::Pop { .. }
        | ListOp::Set { .. }
        | ListOp::Rem { .. }
        | ListOp::Trim { .. }
        | ListOp::Insert { .. }
        | ListOp::Move { .. }
        | ListOp::MultiPop { .. } => panic!("api::read: a list write is not a read"),
    })
}
