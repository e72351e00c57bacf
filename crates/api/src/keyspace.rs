//! The whole-shard operations: scan, count, flush, random key.
//!
//! They visit a shard's live keys, in both tiers, through the store's
//! `keys` (no access is recorded, eviction order is unchanged) and order them by
//! [`scan_position`], a fixed hash, never by where the store keeps them:
//! the store's layout changes as it grows or as a shard moves, the
//! positions do not, so a scan resumed on another replica or after a
//! migration still visits every key exactly once.

use cache::Store;

use crate::op::{SCAN_COUNT_MAX, SCAN_POSITION_END, scan_position};
use crate::{Error, Op, Outcome, Reply};

/// Runs a whole-shard operation on the shard's store at log time `now_ms`.
///
/// # Panics
/// If `op` is not one of them: a bug in the caller.
pub(crate) fn execute_shard_op(store: &mut Store, op: &Op, now_ms: u64) -> Reply {
    match op {
        Op::FlushShard { .. } => {
            let keys: Vec<Vec<u8>> = store.keys(now_ms).map(|(key, _)| key.to_vec()).collect();
            let mut removed = 0i64;
            for key in &keys {
                if store.delete(key, now_ms) {
                    removed += 1;
                }
            }
            Ok(Outcome::Integer(removed))
        }
        read_op => read_shard_op(store, read_op, now_ms),
    }
}

/// Answers a whole-shard read, changing nothing.
///
/// # Panics
/// If `op` is not a whole-shard read: a bug in the caller.
pub(crate) fn read_shard_op(store: &Store, op: &Op, now_ms: u64) -> Reply {
    match op {
        Op::CountShard { .. } => Ok(Outcome::Integer(
            i64::try_from(store.keys(now_ms).count()).unwrap_or(i64::MAX),
        )),
        Op::RandomKey { seed, .. } => {
            // The first key at or after a position drawn from the seed,
            // wrapping around: the same answer for the same store and seed
            // whatever the store's layout.
            let start = seed % SCAN_POSITION_END;
            let ranked = |key: &[u8]| {
                let position = scan_position(key);
                (position < start, position)
            };
            let picked = store
                .keys(now_ms)
                .map(|(key, _)| key)
                .min_by(|a, b| ranked(a).cmp(&ranked(b)).then_with(|| a.cmp(b)));
            Ok(Outcome::Value(picked.map(<[u8]>::to_vec)))
        }
        Op::ScanShard {
            position,
            count,
            pattern,
            type_name,
            ..
        } => scan(
            store,
            *position,
            *count,
            pattern.as_deref(),
            type_name.as_deref(),
            now_ms,
        ),
        other => panic!("api: {} is not a whole-shard read", other.name()),
    }
}

/// [`Op::ScanShard`]: visits the `count` keys with the lowest positions at
/// or after `position` (plus any that share the last one's position) and
/// answers those that match.
fn scan(
    store: &Store,
    position: u64,
    count: u64,
    pattern: Option<&[u8]>,
    type_name: Option<&[u8]>,
    now_ms: u64,
) -> Reply {
    if count == 0 || count > SCAN_COUNT_MAX {
        return Err(Error::TooLarge {
            what: "scan count (1 or more)".into(),
            size_bytes: count,
            limit_bytes: SCAN_COUNT_MAX,
        });
    }
    let mut candidates: Vec<(u64, &[u8], &'static str)> = store
        .keys(now_ms)
        .map(|(key, kind)| (scan_position(key), key, kind.name()))
        .filter(|(key_position, _, _)| *key_position >= position)
        .collect();
    // count <= SCAN_COUNT_MAX, so it fits in usize.
    let count = count as usize;
    let next_position = if candidates.len() > count {
        // The count lowest positions, then everything tied with the last.
        candidates.select_nth_unstable(count - 1);
        let boundary = candidates[..count]
            .iter()
            .map(|(key_position, _, _)| *key_position)
            .max()
            .expect("count is at least 1");
        candidates.retain(|(key_position, _, _)| *key_position <= boundary);
        boundary + 1
    } else {
        SCAN_POSITION_END
    };
    candidates.sort_unstable();
    let keys = candidates
        .into_iter()
        .filter(|(_, _, kind)| {
            type_name.is_none_or(|wanted| wanted.eq_ignore_ascii_case(kind.as_bytes()))
        })
        .filter(|(_, key, _)| pattern.is_none_or(|pattern| resp::command::glob_match(pattern, key)))
        .map(|(_, key, _)| key.to_vec())
        .collect();
    Ok(Outcome::Keys {
        keys,
        next_position,
    })
}
