//! Property: for any sequence of configurations over three groups (joins,
//! leaves, moves), with writes between them and every migration driven to
//! completion, (1) each shard is held by exactly its owner, (2) every key
//! reads what a plain map says, (3) the groups together store exactly one
//! copy of the data (challenge 1), and (4) a retried write is never
//! applied twice, wherever its shard went.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use api::MachineConfig;
use proptest::prelude::*;
use shardctrler::{Config, Gid};
use shardkv::{
    GroupCommand, GroupOutput, Op, Outcome, PullShards, ShardMachine, ShardState, key_to_shard,
};

const SHARDS: usize = 10;
const GIDS: [Gid; 3] = [1, 2, 3];

fn config(num: u64, shards: &[Gid]) -> Config {
    let mut groups = BTreeMap::new();
    for &gid in shards {
        let addr: SocketAddr = format!("10.0.0.{gid}:7000").parse().expect("address");
        groups.insert(gid, vec![addr]);
    }
    Config {
        num,
        shards: shards.to_vec(),
        groups,
        parked_shards: BTreeMap::new(),
        parked_groups: BTreeMap::new(),
        lost_groups: BTreeMap::new(),
    }
}

/// Every group applies `next`, then every pull and confirmation runs.
fn advance(groups: &mut BTreeMap<Gid, ShardMachine>, next: &Config, now_ms: u64) {
    for machine in groups.values_mut() {
        let output = machine.apply(&GroupCommand::Reconfigure(next.clone()), now_ms);
        assert_eq!(output, GroupOutput::Reconfigured { applied: true });
    }
    for gid in GIDS {
        let pulls = groups[&gid].pulls_wanted();
        for (donor, shards) in pulls {
            let request = PullShards {
                config_num: next.num,
                shards: shards.clone(),
                from_gid: gid,
            };
            let transfers = groups[&donor].offer(&request).expect("offered");
            let installed = groups.get_mut(&gid).expect("receiver").apply(
                &GroupCommand::InstallShards {
                    config_num: next.num,
                    transfers,
                },
                now_ms,
            );
            assert_eq!(
                installed,
                GroupOutput::Installed {
                    shards: shards.clone()
                }
            );
            let deleted = groups.get_mut(&donor).expect("donor").apply(
                &GroupCommand::DeleteShards {
                    config_num: next.num,
                    shards: shards.clone(),
                    from_gid: gid,
                },
                now_ms,
            );
            assert_eq!(deleted, GroupOutput::Deleted(Ok(())));
            let confirmed = groups.get_mut(&gid).expect("receiver").apply(
                &GroupCommand::ShardsConfirmed {
                    config_num: next.num,
                    shards: shards.clone(),
                },
                now_ms,
            );
            assert_eq!(confirmed, GroupOutput::Confirmed { shards });
        }
    }
}

fn client(
    groups: &mut BTreeMap<Gid, ShardMachine>,
    owner: Gid,
    client_id: u64,
    seq: u64,
    op: Op,
    now_ms: u64,
) -> Result<Outcome, api::Error> {
    match groups
        .get_mut(&owner)
        .expect("owner")
        .apply(&GroupCommand::Client { client_id, seq, op }, now_ms)
    {
        GroupOutput::Client(reply) => reply,
        other => panic!("a client command answered {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn migrations_keep_one_owner_one_copy_and_every_write(
        steps in prop::collection::vec(
            (prop::collection::vec(0usize..3, SHARDS), prop::collection::vec((0u8..20, 0u8..4), 1..8)),
            1..8,
        )
    ) {
        let mut groups: BTreeMap<Gid, ShardMachine> = GIDS
            .iter()
            .map(|&gid| {
                let machine = ShardMachine::new(gid, SHARDS, MachineConfig::default());
                (gid, crate::logged(machine))
            })
            .collect();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut seq = 0u64;
        let mut now_ms = 0u64;
        let mut last_write: Option<(u64, Op, api::Reply)> = None;
        for (num, (owners, writes)) in steps.iter().enumerate() {
            now_ms += 1000;
            let shards: Vec<Gid> = owners.iter().map(|&index| GIDS[index]).collect();
            let next = config(num as u64 + 1, &shards);
            advance(&mut groups, &next, now_ms);
            // A retry of the previous step's last write, at the shard's new
            // owner: answered from the moved record, not applied again.
            if let Some((retry_seq, op, first_reply)) = last_write.take() {
                let owner = next.shards[key_to_shard(op.key(), SHARDS)];
                let reply = client(&mut groups, owner, 7, retry_seq, op, now_ms);
                prop_assert_eq!(reply, first_reply);
            }
            for &(key_index, suffix) in writes {
                let key = format!("key-{key_index}").into_bytes();
                let value = vec![b'a' + suffix];
                let owner = next.shards[key_to_shard(&key, SHARDS)];
                seq += 1;
                let op = Op::Append { key: key.clone(), value: value.clone() };
                let reply = client(&mut groups, owner, 7, seq, op.clone(), now_ms);
                let appended = model.entry(key).or_default();
                appended.extend_from_slice(&value);
                // Append answers the length it made.
                prop_assert_eq!(&reply, &Ok(Outcome::Integer(appended.len() as i64)));
                last_write = Some((seq, op, reply));
            }
            // One owner per shard, nothing pending, nothing held elsewhere.
            for (&gid, machine) in &groups {
                prop_assert!(machine.migration_done());
                machine.check_invariants().map_err(TestCaseError::fail)?;
                let held: Vec<usize> = machine.shard_states().into_iter()
                    .filter(|(_, state)| *state == ShardState::Serving)
                    .map(|(shard, _)| shard)
                    .collect();
                prop_assert_eq!(held, next.shards_of(gid));
            }
            // Each group's copy writes the snapshot its machine writes.
            for machine in groups.values() {
                crate::snapshot_checked(machine);
            }
            // Exactly one copy of the data over all groups.
            let stored: u64 = groups.values().map(ShardMachine::stored_bytes).sum();
            let expected: u64 = model
                .iter()
                .map(|(key, value)| cache::store::weight_bytes(key, value))
                .sum();
            prop_assert_eq!(stored, expected);
            for (key, value) in &model {
                let owner = next.shards[key_to_shard(key, SHARDS)];
                let read = client(&mut groups, owner, 0, 0, Op::Get { key: key.clone() }, now_ms);
                prop_assert_eq!(read, Ok(Outcome::Value(Some(value.clone()))));
            }
        }
    }
}
