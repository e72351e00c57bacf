//! # cache: the data plane
//!
//! Every byte distcache serves lives in this crate. It has five parts, each
//! in its own module, read in this order:
//!
//! | module | what | used by |
//! |---|---|---|
//! | [`policy`] | eviction policies over slot ids: one trait ([`policy::Policy`], contract in its docs), one policy per file | `table` |
//! | [`table`] | the container: slab of entries + hash index + policy + expiry index | `store`, `near`, `cache-trace` |
//! | [`store`] | the **deterministic store** inside each replica: bytes-bounded, TTL in logical time, snapshots | kvraft, shardkv |
//! | [`near`] | the **concurrent near (L1) cache** for clients and gateways: sharded, read-locked hits, injected clock | clients |
//! | [`ring`] | **consistent hash ring** with virtual nodes and weights | routing |
//! | [`hotkeys`] | **hot-key detector**: count-min sketch + top-k with decay | gateways |
//!
//! plus [`hash`] (the one fixed, seedless 64-bit hash everything uses) and
//! [`workload`] (seeded Zipf and scan traces for tests, benchmarks and the
//! tools).
//!
//! ```text
//!                      raft log entry (op, now_ms)
//!                                 │
//!   client ─► near cache ─miss─► ring ─► replica group ─► Store::apply(op, now_ms)
//!             (NearCache)        (HashRing)                 │
//!                 │                                          ▼
//!                 └──────── Table<K, V> ◄──────────── Table<Vec<u8>, Vec<u8>>
//!                     slab[slot] = {key, value, weight, expire_at_ms}
//!                     index: hash ─► slot      expiry: (expire_at_ms, slot)
//!                     policy: LRU | LFU-DA | SIEVE | S3-FIFO (picks victims)
//! ```
//!
//! ## Determinism (the store)
//!
//! Replicas apply the same log, so they must end in the same state, evictions
//! included. Hence: time is the `now_ms` carried by each operation (never a
//! clock; it never goes backwards); hashing uses [`hash::FixedHasher`] (no
//! random seed); nothing iterates a hash map where order matters; freed slab
//! slots are reused in a fixed order, so slot ids, and therefore policy state,
//! are a function of the operations. A snapshot (bincode 2) contains the
//! policy state, so a restored store continues identically. Property tests
//! check all of this (`tests/store_props.rs`).
//!
//! Byte accounting is exact: an entry weighs `key.len() + value.len() +`
//! [`store::ENTRY_OVERHEAD_BYTES`] (a fixed 64, not `size_of`, so every
//! platform agrees). After every operation, the sum of weights is at most
//! `capacity_bytes` and the entry count at most `capacity_entries`. Expired
//! entries are invisible at once; cleanup reclaims at most
//! `reclaim_per_op` (default 8) of them per operation, soonest first.
//!
//! ## Choosing the default policy (measured)
//!
//! `cargo run --release -p cache --example hit-ratio-table` replays seeded
//! traces (2M requests each; capacity in entries; each request a lookup that
//! inserts on a miss) through every policy and through the peers
//! `quick_cache` (S3-FIFO-like), `moka` (W-TinyLFU) and the `lru` crate:
//!
//! | trace | capacity | lru | lfu | sieve | s3fifo | quick_cache | moka | lru crate |
//! |---|---|---|---|---|---|---|---|---|
//! | zipf0.99 1M keys | 1000 | 0.3831 | 0.4393 | 0.4816 | **0.4910** | 0.4922 | 0.4632 | 0.3831 |
//! | zipf0.99 1M keys | 10000 | 0.5648 | 0.6025 | 0.6323 | **0.6423** | 0.6419 | 0.6354 | 0.5648 |
//! | zipf0.99 1M keys | 100000 | 0.7538 | 0.7645 | 0.7699 | **0.7733** | 0.7710 | 0.7686 | 0.7538 |
//! | zipf0.8 1M keys | 1000 | 0.1002 | 0.1346 | 0.1843 | **0.1977** | 0.1971 | 0.1543 | 0.1002 |
//! | zipf0.8 1M keys | 10000 | 0.2319 | 0.2727 | 0.3172 | **0.3347** | 0.3320 | 0.3160 | 0.2319 |
//! | zipf0.8 1M keys | 100000 | 0.4787 | 0.5054 | 0.5219 | **0.5316** | 0.5284 | 0.5255 | 0.4787 |
//! | zipf0.99+scans 100k keys | 1000 | 0.2413 | 0.2555 | 0.2901 | **0.2950** | 0.2956 | 0.2622 | 0.2413 |
//! | zipf0.99+scans 100k keys | 10000 | 0.3067 | 0.3343 | 0.3785 | **0.3839** | 0.3830 | 0.3691 | 0.3067 |
//! | zipf0.99+scans 100k keys | 100000 | 0.3998 | 0.4153 | 0.4270 | **0.4329** | 0.4250 | 0.4334 | 0.3998 |
//!
//! (The scan trace interleaves 20k Zipf requests with 20k never-seen keys.
//! `moka` is not deterministic; its figures vary by about 0.001 per run.)
//!
//! S3-FIFO wins among our policies on every trace and capacity, beats exact
//! LRU by 4 to 10 points everywhere, and matches `quick_cache` (ahead on 6
//! of 9 rows, at most 0.0012 behind on the other 3), so
//! [`PolicyKind::DEFAULT`] is S3-FIFO. Two of its constants were tuned on
//! these traces and say so where they are defined: a 1% small queue (the
//! paper's 10% gave 0.4849 on the first row) and a direct-mapped ghost
//! sized like the resident set. Our LRU matches the `lru` crate exactly,
//! which cross-checks the harness.
//!
//! ## Performance (benchmarks; 2 shared cores, so treat figures as ±15%)
//!
//! Near cache, Zipf 0.99 over 1M keys, capacity 100k, get then insert on a
//! miss (`cargo bench -p cache --bench near_cache -- --quick`; criterion,
//! warmed caches, 200k-operation batches):
//!
//! | threads | distcache | quick_cache | moka | distcache / quick_cache | distcache / moka |
//! |---|---|---|---|---|---|
//! | 1 | 3.92 M ops/s | 5.30 M ops/s | 0.28 M ops/s | 0.74x | 14x |
//! | 2 | 2.96 M ops/s | 4.59 M ops/s | 0.23 M ops/s | 0.64x | 12.7x |
//!
//! Hit ratio over the whole 2M-request trace from cold: distcache 0.7712,
//! quick_cache 0.7716, moka 0.7688.
//!
//! Because other builds shared the 2 cores (load average 7-9), the same
//! comparison also runs interleaved, round by round, in
//! `cargo run --release -p cache --example near-speed` (cold cache, whole
//! trace, one thread): per-round ratios were 0.72-0.83 and best-of-5 was
//! 7.06 M vs 8.71 M ops/s (0.81x).
//!
//! So the near cache has at least moka's hit ratio and 12-14x moka's
//! throughput, but the issue's throughput goal (at least quick_cache's) is
//! **not met** on average: it ran at about 0.65-0.95x of quick_cache
//! depending on the run (a later interleaved run gave best-of-5 ratios of
//! 0.91, 0.77 and 0.96). Profiles (perf) put the gap in memory misses, not
//! locking: a hit reads the index's control bytes, its slot id, the slab
//! entry and the policy's per-slot record, and a miss also probes the ghost
//! table, which quick_cache folds into its main map. Moving the hit counter
//! into the slab entry was tried and measured slower (best-of-5 ratios 0.58,
//! 0.84, 0.68 against 0.91, 0.77, 0.96 in the same interleaved session),
//! because eviction walks then touch two records per slot; it was dropped.
//! Folding the ghost into the index is the next thing to try.
//!
//! Store, single thread, same workload with 8-byte keys and values, capacity
//! 100k entries (`cargo bench -p cache --bench store -- --quick`):
//!
//! | implementation | ops/s | vs `lru` crate, byte keys |
//! |---|---|---|
//! | store, LRU | 1.33 M | 0.97x |
//! | store, S3-FIFO (default) | 2.02 M | 1.49x |
//! | `lru` crate, `Vec<u8>` keys and values | 1.36 M | 1x |
//! | `lru` crate, `u64` keys and values | 8.29 M | 6.1x |
//!
//! With owned byte keys (what a replicated store must hold) the store's LRU
//! runs level with the `lru` crate while also doing byte accounting, expiry
//! housekeeping and stats; the default S3-FIFO is faster because hits do not
//! relink. Against the `lru` crate on inline `u64` keys the store is 0.16x:
//! that is the price of heap-allocated keys and values, not of the policy.
//!
//! ## Tools
//!
//! - `cache-trace --policy NAME --capacity N [--sizes] < trace` replays a
//!   trace (one key per line; with `--sizes`, a second column in bytes) and
//!   prints `policy=NAME capacity=N requests=R hits=H hit_ratio=0.xxxxxx`.
//!   `NAME` is `lru`, `lfu`, `sieve`, `s3fifo`, `best` (the default policy)
//!   or `all`.
//! - `cargo run --release -p cache --example make-trace -- zipf 1000000 0.99 2000000 1 > t.txt`
//!   writes a seeded trace for it.
//!
//! ## Running the tests
//!
//! ```text
//! cargo test -p cache                     # unit, scenario, property, tool tests (seconds)
//! cargo clippy -p cache --all-targets -- -D warnings
//! cargo bench -p cache -- --quick         # peers in the same run; prints ratios
//! ```

pub mod hash;
pub mod hotkeys;
pub mod near;
pub mod policy;
pub mod ring;
pub mod store;
pub mod table;
pub mod workload;

pub use policy::PolicyKind;
pub use store::{Store, StoreConfig, StoreError};
