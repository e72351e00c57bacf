//! # cache: the data plane
//!
//! Every byte distcache serves lives in this crate. It has four parts, each
//! in its own module, read in this order:
//!
//! | module | what | used by |
//! |---|---|---|
//! | [`policy`] | eviction policies over slot ids: one trait ([`policy::Policy`], contract in its docs), one policy per file | `table` |
//! | [`table`] | the container: slab of entries + hash index + policy + expiry index | `store`, `near` (non-default policies), `cache-trace` |
//! | [`store`] | the **deterministic store** inside each replica: bytes-bounded, TTL in logical time, snapshots | kvraft, shardkv |
//! | [`store::disk`] | the store's optional **disk tier (L3)**: what memory evicts goes to append-only, checksummed segment files with their own byte capacity (FIFO eviction, segment GC) and comes back on access; off by default | `store` |
//! | [`near`] | the **concurrent near (L1) cache** for clients and gateways: sharded, read-locked hits, injected clock; its default S3-FIFO shards keep entries in the hash table's buckets | clients |
//! | [`hotkeys`] | **hot-key detector**: count-min sketch + top-k with decay | gateways |
//!
//! plus [`hash`] (the one fixed, seedless 64-bit hash everything uses) and
//! [`workload`] (seeded Zipf and scan traces for tests, benchmarks and the
//! tools).
//!
//! ```text
//!                      raft log entry (op, now_ms)
//!                                 │
//!   client ─► near cache ─miss─► slot ─► replica group ─► Store::apply(op, now_ms)
//!             (NearCache)    (shardkv::key_to_shard)        │
//!                 │                                          ▼
//!     S3FifoShard (default) or Table<K, V> ◄───── Table<Vec<u8>, Value>
//!                     slab[slot] = {key, value, weight, expire_at_ms}
//!                     index: hash ─► slot      expiry: (expire_at_ms, slot)
//!                     policy: LRU | LFU-DA | SIEVE | S3-FIFO | adaptive (picks victims)
//! ```
//!
//! ## Determinism (the store)
//!
//! Replicas apply the same log, so they must end in the same state, evictions
//! included. Hence: time is the `now_ms` carried by each operation (never a
//! clock; it never goes backwards); hashing uses [`hash::FixedHasher`] (no
//! random seed); nothing iterates a hash map where order matters; freed slab
//! slots are reused in a fixed order, so slot ids, and therefore policy state,
//! are a function of the operations. A snapshot (bincode 2, the `codec` crate) contains the
//! policy state, so a restored store continues identically. Property tests
//! check all of this (`tests/store_props.rs`).
//!
//! Byte accounting is exact: an entry weighs `key.len() +`
//! [`store::Value::bytes`] `+` [`store::ENTRY_OVERHEAD_BYTES`] (a fixed 64,
//! not `size_of`, so every platform agrees). A value is a string or a
//! collection (hash, set, list, sorted set; [`store::value`]); a collection
//! counts its elements' bytes plus a fixed per-element overhead and keeps
//! that count current as it grows and shrinks ([`Store::update`]), so
//! capacity and eviction see its real size. After every operation, the sum of weights is at most
//! `capacity_bytes` and the entry count at most `capacity_entries`. Expired
//! entries are invisible at once; cleanup reclaims at most
//! `reclaim_per_op` (default 8) of them per operation, soonest first.
//!
//! ## Choosing the default policy (measured)
//!
//! `cargo run --release -p cache --example hit-ratio-table` replays seeded
//! traces (2M requests each; capacity in entries; each request a lookup that
//! inserts on a miss) through every policy, through Belady's offline optimum
//! (on a miss, keep the keys requested again soonest; a harness computation
//! that reads the future, the bound no policy can pass) and through the
//! peers `quick_cache` (S3-FIFO-like), `moka` (W-TinyLFU) and the `lru`
//! crate. The last column checks the aims of issue 18 for `adaptive`: at
//! least `quick_cache`'s hit ratio and at least 99% of LRU's. `adaptive`
//! runs at [`PolicyRevision::LATEST`] (smaller shadows: what a cluster's
//! stores run once their group has logged it). Measured 2026-12-08 (hit
//! ratios do not depend on load):
//!
//! | trace | capacity | lru | lfu | sieve | s3fifo | adaptive | belady (optimum) | quick_cache | moka | lru crate | adaptive meets aims |
//! |---|---|---|---|---|---|---|---|---|---|---|---|
//! | zipf0.99 1M keys | 1000 | 0.3831 | 0.4393 | 0.4816 | 0.4910 | **0.4934** | 0.5408 | 0.4922 | 0.4634 | 0.3831 | yes |
//! | zipf0.99 1M keys | 10000 | 0.5648 | 0.6025 | 0.6323 | 0.6423 | **0.6444** | 0.7000 | 0.6419 | 0.6353 | 0.5648 | yes |
//! | zipf0.99 1M keys | 100000 | 0.7538 | 0.7645 | 0.7699 | **0.7733** | **0.7733** | 0.8217 | 0.7710 | 0.7685 | 0.7538 | yes |
//! | zipf0.8 1M keys | 1000 | 0.1002 | 0.1346 | 0.1843 | 0.1977 | **0.1992** | 0.2519 | 0.1971 | 0.1550 | 0.1002 | yes |
//! | zipf0.8 1M keys | 10000 | 0.2319 | 0.2727 | 0.3172 | 0.3347 | **0.3368** | 0.4280 | 0.3320 | 0.3154 | 0.2319 | yes |
//! | zipf0.8 1M keys | 100000 | 0.4787 | 0.5054 | 0.5219 | **0.5316** | 0.5311 | 0.6532 | 0.5284 | 0.5250 | 0.4787 | yes |
//! | zipf0.99+scans 100k keys | 1000 | 0.2413 | 0.2555 | 0.2901 | 0.2950 | **0.2963** | 0.3258 | 0.2956 | 0.2618 | 0.2413 | yes |
//! | zipf0.99+scans 100k keys | 10000 | 0.3067 | 0.3343 | 0.3785 | 0.3839 | **0.3848** | 0.4181 | 0.3830 | 0.3699 | 0.3067 | yes |
//! | zipf0.99+scans 100k keys | 100000 | 0.3998 | 0.4153 | 0.4270 | 0.4329 | **0.4337** | 0.4591 | 0.4250 | 0.4334 | 0.3998 | yes |
//! | shifting zipf0.8 100k-key window | 1000 | 0.1198 | 0.1249 | 0.0824 | 0.0857 | **0.1296** | 0.3091 | 0.0900 | 0.0662 | 0.1198 | yes |
//! | shifting zipf0.8 100k-key window | 10000 | 0.3261 | 0.3329 | 0.2707 | 0.2587 | **0.3361** | 0.5607 | 0.2811 | 0.1369 | 0.3261 | yes |
//! | shifting zipf0.8 100k-key window | 100000 | **0.7090** | 0.6856 | 0.6712 | 0.6101 | 0.7043 | 0.7341 | 0.6400 | 0.2726 | 0.7090 | yes |
//!
//! (Bold: the best of our policies on the row. The scan trace interleaves
//! 20k Zipf requests with 20k never-seen keys. The shifting trace
//! ([`workload::shifting_trace`]) draws Zipf 0.8 ranks over a window of
//! 100k keys, the hottest rank being the newest key, and slides the window
//! by one key every 4 requests: popularity follows age, so recency wins.
//! `moka` is not deterministic; its figures vary by about 0.001 per run.
//! Our LRU matches the `lru` crate exactly, which cross-checks the
//! harness.)
//!
//! [`PolicyKind::DEFAULT`] is **adaptive** for the store (the near cache
//! keeps S3-FIFO: see [`near::NearCacheConfig::new`]). It meets both aims
//! on all 12 rows: ahead of `quick_cache` on every Zipf and scan row (by
//! 0.0007 to 0.0087), and on the shifting rows ahead of LRU at 1k and 10k
//! entries (0.1296 against 0.1198, 0.3361 against 0.3261) and at 99.3% of
//! it at 100k (0.7043 against 0.7090; the original revision's larger
//! shadows gave 0.7066), where S3-FIFO and `quick_cache` lose 3 to 10
//! points.
//! S3-FIFO, the default before, missed `quick_cache` on the scan trace at
//! 1k entries (0.2950 against 0.2956) and LRU by 3 to 10 points on the
//! shifting trace. Two of S3-FIFO's constants were tuned on these traces
//! and say so where they are defined: a 1% small queue (the paper's 10%
//! gave 0.4849 on the first row) and a ghost sized like the resident set.
//!
//! `adaptive` ([`policy::Adaptive`]) puts an exact-LRU window in front of
//! S3-FIFO (share 0 is S3-FIFO, 100% is LRU) and chooses two things by
//! **miniature simulation**: the window's share, and the size of S3-FIFO's
//! ghost (half, once or twice the resident count). Five shadow caches run
//! beside it on the requests for a sample of the keys, chosen by hash
//! (every key up to 8192 resident entries; above that one key in 2^k,
//! which keeps each shadow at 4096-8192 entries): one per ghost size at
//! the current share, and the current ghost size with the window one step
//! smaller and one step larger. Every 4096 sampled requests the cache
//! moves to the configuration that hit significantly more than the
//! shadow of its own configuration on those same requests (McNemar's
//! test, z = 2). Everything is counted in integers, sampling uses the
//! fixed hash, and snapshots carry the shadows, so replicas and restored
//! stores stay identical. Five of its constants were tuned on these
//! traces and say so where they are defined (`policy/adaptive.rs`): the
//! first window step (25% of the cache), the shadow size, the period,
//! when the shadows start (64 entries) and z.
//!
//! Against the version before it (a hill climber that compared one
//! period's hit ratio with the next, and a ghost fixed at half S3-FIFO's;
//! measured 2026-12-05) no row is lower, and the two it missed are met:
//! the scan trace went from 0.2953 to 0.2963 at 1k entries and from
//! 0.3813 to 0.3848 at 10k (`quick_cache`: 0.2956 and 0.3830), the
//! shifting trace from 0.1188, 0.3274 and 0.7056 to 0.1296, 0.3353 and
//! 0.7066, and the other rows by up to 0.0027. Both causes the old docs
//! named were real: a scan phase hits every shadow alike, so the window is
//! no longer tried where it does not pay; and the ghost size that wins
//! depends on the trace and the size (with no window: half S3-FIFO's
//! ghost gave the scan trace 0.2963 at 1k entries, S3-FIFO's own 0.2950;
//! at 10k, half gave 0.3819, once 0.3839, twice 0.3851), which the
//! shadows now pick.
//!
//! The aims hold on the table's traces, not on every trace. A one-off
//! check on eight other seeded traces at the same three sizes (another
//! Zipf 0.99 seed, Zipf 0.7 over 100k keys, Zipf 1.2, two other scan
//! mixes, shifting traces sliding every request and every 16 requests,
//! and a trace that turns from Zipf to shifting halfway) met both aims on
//! 20 of 24 rows. It missed `quick_cache` on the trace sliding every 16
//! requests by 0.0112 at 10k entries (0.4845 against 0.4957; S3-FIFO
//! 0.4799, LRU 0.4262: neither end of the blend reaches it) and by 0.0020
//! at 100k, on Zipf 0.7 at 10k by 0.0002, and 99% of LRU on the
//! Zipf-then-shifting trace at 100k by 0.0001.
//!
//! What it costs:
//!
//! - **Throughput.** `cargo run --release -p cache --example store-speed`
//!   (the store, Zipf 0.99 over 1M keys, 100k entries, one thread), three
//!   runs at load average 4.9-5.9: adaptive 2.07, 2.70 and 2.35 M ops/s
//!   against S3-FIFO's 3.45, 4.10 and 3.36 M in the same runs (0.60x,
//!   0.66x, 0.70x). Three more runs of those two alone, with the previous
//!   adaptive policy built from the commit before this work, at load 4.7:
//!   S3-FIFO 6.06, 6.21, 6.37 M; previous adaptive 4.04, 4.80, 4.24 M;
//!   adaptive 3.40, 3.88, 3.12 M. Counted by `valgrind --tool=cachegrind`
//!   (load cannot disturb it), per operation of that example minus the
//!   trace's own work: S3-FIFO 543 instructions, the previous adaptive
//!   648, adaptive 795. Every insert passes through the window (at share
//!   0 straight on to S3-FIFO), every hit first checks the window (and
//!   relinks there when it is in it), every request hashes its key once
//!   more to decide sampling, and one request in 16 (at 100k entries; all
//!   of them up to 8192 entries) also runs in five shadows.
//! - **Memory and snapshots.** The shadows hold five sets of per-entry
//!   policy records (about 70 bytes a shadow entry, no keys or values):
//!   up to 8192 cached entries, five shadow entries per cached entry;
//!   above that at most 5 x 8192 shadow entries in all, about 3 MB per
//!   store, and half that at [`PolicyRevision::SmallerShadows`] (4096,
//!   1.5 MB: the revision a cluster's stores switch to, at one index of
//!   their group's log). In memory a window slot shares S3-FIFO's 32-byte record, so
//!   the window costs nothing per slot; in a process holding a million
//!   100-byte strings in ten stores (a node's ten shards) adaptive took
//!   about 38 bytes per key more than S3-FIFO, most of it the ten stores'
//!   shadows (measured 2026-12-07). Snapshots carry the shadows, and the
//!   window's per-slot fields (about 20 bytes a slot) besides (figures
//!   from before free records were written empty): the store of that example, with 8-byte keys
//!   and values, snapshots to 0.40 MB with adaptive against 0.06 MB with
//!   S3-FIFO at 1k entries, 3.5 MB against 0.64 MB at 10k, and 11.4 MB
//!   against 6.0 MB at 100k. With larger values the share is smaller (the
//!   records do not grow with values). A store that has never held 64
//!   entries nor evicted has no shadows.
//!
//! Choose `StoreConfig::with_policy(PolicyKind::S3Fifo)` where throughput
//! or snapshot size matters more than the last points of hit ratio, or
//! the workload is known not to shift.
//!
//! ## Performance (benchmarks; 2 shared cores, so treat figures as ±15%)
//!
//! Near cache, Zipf 0.99 over 1M keys, capacity 100k, get then insert on a
//! miss, peers in the same run (`cargo bench -p cache --bench near_cache --
//! --quick`). Two kinds of figure: criterion's, on warmed caches replaying
//! a 200k-operation batch (mostly hits: steady state), and the summary
//! line, one replay of the whole 2M-request trace from a cold cache
//! (filling and evicting included). Two back-to-back runs, load average
//! 11 on the 2 cores:
//!
//! | threads | figure | distcache | quick_cache | moka | distcache / quick_cache |
//! |---|---|---|---|---|---|
//! | 1 | warm (criterion) | 5.20 / 4.49 M ops/s | 3.51 / 3.66 M ops/s | 0.26 / 0.23 M ops/s | 1.48x / 1.23x |
//! | 2 | warm (criterion) | 4.96 / 4.98 M ops/s | 3.35 / 3.59 M ops/s | 0.24 / 0.24 M ops/s | 1.48x / 1.39x |
//! | 1 | cold, whole trace | 2.62 / 2.65 M ops/s | 2.67 / 3.08 M ops/s | 0.21 / 0.22 M ops/s | 0.98x / 0.86x |
//! | 2 | cold, whole trace | 2.53 / 2.69 M ops/s | 2.50 / 2.44 M ops/s | 0.18 / 0.19 M ops/s | 1.01x / 1.10x |
//!
//! Earlier runs in the same session, at lower load, gave warm ratios of
//! 1.23x and 1.04x (1 thread) and 1.87x and 1.37x (2 threads), and cold
//! ratios of 0.53x-0.99x (1 thread) and 0.93x-1.14x (2 threads). Hit
//! ratio over the whole trace from cold: distcache 0.7738, quick_cache
//! 0.7716, moka 0.764-0.769 (moka varies by run).
//!
//! `cargo run --release -p cache --example near-speed` interleaves the
//! two, one thread, cold, whole trace, round by round: best-of-5 ratios
//! 0.95 and 0.81 in the runs above (0.77-1.10 over the session). Wall time
//! is too noisy here to settle a few percent, so the same example replays
//! one cache alone (`near-speed distcache 1`, `near-speed quick_cache 1`,
//! `near-speed none 1` for the trace alone) under `valgrind --tool=cachegrind
//! --cache-sim=yes --D1=32768,8,64 --LL=1048576,16,64`, which other load
//! cannot disturb. Per operation, minus `none`:
//!
//! | | instructions | L1d misses | misses of a 1 MiB cache |
//! |---|---|---|---|
//! | distcache | 238 | 3.06 | 1.57 |
//! | quick_cache | 197 | 3.60 | 1.62 |
//!
//! So: the hit ratio goal (at least moka's) is met, and the throughput goal
//! (at least quick_cache's) is **met in steady state** (warm, 1.2-1.9x,
//! mostly hits, where a hit reads one cache line against quick_cache's
//! control bytes, slot id and entry) and **at parity, not clearly ahead,
//! from a cold start** (0.86-1.10x in the final runs): our miss path has
//! fewer cache misses but about 20% more instructions than quick_cache's
//! (deletion shifts the probe run; the FIFO rings re-point moved entries).
//!
//! How we got here (same-run ratios, one thread, before: warm 0.51x and
//! 2 threads 0.43x, cold 1.08x / 0.65x, near-speed best-of-5 0.63-0.81;
//! hit ratio 0.7712):
//!
//! 1. The default policy got its own shard (`near/s3fifo_shard.rs`):
//!    frequency and queue inline in the entry, FIFO rings of positions
//!    instead of linked lists. The ghost was also indexed by hash bits
//!    that were constant within a shard, so it used an eighth of its slots;
//!    fixing that raised the hit ratio from 0.7712 to 0.7737.
//! 2. Entries moved into the hash table's buckets (open addressing, linear
//!    probing, backward-shift deletion): one cache line per hit. Warm
//!    ratios went from 0.53x / 0.85x to 1.23x / 1.87x in one session.
//! 3. Table at most half full (was two thirds), a `u32` ghost read before
//!    evicting, no division in deletion, ghost fed from the stored hash
//!    fragment: cachegrind 290 -> 238 instructions and 1.90 -> 1.57 misses
//!    per operation.
//!
//! Left to try for the cold path: fold the ghost into the table (quick_cache
//! does), and cut the instructions of an eviction.
//!
//! Store, single thread, same workload with 8-byte keys and values, capacity
//! 100k entries (`cargo bench -p cache --bench store -- --quick`):
//!
//! | implementation | ops/s | vs `lru` crate, byte keys |
//! |---|---|---|
//! | store, LRU | 1.33 M | 0.97x |
//! | store, S3-FIFO (the default before `adaptive`) | 2.02 M | 1.49x |
//! | `lru` crate, `Vec<u8>` keys and values | 1.36 M | 1x |
//! | `lru` crate, `u64` keys and values | 8.29 M | 6.1x |
//!
//! With owned byte keys (what a replicated store must hold) the store's LRU
//! runs level with the `lru` crate while also doing byte accounting, expiry
//! housekeeping and stats; S3-FIFO is faster because hits do not relink.
//! (These figures predate `adaptive` as the default; the bench now also
//! runs it, and has not been re-run since: see `store-speed` above for
//! its cost against S3-FIFO.) Against the `lru` crate on inline `u64` keys the store is 0.16x:
//! that is the price of heap-allocated keys and values, not of the policy.
//!
//! ## Tools
//!
//! - `cache-trace --policy NAME --capacity N [--sizes] < trace` replays a
//!   trace (one key per line; with `--sizes`, a second column in bytes) and
//!   prints `policy=NAME capacity=N requests=R hits=H hit_ratio=0.xxxxxx`.
//!   `NAME` is `lru`, `lfu`, `sieve`, `s3fifo`, `adaptive`, `best` (the
//!   default policy) or `all`.
//! - `cargo run --release -p cache --example make-trace -- zipf 1000000 0.99 2000000 1 > t.txt`
//!   writes a seeded trace for it (also `scans` and `shifting`; the table's
//!   shifting trace is `shifting 100000 0.8 2000000 4 4`).
//!
//! ## Running the tests
//!
//! ```text
//! cargo test -p cache                     # unit, scenario, property, tool tests (seconds)
//! cargo clippy -p cache --all-targets -- -D warnings
//! cargo bench -p cache -- --quick         # peers in the same run; prints ratios
//! ```

mod growth;
pub mod hash;
pub mod hotkeys;
pub mod near;
pub mod policy;
pub mod store;
pub mod table;
pub mod workload;

pub use policy::{PolicyKind, PolicyRevision};
pub use store::{Store, StoreConfig, StoreError};
