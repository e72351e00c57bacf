//! The random commands (`SPOP`, `SRANDMEMBER`, `HRANDFIELD`,
//! `ZRANDMEMBER`): which answers Redis allows, and what they leave.
//!
//! Redis's count rules for the random reads: no count, one element (nil
//! when the key is absent); a positive count, that many *distinct*
//! elements or all of them if fewer; a negative count, exactly `-count`
//! elements that may repeat; zero or an absent key, none. `SPOP` with a
//! count answers `min(count, size)` distinct members and removes exactly
//! those.

use std::collections::BTreeSet;

use super::semantics::{hash_at, put, set_at, zset_at};
use super::{CollectionsInput, CollectionsOutput, Keyspace, Refusal, Value};

/// The keyspace after `input` answered `output`, if that answer is a valid
/// choice from `keyspace`.
///
/// # Panics
///
/// If `input` is not a random command.
pub(super) fn accept(
    keyspace: &Keyspace,
    input: &CollectionsInput,
    output: &CollectionsOutput,
) -> Option<Keyspace> {
    use CollectionsInput as I;
    use CollectionsOutput as O;
    let unchanged = Some(keyspace.clone());
    match input {
        I::HRandField {
            key,
            count,
            with_values,
        } => {
            let hash = match hash_at(keyspace, key) {
                Err(refusal) => return refused(keyspace, output, refusal),
                Ok(hash) => hash.cloned().unwrap_or_default(),
            };
            let valid = match (count, output) {
                (None, O::Value(None)) => hash.is_empty(),
                (None, O::Value(Some(field))) => hash.contains_key(field),
                (Some(count), O::Values(flat)) => {
                    let fields: Option<Vec<&String>> = if *with_values {
                        flat.chunks(2)
                            .map(|pair| match pair {
                                [field, value] if hash.get(field) == Some(value) => Some(field),
                                _ => None,
                            })
                            .collect()
                    } else {
                        Some(flat.iter().collect())
                    };
                    fields.is_some_and(|fields| {
                        valid_draw(&fields, *count, hash.len(), |f| hash.contains_key(*f))
                    })
                }
                _ => false,
            };
            valid.then_some(keyspace.clone())
        }
        I::SRandMember { key, count } => {
            let set = match set_at(keyspace, key) {
                Err(refusal) => return refused(keyspace, output, refusal),
                Ok(set) => set.cloned().unwrap_or_default(),
            };
            let valid = match (count, output) {
                (None, O::Value(None)) => set.is_empty(),
                (None, O::Value(Some(member))) => set.contains(member),
                (Some(count), O::Values(members)) => {
                    valid_draw(members, *count, set.len(), |m| set.contains(m))
                }
                _ => false,
            };
            valid.then_some(keyspace.clone())
        }
        I::ZRandMember { key, count } => {
            let zset = match zset_at(keyspace, key) {
                Err(refusal) => return refused(keyspace, output, refusal),
                Ok(zset) => zset.cloned().unwrap_or_default(),
            };
            let O::Scored(drawn) = output else {
                return None;
            };
            let scores_right = drawn
                .iter()
                .all(|(member, score)| zset.get(member) == Some(score));
            let members: Vec<&String> = drawn.iter().map(|(member, _)| member).collect();
            let valid =
                scores_right && valid_draw(&members, count.unwrap_or(1), zset.len(), |_| true);
            valid.then_some(keyspace.clone())
        }
        I::SPop { key, count } => {
            let set = match set_at(keyspace, key) {
                Err(refusal) => return refused(keyspace, output, refusal),
                Ok(set) => set.cloned().unwrap_or_default(),
            };
            let popped: Vec<&String> = match (count, output) {
                (None, O::Value(None)) if set.is_empty() => return unchanged,
                (None, O::Value(Some(member))) => vec![member],
                (Some(_), O::Values(members)) => members.iter().collect(),
                _ => return None,
            };
            let wanted = count.unwrap_or(1);
            if !valid_draw(
                &popped,
                i64::try_from(wanted).unwrap_or(i64::MAX),
                set.len(),
                |m| set.contains(*m),
            ) {
                return None;
            }
            Some(without(keyspace, key, &set, popped.into_iter()))
        }
        other => panic!("collections model: {other:?} is not a random command"),
    }
}

/// Every keyspace `input` may leave when its answer is unknown.
pub(super) fn every_effect(keyspace: &Keyspace, input: &CollectionsInput) -> Vec<Keyspace> {
    let CollectionsInput::SPop { key, count } = input else {
        // The random reads change nothing.
        return vec![keyspace.clone()];
    };
    let Ok(Some(set)) = set_at(keyspace, key) else {
        return vec![keyspace.clone()];
    };
    let members: Vec<&String> = set.iter().collect();
    let size = usize::try_from(count.unwrap_or(1))
        .unwrap_or(usize::MAX)
        .min(members.len());
    subsets(&members, size)
        .into_iter()
        .map(|chosen| without(keyspace, key, set, chosen.into_iter()))
        .collect()
}

/// Whether `output` is the refusal `refusal` (a random command on a key
/// of another type changes nothing).
fn refused(keyspace: &Keyspace, output: &CollectionsOutput, refusal: Refusal) -> Option<Keyspace> {
    (*output == CollectionsOutput::Refused(refusal)).then(|| keyspace.clone())
}

/// Whether `drawn` is a valid answer to a draw of `count` from a
/// collection of `size` elements, each drawn element passing `belongs`.
fn valid_draw<T: Ord>(drawn: &[T], count: i64, size: usize, belongs: impl Fn(&T) -> bool) -> bool {
    if !drawn.iter().all(belongs) {
        return false;
    }
    if count == 0 || size == 0 {
        return drawn.is_empty();
    }
    let wanted = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    if count < 0 {
        return drawn.len() == wanted;
    }
    let distinct: BTreeSet<&T> = drawn.iter().collect();
    drawn.len() == wanted.min(size) && distinct.len() == drawn.len()
}

/// `keyspace` with `removed` taken out of the set at `key`.
fn without<'a>(
    keyspace: &Keyspace,
    key: &str,
    set: &BTreeSet<String>,
    removed: impl Iterator<Item = &'a String>,
) -> Keyspace {
    let mut remaining = set.clone();
    for member in removed {
        remaining.remove(member);
    }
    let mut next = keyspace.clone();
    put(&mut next, key, Value::Set(remaining));
    next
}

/// Every subset of `items` of `size` elements.
fn subsets<'a>(items: &[&'a String], size: usize) -> Vec<Vec<&'a String>> {
    if size == 0 {
        return vec![Vec::new()];
    }
    if items.len() < size {
        return Vec::new();
    }
    let (first, rest) = (items[0], &items[1..]);
    let mut with_first: Vec<Vec<&String>> = subsets(rest, size - 1)
        .into_iter()
        .map(|mut chosen| {
            chosen.insert(0, first);
            chosen
        })
        .collect();
    with_first.extend(subsets(rest, size));
    with_first
}
