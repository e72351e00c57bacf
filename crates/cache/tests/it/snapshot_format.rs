//! A store snapshot is a format, not a memory dump: a node restores the
//! snapshots an older release wrote, and a follower installs the leader's.
//! How the store lays out its entries in memory may change; what the
//! bytes say may not, without a new format version (`store::snapshot`).
//!
//! The store below touches every part a snapshot carries: strings with
//! and without deadlines and with a wall-clock instant, each collection
//! type, a freed and reused slot, evictions, the adaptive policy's window,
//! S3-FIFO queues, ghost and shadows, and the counters.
//!
//! `data/store-snapshot-586cb89.bin` is that store's snapshot as release
//! 586cb89 wrote it, before entries were packed and the window moved into
//! S3-FIFO's records. Records of free slots were then written with
//! whatever they last held; they are now written as empty (the same
//! layout), so the bytes differ while the state they describe does not.

use cache::store::{Expiry, Kind, Store, StoreConfig, Value};

fn store_with_every_part() -> Store {
    let mut store = Store::new(StoreConfig::new(3_000));
    let mut now_ms = 1;
    for i in 0..40u32 {
        now_ms += 3;
        let key = format!("key:{i:03}");
        let value = vec![b'a' + (i % 26) as u8; 20 + (i as usize * 7) % 50];
        let ttl_ms = (i % 3 == 0).then_some(1_000 + u64::from(i));
        store.put(key.as_bytes(), value, ttl_ms, now_ms).unwrap();
        if i % 5 == 0 {
            store.get(b"key:000", now_ms);
        }
    }
    store
        .expire_with(
            b"key:039",
            Expiry {
                ttl_ms: 50_000,
                unix_ms: Some(1_700_000_000_000),
            },
            now_ms,
        )
        .unwrap();
    store.delete(b"key:038", now_ms);
    store
        .put(b"reused", b"slot".to_vec(), None, now_ms)
        .unwrap();
    let mut hash = Value::empty(Kind::Hash);
    let mut set = Value::empty(Kind::Set);
    let mut list = Value::empty(Kind::List);
    let mut zset = Value::empty(Kind::ZSet);
    for i in 0..4u8 {
        if let Value::Hash(hash) = &mut hash {
            hash.insert(&[b'f', i], vec![b'v', i]);
        }
        if let Value::Set(set) = &mut set {
            set.insert(&[b'm', i]);
        }
        if let Value::List(list) = &mut list {
            list.push_back(vec![b'e', i]);
        }
        if let Value::ZSet(zset) = &mut zset {
            zset.insert(&[b'z', i], f64::from(i) * 1.5 - 2.0);
        }
    }
    for (key, value) in [
        (&b"hash"[..], hash),
        (b"set", set),
        (b"list", list),
        (b"zset", zset),
    ] {
        store.put_value(key, value, None, now_ms).unwrap();
    }
    store
}

/// The snapshot of 586cb89, which wrote free records as they were.
const SNAPSHOT_586CB89: &[u8] = include_bytes!("data/store-snapshot-586cb89.bin");

#[test]
fn an_older_release_snapshot_restores_to_the_same_state() {
    let store = store_with_every_part();
    assert!(store.stats().evictions > 0, "the store must have evicted");
    let restored = Store::restore(SNAPSHOT_586CB89).expect("586cb89's snapshot restores");
    assert_eq!(
        restored.snapshot(),
        store.snapshot(),
        "586cb89's snapshot restores to another state than this release builds"
    );
}

#[test]
fn the_snapshot_bytes_of_a_store_are_pinned() {
    let bytes = store_with_every_part().snapshot();
    assert_eq!(
        (bytes.len(), crc32fast::hash(&bytes)),
        (PINNED_LENGTH, PINNED_CRC),
        "the store's snapshot bytes changed: if the layout changed, that is a new format version"
    );
    let restored = Store::restore(&bytes).unwrap();
    assert_eq!(restored.snapshot(), bytes);
}

const PINNED_LENGTH: usize = 7465;
const PINNED_CRC: u32 = 771_238_053;
