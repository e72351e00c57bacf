//! One replica's contents, key by key, read from its own state machine.

use std::collections::BTreeMap;

use api::lists::ListOp;
use api::zsets::{ZRange, ZSetOp};
use api::{HashOp, Op, Outcome, SCAN_POSITION_END, SetOp};
use shardkv::{ShardMachine, ShardState};

use super::translate::text;

/// Everything one replica's state machine holds, key by key: for each key
/// of every shard it serves, its type, whole contents and TTL, read from
/// the machine itself (no log entry, nothing changed), as text. Replicas
/// that applied the same log prefix must answer the same map.
///
/// `Err` says which read failed (a shard this replica claims to serve
/// that does not answer, or an answer of the wrong kind).
pub fn replica_contents(machine: &ShardMachine) -> Result<BTreeMap<String, String>, String> {
    let now_ms = machine.now_ms();
    let read = |op: Op| {
        machine
            .read(&op, now_ms)
            .map_err(|error| format!("{op:?} answered {error}"))
    };
    let mut contents = BTreeMap::new();
    for (shard, state) in machine.shard_states() {
        if state != ShardState::Serving {
            continue;
        }
        let mut position = 0;
        // Each step visits SCAN_STEP_KEYS keys or ends the scan, and a
        // shard holds far fewer than SCAN_STEP_KEYS * SCAN_STEPS_MAX.
        for step in 0..=SCAN_STEPS_MAX {
            if step == SCAN_STEPS_MAX {
                return Err(format!("shard {shard}: the scan did not end"));
            }
            let (keys, next_position) = match read(Op::ScanShard {
                shard: shard as u64,
                position,
                count: SCAN_STEP_KEYS,
                pattern: None,
                type_name: None,
            })? {
                Outcome::Keys {
                    keys,
                    next_position,
                } => (keys, next_position),
                other => return Err(format!("shard {shard}: a scan answered {other:?}")),
            };
            for key in keys {
                let value = key_contents(&read, &key)?;
                contents.insert(text(key), value);
            }
            if next_position == SCAN_POSITION_END {
                break;
            }
            position = next_position;
        }
    }
    Ok(contents)
}

const SCAN_STEP_KEYS: u64 = 1000;
const SCAN_STEPS_MAX: usize = 1000;

/// One key's type, whole contents and TTL, as text.
fn key_contents(
    read: &impl Fn(Op) -> Result<Outcome, String>,
    key: &[u8],
) -> Result<String, String> {
    let key = key.to_vec();
    let type_name = match read(Op::Type { key: key.clone() })? {
        Outcome::Value(Some(name)) => text(name),
        other => return Err(format!("TYPE {} answered {other:?}", text(key))),
    };
    let whole = match type_name.as_str() {
        "string" => Op::Get { key: key.clone() },
        "hash" => Op::Hash {
            key: key.clone(),
            op: HashOp::GetAll,
        },
        "list" => Op::List {
            key: key.clone(),
            op: ListOp::Range { start: 0, stop: -1 },
        },
        "set" => Op::Sets {
            key: key.clone(),
            op: SetOp::Members,
        },
        "zset" => Op::ZSet {
            key: key.clone(),
            op: ZSetOp::Range {
                range: ZRange::Rank { start: 0, stop: -1 },
                reverse: false,
                limit: None,
            },
        },
        other => return Err(format!("TYPE {} answered {other}", text(key))),
    };
    let contents = read(whole)?;
    let ttl = read(Op::Ttl { key })?;
    Ok(format!("{type_name} {contents:?} {ttl:?}"))
}
