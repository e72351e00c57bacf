//! Waiting for keys to change: the leader-side facility behind Redis's
//! blocking commands (`BLPOP`, `BZPOPMIN`, ...), shaped so that other
//! "tell me when this key changes" users (client-side caching's
//! invalidations, issue 22) can share it.
//!
//! ```text
//!  waiter (WaitKeys RPC)            writer (handle_client, on the leader)
//!   watch(keys) ──► registered       submit(op) applied, Ok
//!   any key present now? ─► answer   notify(op.keys(), n) ──► the n oldest
//!   await changed / deadline            watches on each key are woken (a
//!   drop ──► unregistered               permit is kept if one is not
//!                                       awaiting yet)
//! ```
//!
//! Registering before looking at the state closes the race between "the
//! key is empty" and "wait": a write applied before the look is seen by
//! it, one applied after wakes the watch. A wake is a hint, never data:
//! the waiter's caller then runs its operation (a pop) through the log as
//! usual, so a wake lost to a leader change or a shard move costs only
//! latency (the caller's waits are bounded and it looks again), and a
//! wake that finds nothing (another client took the element) just waits
//! again.
//!
//! **Bounds.** At most `max_total` watches on a replica and
//! `max_per_key` on one key; past either, [`KeyWatch::watch`] refuses
//! with [`WatchFull`] and registers nothing. A watch names at most
//! [`MAX_WATCH_KEYS`] keys.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The most keys one watch names (`BLPOP k1 ... kN`).
pub const MAX_WATCH_KEYS: usize = 1024;

/// Why a watch was refused: a bound was reached (nothing registered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchFull {
    #[error("{limit} clients already wait on this replica")]
    Total { limit: usize },
    #[error("{limit} clients already wait on this key")]
    PerKey { limit: usize },
    #[error("a wait names {count} keys (at most {limit})")]
    TooManyKeys { count: usize, limit: usize },
}

/// The watches of one replica, by key.
#[derive(Debug)]
pub struct KeyWatch {
    max_total: usize,
    max_per_key: usize,
    state: Mutex<WatchState>,
}

#[derive(Debug, Default)]
struct WatchState {
    /// Each key's watches: id and the watch's wake-up.
    by_key: BTreeMap<Vec<u8>, Vec<(u64, Arc<Notify>)>>,
    /// Watches registered (each counted once, whatever its keys).
    total: usize,
    next_id: u64,
}

/// One registered watch; dropping it unregisters it.
#[derive(Debug)]
pub struct Watch {
    owner: Arc<KeyWatch>,
    id: u64,
    keys: Vec<Vec<u8>>,
    notify: Arc<Notify>,
}

impl KeyWatch {
    /// # Panics
    /// If a bound is 0 (a configuration the caller checked).
    pub fn new(max_total: usize, max_per_key: usize) -> KeyWatch {
        assert!(
            max_total > 0 && max_per_key > 0,
            "key watch bounds must be positive (total {max_total}, per key {max_per_key})"
        );
        KeyWatch {
            max_total,
            max_per_key,
            state: Mutex::new(WatchState::default()),
        }
    }

    /// Registers a watch on `keys` (duplicates count once), or refuses it
    /// if a bound is reached.
    pub fn watch(self: &Arc<KeyWatch>, keys: &[Vec<u8>]) -> Result<Watch, WatchFull> {
        if keys.len() > MAX_WATCH_KEYS {
            return Err(WatchFull::TooManyKeys {
                count: keys.len(),
                limit: MAX_WATCH_KEYS,
            });
        }
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        let mut state = self.state.lock().expect("key watch lock");
        if state.total >= self.max_total {
            return Err(WatchFull::Total {
                limit: self.max_total,
            });
        }
        if keys.iter().any(|key| {
            state
                .by_key
                .get(key)
                .is_some_and(|watches| watches.len() >= self.max_per_key)
        }) {
            return Err(WatchFull::PerKey {
                limit: self.max_per_key,
            });
        }
        let id = state.next_id;
        state.next_id += 1;
        state.total += 1;
        let notify = Arc::new(Notify::new());
        for key in &keys {
            state
                .by_key
                .entry(key.clone())
                .or_default()
                .push((id, Arc::clone(&notify)));
        }
        Ok(Watch {
            owner: Arc::clone(self),
            id,
            keys,
            notify,
        })
    }

    /// Wakes, on each of `keys`, the `count` watches registered first
    /// there (all of them if fewer): a write that added `count` elements
    /// wakes as many waiters, oldest first, as Redis serves blocked clients
    /// in the order they blocked. The others sleep on; a woken waiter that
    /// finds nothing waits again.
    pub fn notify<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>, count: usize) {
        let state = self.state.lock().expect("key watch lock");
        if state.total == 0 {
            return;
        }
        for key in keys {
            for (_, notify) in state.by_key.get(key).into_iter().flatten().take(count) {
                notify.notify_one();
            }
        }
    }

    /// Wakes every watch (leadership lost: the waiters look elsewhere).
    pub fn notify_all(&self) {
        let state = self.state.lock().expect("key watch lock");
        for (_, notify) in state.by_key.values().flatten() {
            notify.notify_one();
        }
    }

    /// Watches registered now.
    pub fn waiting(&self) -> usize {
        self.state.lock().expect("key watch lock").total
    }

    fn unregister(&self, id: u64, keys: &[Vec<u8>]) {
        let mut state = self.state.lock().expect("key watch lock");
        for key in keys {
            if let Some(watches) = state.by_key.get_mut(key) {
                watches.retain(|(watch_id, _)| *watch_id != id);
                if watches.is_empty() {
                    state.by_key.remove(key);
                }
            }
        }
        state.total -= 1;
    }
}

impl Watch {
    /// Resolves once a key of the watch is written (or every watch is
    /// woken); at once if that happened since the watch was registered.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.owner.unregister(self.id, &self.keys);
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn keys(names: &[&str]) -> Vec<Vec<u8>> {
        names.iter().map(|name| name.as_bytes().to_vec()).collect()
    }

    #[test]
    fn a_write_before_the_wait_is_kept_for_it() {
        let watch_table = Arc::new(KeyWatch::new(10, 10));
        let watch = watch_table.watch(&keys(&["a", "b"])).expect("room");
        watch_table.notify([&b"b"[..]], 1);
        // Already notified: resolves on its first poll.
        assert!(
            watch.changed().now_or_never().is_some(),
            "the earlier write did not wake the watch"
        );
    }

    #[test]
    fn a_write_to_another_key_does_not_wake() {
        let watch_table = Arc::new(KeyWatch::new(10, 10));
        let watch = watch_table.watch(&keys(&["a"])).expect("room");
        watch_table.notify([&b"other"[..]], 1);
        assert!(
            watch.changed().now_or_never().is_none(),
            "a write to another key woke the watch"
        );
        watch_table.notify_all();
        assert!(
            watch.changed().now_or_never().is_some(),
            "notify_all did not wake it"
        );
    }

    #[test]
    fn a_write_wakes_as_many_as_it_added_oldest_first() {
        let watch_table = Arc::new(KeyWatch::new(10, 10));
        let first = watch_table.watch(&keys(&["k"])).expect("room");
        let second = watch_table.watch(&keys(&["k"])).expect("room");
        let third = watch_table.watch(&keys(&["k"])).expect("room");
        watch_table.notify([&b"k"[..]], 1);
        assert!(
            first.changed().now_or_never().is_some(),
            "the oldest is woken"
        );
        assert!(second.changed().now_or_never().is_none());
        drop(first);
        watch_table.notify([&b"k"[..]], 2);
        assert!(second.changed().now_or_never().is_some());
        assert!(third.changed().now_or_never().is_some());
    }

    #[test]
    fn bounds_refuse_and_register_nothing() {
        let watch_table = Arc::new(KeyWatch::new(3, 2));
        let first = watch_table.watch(&keys(&["k"])).expect("room");
        let second = watch_table.watch(&keys(&["k", "k"])).expect("room");
        assert_eq!(
            watch_table.watch(&keys(&["j", "k"])).unwrap_err(),
            WatchFull::PerKey { limit: 2 }
        );
        assert_eq!(watch_table.waiting(), 2);
        let third = watch_table.watch(&keys(&["j"])).expect("room");
        assert_eq!(
            watch_table.watch(&keys(&["x"])).unwrap_err(),
            WatchFull::Total { limit: 3 }
        );
        let too_many: Vec<Vec<u8>> = (0..=MAX_WATCH_KEYS)
            .map(|index| index.to_string().into_bytes())
            .collect();
        assert!(matches!(
            watch_table.watch(&too_many),
            Err(WatchFull::TooManyKeys { .. })
        ));
        drop((first, second, third));
        assert_eq!(watch_table.waiting(), 0);
        assert!(
            watch_table.state.lock().unwrap().by_key.is_empty(),
            "dropped watches leave no entries"
        );
    }
}
