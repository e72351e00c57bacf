//! The per-group state machine, driven by hand: configurations, pulls,
//! installs, deletions, exactly-once across a move, TTLs across groups,
//! bad input, snapshots.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use api::{Error, MachineConfig};
use shardctrler::{Config, ConfigHistory, ConfigOp, Gid, Limits};
use shardkv::{
    ChunkOutcome, GroupCommand, GroupOutput, MigrationError, Op, Outcome, PullShards, ShardChunk,
    ShardId, ShardMachine, ShardState, key_to_shard,
};

const SHARDS: usize = 10;

fn config(num: u64, shards: [Gid; SHARDS]) -> Config {
    let mut groups = BTreeMap::new();
    for &gid in &shards {
        if gid != 0 {
            let addr: SocketAddr = format!("10.0.0.{gid}:7000").parse().expect("address");
            groups.insert(gid, vec![addr]);
        }
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

fn group(gid: Gid) -> ShardMachine {
    crate::logged(ShardMachine::new(gid, SHARDS, MachineConfig::default()))
}

/// A key in `shard` (searching a bounded range of names).
fn key_in(shard: ShardId) -> Vec<u8> {
    (0..10_000)
        .map(|index| format!("k{index}").into_bytes())
        .find(|key| key_to_shard(key, SHARDS) == shard)
        .expect("every shard has a key among the first 10000 names")
}

fn client(
    machine: &mut ShardMachine,
    client_id: u64,
    seq: u64,
    op: Op,
    now_ms: u64,
) -> Result<Outcome, Error> {
    match machine.apply(&GroupCommand::Client { client_id, seq, op }, now_ms) {
        GroupOutput::Client(reply) => reply,
        other => panic!("a client command answered {other:?}"),
    }
}

fn put(key: &[u8], value: &str) -> Op {
    Op::Put {
        key: key.to_vec(),
        value: value.as_bytes().to_vec(),
        ttl_ms: None,
    }
}

fn append(key: &[u8], value: &str) -> Op {
    Op::Append {
        key: key.to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

fn get(key: &[u8]) -> Op {
    Op::Get { key: key.to_vec() }
}

fn read(machine: &mut ShardMachine, key: &[u8], now_ms: u64) -> Result<Option<String>, Error> {
    client(machine, 0, 0, get(key), now_ms).map(|outcome| match outcome {
        Outcome::Value(value) => value.map(|bytes| String::from_utf8(bytes).expect("utf-8")),
        other => panic!("a get answered {other:?}"),
    })
}

fn reconfigure(machine: &mut ShardMachine, next: &Config, now_ms: u64) -> bool {
    match machine.apply(&GroupCommand::Reconfigure(next.clone()), now_ms) {
        GroupOutput::Reconfigured { applied } => applied,
        other => panic!("a reconfigure answered {other:?}"),
    }
}

/// Pulls every wanted shard of `receiver` from `donor` and installs it,
/// the way the servers do: each shard's encoded transfer in pieces of
/// `PIECE_BYTES`, one `ShardChunk` entry per piece.
fn pull_and_install(
    receiver: &mut ShardMachine,
    donor: &ShardMachine,
    now_ms: u64,
) -> Vec<ShardId> {
    const PIECE_BYTES: u64 = 100;
    let shards = receiver
        .pulls_wanted()
        .remove(&donor.gid())
        .unwrap_or_default();
    let config_num = receiver.config().num;
    let mut installed = Vec::new();
    for shard in shards {
        let whole = donor
            .offered_copy(config_num, shard, receiver.gid())
            .expect("the donor offers the shard")
            .encode()
            .expect("the shard encodes");
        let total_crc32 = crc32fast::hash(&whole);
        // Bounded: one piece per step, and the transfer has a known length.
        for _ in 0..=whole.len() as u64 / PIECE_BYTES {
            let offset = receiver
                .pull_progress(shard)
                .expect("a shard being pulled reports its progress");
            let chunk = ShardChunk::cut(shard, &whole, total_crc32, offset, PIECE_BYTES);
            match receiver.apply(&GroupCommand::ShardChunk { config_num, chunk }, now_ms) {
                GroupOutput::Chunk(ChunkOutcome::Stored { received_bytes }) => {
                    assert_eq!(
                        received_bytes,
                        (offset + PIECE_BYTES).min(whole.len() as u64)
                    );
                }
                GroupOutput::Chunk(ChunkOutcome::Installed) => {
                    installed.push(shard);
                    break;
                }
                other => panic!("a piece of shard {shard} at {offset} answered {other:?}"),
            }
        }
    }
    installed
}

/// The receiver tells the donor to delete, then records the confirmation.
fn delete_and_confirm(receiver: &mut ShardMachine, donor: &mut ShardMachine, now_ms: u64) {
    let shards = receiver
        .confirmations_wanted()
        .remove(&donor.gid())
        .unwrap_or_default();
    let config_num = receiver.config().num;
    let deleted = donor.apply(
        &GroupCommand::DeleteShards {
            config_num,
            shards: shards.clone(),
            from_gid: receiver.gid(),
        },
        now_ms,
    );
    assert_eq!(deleted, GroupOutput::Deleted(Ok(())));
    let confirmed = receiver.apply(
        &GroupCommand::ShardsConfirmed {
            config_num,
            shards: shards.clone(),
        },
        now_ms,
    );
    assert_eq!(confirmed, GroupOutput::Confirmed { shards });
}

#[test]
fn first_configuration_serves_unassigned_shards_at_once() {
    let mut g1 = group(1);
    let key = key_in(3);
    assert_eq!(
        client(&mut g1, 1, 1, put(&key, "v"), 1),
        Err(Error::WrongGroup {
            shard: 3,
            config_num: 0
        }),
        "configuration 0 serves nothing"
    );
    assert!(reconfigure(
        &mut g1,
        &config(1, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]),
        2
    ));
    assert!(g1.migration_done());
    assert_eq!(client(&mut g1, 1, 1, put(&key, "v"), 3), Ok(Outcome::Done));
    assert_eq!(read(&mut g1, &key, 4), Ok(Some("v".into())));
    assert_eq!(
        read(&mut g1, &key_in(7), 4),
        Err(Error::WrongGroup {
            shard: 7,
            config_num: 1
        })
    );
}

#[test]
fn configurations_apply_in_order_and_not_during_a_migration() {
    let mut g1 = group(1);
    assert!(
        !reconfigure(&mut g1, &config(2, [1; SHARDS]), 1),
        "skipped number 1"
    );
    assert!(reconfigure(&mut g1, &config(1, [1; SHARDS]), 1));
    assert!(
        !reconfigure(&mut g1, &config(1, [1; SHARDS]), 1),
        "the same number twice"
    );
    assert!(reconfigure(
        &mut g1,
        &config(2, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]),
        2
    ));
    assert!(!g1.migration_done());
    assert!(
        !reconfigure(&mut g1, &config(3, [1; SHARDS]), 3),
        "configuration 3 while shards 5..10 are still offered"
    );
    assert_eq!(g1.config().num, 2);
}

#[test]
fn reads_without_the_log_check_ownership_at_read_time_and_change_nothing() {
    let mut g1 = group(1);
    assert!(reconfigure(&mut g1, &config(1, [1; SHARDS]), 1));
    let key = key_in(0);
    client(&mut g1, 7, 1, put(&key, "v"), 2).expect("put");
    let before = g1.snapshot();
    assert_eq!(
        g1.read(&get(&key), 3),
        Ok(Outcome::Value(Some(b"v".to_vec())))
    );
    assert_eq!(g1.read(&get(&key_in(1)), 3), Ok(Outcome::Value(None)));
    assert_eq!(g1.snapshot(), before, "a read changed the machine");
    // Shard 0 moves to group 2: from the applied configuration on, a read
    // of it here is WrongGroup, as through the log.
    assert!(reconfigure(
        &mut g1,
        &config(2, [2, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
        4
    ));
    assert_eq!(
        g1.read(&get(&key), 5),
        Err(Error::WrongGroup {
            shard: 0,
            config_num: 2
        })
    );
    // The receiver does not serve it while it is still pulling.
    let mut g2 = group(2);
    assert!(reconfigure(&mut g2, &config(1, [1; SHARDS]), 1));
    assert!(reconfigure(
        &mut g2,
        &config(2, [2, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
        4
    ));
    assert!(matches!(
        g2.read(&get(&key), 5),
        Err(Error::WrongGroup { shard: 0, .. })
    ));
}

#[test]
fn only_a_group_that_holds_nothing_skips_configurations() {
    // Group 3 holds nothing and gets nothing in configuration 5: it may
    // jump there (the controller no longer keeps 1..4), then walks on.
    let mut g3 = group(3);
    assert!(
        reconfigure(&mut g3, &config(5, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]), 1),
        "a group holding nothing jumps to a configuration giving it nothing"
    );
    assert_eq!(g3.config().num, 5);
    assert!(
        !reconfigure(&mut g3, &config(4, [1; SHARDS]), 1),
        "never backwards"
    );
    assert!(
        !reconfigure(&mut g3, &config(7, [3, 1, 1, 1, 1, 2, 2, 2, 2, 2]), 2),
        "no jump into a configuration that gives it a shard (its donor is in the skipped one)"
    );
    assert!(reconfigure(
        &mut g3,
        &config(6, [3, 1, 1, 1, 1, 2, 2, 2, 2, 2]),
        2
    ));
    assert_eq!(g3.shard_states().len(), 1, "pulling shard 0 from group 1");
    // Group 1 serves every shard: it may not skip, even to a configuration
    // where it owns nothing (it must hand its shards over in order).
    let mut g1 = group(1);
    assert!(reconfigure(&mut g1, &config(1, [1; SHARDS]), 1));
    assert!(
        !reconfigure(&mut g1, &config(3, [2; SHARDS]), 2),
        "a group holding shards skipped a configuration"
    );
    assert_eq!(g1.config().num, 1);
}

#[test]
fn a_shard_moves_with_its_data_and_exactly_once_records() {
    let mut g1 = group(1);
    let mut g2 = group(2);
    let moving = key_in(7);
    let staying = key_in(2);
    let c1 = config(1, [1; SHARDS]);
    assert!(reconfigure(&mut g1, &c1, 1));
    assert!(reconfigure(&mut g2, &c1, 1));
    assert_eq!(
        client(&mut g1, 9, 1, put(&moving, "a"), 2),
        Ok(Outcome::Done)
    );
    assert_eq!(
        client(&mut g1, 9, 2, append(&moving, "b"), 3),
        Ok(Outcome::Integer(2))
    );
    assert_eq!(
        client(&mut g1, 9, 3, put(&staying, "s"), 4),
        Ok(Outcome::Done)
    );

    let c2 = config(2, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    assert!(reconfigure(&mut g1, &c2, 5));
    assert!(reconfigure(&mut g2, &c2, 5));
    assert_eq!(g1.shard_states()[&7], ShardState::Offering { to: 2 });
    assert_eq!(g2.shard_states()[&7], ShardState::Pulling { from: 1 });
    assert_eq!(
        read(&mut g1, &moving, 6),
        Err(Error::WrongGroup {
            shard: 7,
            config_num: 2
        }),
        "an offered shard is frozen"
    );
    assert_eq!(
        read(&mut g2, &moving, 6),
        Err(Error::WrongGroup {
            shard: 7,
            config_num: 2
        }),
        "a shard whose data has not arrived is not served"
    );
    assert_eq!(
        read(&mut g1, &staying, 6),
        Ok(Some("s".into())),
        "challenge 2: unaffected shards serve"
    );

    assert_eq!(pull_and_install(&mut g2, &g1, 7), vec![5, 6, 7, 8, 9]);
    assert_eq!(g2.shard_states()[&7], ShardState::Confirming { from: 1 });
    assert_eq!(read(&mut g2, &moving, 8), Ok(Some("ab".into())));
    // The clerk retries its append (seq 2) at the new owner: not applied again.
    assert_eq!(
        client(&mut g2, 9, 2, append(&moving, "b"), 9),
        Ok(Outcome::Integer(2))
    );
    assert_eq!(read(&mut g2, &moving, 10), Ok(Some("ab".into())));
    assert_eq!(
        client(&mut g2, 9, 4, append(&moving, "c"), 11),
        Ok(Outcome::Integer(3))
    );
    assert_eq!(read(&mut g2, &moving, 12), Ok(Some("abc".into())));
    assert!(!g2.migration_done(), "the donor has not deleted yet");

    let g1_bytes_before = g1.stored_bytes();
    delete_and_confirm(&mut g2, &mut g1, 13);
    assert!(
        g1.stored_bytes() < g1_bytes_before,
        "challenge 1: the donor deleted its copy"
    );
    assert!(!g1.shard_states().contains_key(&7));
    assert!(g1.migration_done() && g2.migration_done());
    g1.check_invariants().expect("g1 consistent");
    g2.check_invariants().expect("g2 consistent");
}

#[test]
fn duplicate_and_stale_transfers_are_harmless() {
    let mut g1 = group(1);
    let mut g2 = group(2);
    let key = key_in(9);
    let c1 = config(1, [1; SHARDS]);
    let c2 = config(2, [1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
    for machine in [&mut g1, &mut g2] {
        assert!(reconfigure(machine, &c1, 1));
    }
    assert_eq!(client(&mut g1, 5, 1, put(&key, "x"), 2), Ok(Outcome::Done));
    for machine in [&mut g1, &mut g2] {
        assert!(reconfigure(machine, &c2, 3));
    }
    let request = PullShards {
        config_num: 2,
        shards: vec![9],
        from_gid: 2,
    };
    let transfers = g1.offer(&request).expect("offered");
    let install = GroupCommand::InstallShards {
        config_num: 2,
        transfers: transfers.clone(),
    };
    assert_eq!(
        g2.apply(&install, 4),
        GroupOutput::Installed { shards: vec![9] }
    );
    assert_eq!(
        client(&mut g2, 5, 2, append(&key, "y"), 5),
        Ok(Outcome::Integer(2))
    );
    assert_eq!(
        g2.apply(&install, 6),
        GroupOutput::Installed { shards: vec![] },
        "a second copy of the transfer"
    );
    assert_eq!(
        read(&mut g2, &key, 7),
        Ok(Some("xy".into())),
        "the duplicate overwrote nothing"
    );
    let stale = GroupCommand::InstallShards {
        config_num: 1,
        transfers,
    };
    assert_eq!(
        g2.apply(&stale, 8),
        GroupOutput::Installed { shards: vec![] }
    );

    // The donor answers by configuration number.
    let early = PullShards {
        config_num: 3,
        shards: vec![9],
        from_gid: 2,
    };
    assert_eq!(
        g1.offer(&early),
        Err(MigrationError::NotReady {
            donor_config_num: 2,
            wanted: 3
        })
    );
    assert_eq!(
        g1.offer(&PullShards {
            config_num: 2,
            shards: vec![3],
            from_gid: 2
        }),
        Err(MigrationError::NotOffered {
            shard: 3,
            wanted: 2
        }),
        "shard 3 stays with group 1"
    );
    let future_delete = GroupCommand::DeleteShards {
        config_num: 3,
        shards: vec![9],
        from_gid: 2,
    };
    assert_eq!(
        g1.apply(&future_delete, 9),
        GroupOutput::Deleted(Err(MigrationError::NotReady {
            donor_config_num: 2,
            wanted: 3
        }))
    );
    let delete = GroupCommand::DeleteShards {
        config_num: 2,
        shards: vec![9],
        from_gid: 2,
    };
    assert_eq!(g1.apply(&delete, 10), GroupOutput::Deleted(Ok(())));
    assert_eq!(
        g1.apply(&delete, 11),
        GroupOutput::Deleted(Ok(())),
        "deleting twice"
    );
    let confirm = GroupCommand::ShardsConfirmed {
        config_num: 2,
        shards: vec![9],
    };
    assert_eq!(
        g2.apply(&confirm, 12),
        GroupOutput::Confirmed { shards: vec![9] }
    );
    assert_eq!(
        g2.apply(&confirm, 13),
        GroupOutput::Confirmed { shards: vec![] }
    );
    // Both move on; a late delete for configuration 2 is still answered.
    let c3 = config(3, [1, 1, 1, 1, 1, 1, 1, 1, 2, 2]);
    assert!(reconfigure(&mut g1, &c3, 14));
    assert!(reconfigure(&mut g2, &c3, 14));
    assert_eq!(g1.apply(&delete, 15), GroupOutput::Deleted(Ok(())));
    assert_eq!(
        g1.offer(&request),
        Err(MigrationError::MovedOn {
            donor_config_num: 3,
            wanted: 2
        })
    );
}

#[test]
fn migration_requests_from_a_group_the_configuration_does_not_name_are_refused() {
    // Configuration 2 gives shard 9 to group 2. Group 3 (a rogue, or a
    // confused member) asks group 1 for it and for its deletion.
    let mut g1 = group(1);
    let mut g2 = group(2);
    let key = key_in(9);
    let c1 = config(1, [1; SHARDS]);
    let c2 = config(2, [1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
    for machine in [&mut g1, &mut g2] {
        assert!(reconfigure(machine, &c1, 1));
    }
    assert_eq!(client(&mut g1, 5, 1, put(&key, "x"), 2), Ok(Outcome::Done));
    for machine in [&mut g1, &mut g2] {
        assert!(reconfigure(machine, &c2, 3));
    }
    let wrong = MigrationError::WrongReceiver {
        shard: 9,
        wanted: 2,
        from_gid: 3,
        owner: 2,
    };
    let rogue_pull = PullShards {
        config_num: 2,
        shards: vec![9],
        from_gid: 3,
    };
    assert_eq!(g1.offer(&rogue_pull), Err(wrong.clone()));
    assert_eq!(g1.check_offered(2, 9, 3), Err(wrong.clone()));
    assert!(
        g1.offered_copy(2, 9, 3).is_err(),
        "no copy, sessions included"
    );
    assert_eq!(
        wrong.to_string(),
        "shard 9 goes to group 2 in configuration 2, not to group 3"
    );
    let rogue_delete = GroupCommand::DeleteShards {
        config_num: 2,
        shards: vec![9],
        from_gid: 3,
    };
    assert_eq!(g1.apply(&rogue_delete, 4), GroupOutput::Deleted(Err(wrong)));
    assert_eq!(
        g1.shard_states().get(&9),
        Some(&ShardState::Offering { to: 2 }),
        "the donor's copy stays"
    );
    // The group the configuration names still gets the shard, and its
    // delete goes through.
    assert_eq!(pull_and_install(&mut g2, &g1, 5), vec![9]);
    delete_and_confirm(&mut g2, &mut g1, 6);
    assert_eq!(g1.shard_states().get(&9), None);
    assert_eq!(read(&mut g2, &key, 7), Ok(Some("x".into())));
}

#[test]
fn received_shards_serve_while_another_donor_is_silent() {
    // Challenge 2 (partial): group 3 takes shards from groups 1 and 2;
    // group 1 never answers.
    let (mut g1, mut g2, mut g3) = (group(1), group(2), group(3));
    let c1 = config(1, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    let c2 = config(2, [3, 1, 1, 1, 1, 3, 2, 2, 2, 2]);
    for machine in [&mut g1, &mut g2, &mut g3] {
        assert!(reconfigure(machine, &c1, 1));
    }
    let from_g2 = key_in(5);
    assert_eq!(
        client(&mut g2, 1, 1, put(&from_g2, "two"), 2),
        Ok(Outcome::Done)
    );
    for machine in [&mut g2, &mut g3] {
        assert!(reconfigure(machine, &c2, 3));
    }
    assert_eq!(
        g3.pulls_wanted(),
        BTreeMap::from([(1, vec![0]), (2, vec![5])])
    );
    assert_eq!(pull_and_install(&mut g3, &g2, 4), vec![5]);
    assert_eq!(read(&mut g3, &from_g2, 5), Ok(Some("two".into())));
    assert_eq!(
        read(&mut g3, &key_in(0), 5),
        Err(Error::WrongGroup {
            shard: 0,
            config_num: 2
        })
    );
    delete_and_confirm(&mut g3, &mut g2, 6);
    assert_eq!(g3.shard_states()[&5], ShardState::Serving);
    assert!(!g3.migration_done(), "shard 0 is still awaited");
}

#[test]
fn ttl_deadlines_survive_a_move_between_time_bases() {
    let mut g1 = group(1);
    let mut g2 = group(2);
    let c1 = config(1, [1; SHARDS]);
    assert!(reconfigure(&mut g1, &c1, 50_000));
    assert!(reconfigure(&mut g2, &c1, 10));
    let key = key_in(4);
    let ttl_put = Op::Put {
        key: key.clone(),
        value: b"t".to_vec(),
        ttl_ms: Some(5_000),
    };
    assert_eq!(client(&mut g1, 1, 1, ttl_put, 50_000), Ok(Outcome::Done));
    let c2 = config(2, [1, 1, 1, 1, 2, 1, 1, 1, 1, 1]);
    assert!(reconfigure(&mut g1, &c2, 51_000));
    assert!(reconfigure(&mut g2, &c2, 20));
    // Group 2's clock is far behind group 1's: the entry must still have
    // 4 s left (it had 4 s left when the donor froze it).
    assert_eq!(pull_and_install(&mut g2, &g1, 100), vec![4]);
    assert_eq!(read(&mut g2, &key, 3_000), Ok(Some("t".into())));
    assert_eq!(read(&mut g2, &key, 4_050), Ok(Some("t".into())));
    assert_eq!(
        read(&mut g2, &key, 4_150),
        Ok(None),
        "expired 4 s after the install"
    );
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let mut g1 = group(1);
    assert!(reconfigure(&mut g1, &config(1, [1; SHARDS]), 1));
    let limits = *g1.limits();
    let long_key = vec![b'k'; limits.max_key_bytes as usize + 1];
    let refused = g1.check_client(&put(&long_key, "v"));
    assert!(
        matches!(refused, Err(Error::TooLarge { .. })),
        "{refused:?}"
    );
    let key = key_in(1);
    let zero_ttl = Op::Put {
        key: key.clone(),
        value: b"v".to_vec(),
        ttl_ms: Some(0),
    };
    assert_eq!(client(&mut g1, 1, 1, zero_ttl, 2), Err(Error::ZeroTtl));
    let big = Op::Append {
        key: key.clone(),
        value: vec![b'x'; limits.max_value_bytes as usize + 1],
    };
    assert!(matches!(
        client(&mut g1, 1, 2, big, 3),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(read(&mut g1, &key, 4), Ok(None));
    assert_eq!(g1.stored_bytes(), 0);
    // A stale seq after a newer write.
    assert_eq!(client(&mut g1, 1, 5, put(&key, "v"), 5), Ok(Outcome::Done));
    assert_eq!(
        client(&mut g1, 1, 4, put(&key, "old"), 6),
        Err(Error::Stale { seq: 4, latest: 5 })
    );
    assert_eq!(read(&mut g1, &key, 7), Ok(Some("v".into())));
}

#[test]
fn a_malformed_transfer_is_refused() {
    let mut g2 = group(2);
    assert!(reconfigure(&mut g2, &config(1, [1; SHARDS]), 1));
    assert!(reconfigure(
        &mut g2,
        &config(2, [1, 1, 1, 1, 1, 1, 1, 1, 1, 2]),
        2
    ));
    let bad = shardkv::ShardTransfer {
        shard: 9,
        store: vec![1, 2, 3],
        shard_now_ms: 0,
        sessions: vec![],
    };
    let install = GroupCommand::InstallShards {
        config_num: 2,
        transfers: vec![bad],
    };
    assert_eq!(
        g2.apply(&install, 3),
        GroupOutput::Installed { shards: vec![] }
    );
    assert_eq!(g2.shard_states()[&9], ShardState::Pulling { from: 1 });
}

#[test]
fn stored_bytes_do_not_grow_with_moves() {
    // Challenge 1 at the machine level: move every shard back and forth.
    let mut g1 = group(1);
    let mut g2 = group(2);
    let c1 = config(1, [1; SHARDS]);
    assert!(reconfigure(&mut g1, &c1, 1));
    assert!(reconfigure(&mut g2, &c1, 1));
    for index in 0..100u64 {
        let key = format!("key-{index}").into_bytes();
        assert_eq!(
            client(&mut g1, 1, index + 1, put(&key, "0123456789"), 2),
            Ok(Outcome::Done)
        );
    }
    let one_copy = g1.stored_bytes();
    for round in 0..10u64 {
        let to = if round % 2 == 0 { 2 } else { 1 };
        let next = config(2 + round, [to; SHARDS]);
        assert!(reconfigure(&mut g1, &next, 3 + round));
        assert!(reconfigure(&mut g2, &next, 3 + round));
        let (receiver, donor) = if to == 2 {
            (&mut g2, &mut g1)
        } else {
            (&mut g1, &mut g2)
        };
        assert_eq!(pull_and_install(receiver, donor, 3 + round).len(), SHARDS);
        delete_and_confirm(receiver, donor, 3 + round);
        assert_eq!(
            g1.stored_bytes() + g2.stored_bytes(),
            one_copy,
            "round {round}: both groups together hold one copy"
        );
    }
}

#[test]
fn snapshot_round_trip_and_corruption() {
    let mut g1 = group(1);
    assert!(reconfigure(
        &mut g1,
        &config(1, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]),
        1
    ));
    let key = key_in(0);
    assert_eq!(client(&mut g1, 3, 1, put(&key, "v"), 2), Ok(Outcome::Done));
    let bytes = crate::snapshot_checked(&g1);
    let mut restored = ShardMachine::restore(&bytes).expect("restores");
    assert_eq!(
        restored.snapshot(),
        bytes,
        "restore then snapshot gives the same bytes"
    );
    assert_eq!(read(&mut restored, &key, 3), Ok(Some("v".into())));
    assert_eq!(
        client(&mut restored, 3, 1, put(&key, "w"), 4),
        Ok(Outcome::Done),
        "recorded"
    );
    assert_eq!(
        read(&mut restored, &key, 5),
        Ok(Some("v".into())),
        "not applied twice"
    );
    assert!(ShardMachine::restore(&bytes[..bytes.len() / 2]).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(ShardMachine::restore(&trailing).is_err());
}

/// The write fence's marker (`PollerLeases`) is replicated state: a new
/// group says no poller may exist, the last marker applied decides, a
/// snapshot carries it, and a snapshot from before snapshots carried it
/// (format 1: the machine alone) reads as "may exist".
#[test]
fn the_poller_marker_travels_in_snapshots() {
    let mut g1 = group(1);
    assert!(!g1.pollers_may_exist(), "an empty log: no poller ever");
    for may_exist in [true, false] {
        assert_eq!(
            g1.apply(&GroupCommand::PollerLeases { may_exist }, 1),
            GroupOutput::Noted
        );
        assert_eq!(g1.pollers_may_exist(), may_exist);
        let restored = ShardMachine::restore(&crate::snapshot_checked(&g1)).expect("restores");
        assert_eq!(restored.pollers_may_exist(), may_exist);
        assert_eq!(restored.snapshot(), g1.snapshot());
    }
    let format_1 = codec::encode(&g1);
    let old = ShardMachine::restore(&format_1).expect("format 1 still reads");
    assert!(old.pollers_may_exist(), "unknown counts as may exist");
}

/// Every group leaves, then one joins: the shards stay parked with the
/// last groups (frozen, still answering pulls), the joining group pulls
/// them, and every acknowledged write is there. Configurations come from
/// the controller's own history, so its parking and the groups' agree.
#[test]
fn acknowledged_writes_survive_every_group_leaving() {
    let mut history = ConfigHistory::new(Limits::new(SHARDS));
    let servers = |gid: Gid| -> Vec<SocketAddr> {
        vec![format!("10.0.0.{gid}:7000").parse().expect("address")]
    };
    let mut change = |op: ConfigOp| -> Config {
        history
            .apply(&op)
            .expect("the controller accepts the change");
        history.latest().clone()
    };
    let join = |gids: &[Gid]| ConfigOp::Join {
        groups: gids.iter().map(|&gid| (gid, servers(gid))).collect(),
    };
    let (mut one, mut two, mut three) = (group(1), group(2), group(3));

    // Phase 1: groups 1 and 2 serve every shard; write one key per shard.
    let first = change(join(&[1, 2]));
    assert!(reconfigure(&mut one, &first, 10));
    assert!(reconfigure(&mut two, &first, 10));
    assert!(reconfigure(&mut three, &first, 10));
    let keys: Vec<Vec<u8>> = (0..SHARDS).map(key_in).collect();
    for (index, key) in keys.iter().enumerate() {
        let owner = if first.shards[index] == 1 {
            &mut one
        } else {
            &mut two
        };
        let value = format!("v{index}");
        assert_eq!(
            client(owner, 7, index as u64 + 1, put(key, &value), 20),
            Ok(Outcome::Done)
        );
    }

    // Phase 2: both leave at once; each parks its shards, frozen.
    let empty = change(ConfigOp::Leave { gids: vec![1, 2] });
    assert!(empty.groups.is_empty());
    assert_eq!(empty.parked_shards.len(), SHARDS);
    for machine in [&mut one, &mut two, &mut three] {
        assert!(reconfigure(machine, &empty, 30));
        assert!(machine.migration_done(), "parked shards do not block");
    }
    for (shard, key) in keys.iter().enumerate() {
        let holder = if empty.parked_shards[&shard] == 1 {
            &mut one
        } else {
            &mut two
        };
        assert_eq!(holder.shard_states()[&shard], ShardState::Parked);
        assert_eq!(
            client(holder, 8, 1, get(key), 40),
            Err(Error::WrongGroup {
                shard: shard as u64,
                config_num: empty.num
            }),
            "a parked shard is frozen"
        );
    }

    // Phase 3: group 3 joins and gets every shard; it pulls them from the
    // groups they are parked with.
    let back = change(join(&[3]));
    assert!(back.parked_shards.is_empty());
    for machine in [&mut one, &mut two, &mut three] {
        assert!(reconfigure(machine, &back, 50));
    }
    let from_one = pull_and_install(&mut three, &one, 60);
    let from_two = pull_and_install(&mut three, &two, 60);
    assert_eq!(from_one.len() + from_two.len(), SHARDS);
    delete_and_confirm(&mut three, &mut one, 70);
    delete_and_confirm(&mut three, &mut two, 70);
    for (index, key) in keys.iter().enumerate() {
        assert_eq!(
            read(&mut three, key, 80),
            Ok(Some(format!("v{index}"))),
            "shard {index} kept its acknowledged write"
        );
    }
    assert_eq!(one.stored_bytes() + two.stored_bytes(), 0);
    assert!(one.shard_states().is_empty() && two.shard_states().is_empty());
    for machine in [&one, &two, &three] {
        machine
            .check_invariants()
            .expect("consistent after the round trip");
    }
}

/// A group that parked shards and joins again serves them itself, without
/// a pull, and their TTLs did not run while they were parked.
#[test]
fn a_parked_shard_given_back_to_its_holder_is_served_at_once() {
    let mut history = ConfigHistory::new(Limits::new(SHARDS));
    let servers = vec!["10.0.0.1:7000".parse::<SocketAddr>().expect("address")];
    let mut one = group(1);
    let key = key_in(0);
    let join = ConfigOp::Join {
        groups: BTreeMap::from([(1, servers)]),
    };
    history.apply(&join).expect("join");
    assert!(reconfigure(&mut one, history.latest(), 0));
    let with_ttl = Op::Put {
        key: key.clone(),
        value: b"v".to_vec(),
        ttl_ms: Some(1_000),
    };
    assert_eq!(client(&mut one, 7, 1, with_ttl, 0), Ok(Outcome::Done));
    history
        .apply(&ConfigOp::Leave { gids: vec![1] })
        .expect("leave");
    assert!(reconfigure(&mut one, history.latest(), 500));
    history.apply(&join).expect("join again");
    assert!(reconfigure(&mut one, history.latest(), 100_000));
    assert!(one.pulls_wanted().is_empty());
    assert_eq!(one.shard_states()[&0], ShardState::Serving);
    assert_eq!(read(&mut one, &key, 100_100), Ok(Some("v".to_string())));
    assert_eq!(read(&mut one, &key, 100_600), Ok(None), "the TTL resumed");
}

/// A key named `name` whose hash tag puts it in the shard of `anchor`.
fn tagged(anchor: &[u8], name: &str) -> Vec<u8> {
    format!("{{{}}}{name}", String::from_utf8_lossy(anchor)).into_bytes()
}

#[test]
fn multi_key_ops_are_one_shard_and_move_with_it() {
    let mut g1 = group(1);
    let mut g2 = group(2);
    let anchor = key_in(7);
    let (a, b, c) = (
        tagged(&anchor, "a"),
        tagged(&anchor, "b"),
        tagged(&anchor, "c"),
    );
    assert_eq!(key_to_shard(&a, SHARDS), 7);
    let elsewhere = key_in(2);
    let c1 = config(1, [1; SHARDS]);
    assert!(reconfigure(&mut g1, &c1, 1));
    assert!(reconfigure(&mut g2, &c1, 1));

    let mset = Op::MultiSet {
        pairs: vec![(a.clone(), b"1".to_vec()), (b.clone(), b"2".to_vec())],
        only_if_none_exist: true,
    };
    assert_eq!(client(&mut g1, 9, 1, mset, 2), Ok(Outcome::Applied(true)));
    // Keys of two shards: refused before proposing and at apply, even
    // though this group serves both; nothing changes.
    let cross = Op::Rename {
        source: a.clone(),
        destination: elsewhere.clone(),
        only_if_new: false,
    };
    assert_eq!(g1.check_client(&cross), Err(Error::CrossShard));
    assert_eq!(client(&mut g1, 9, 2, cross, 3), Err(Error::CrossShard));
    let cross_mset = Op::MultiSet {
        pairs: vec![
            (c.clone(), b"x".to_vec()),
            (elsewhere.clone(), b"y".to_vec()),
        ],
        only_if_none_exist: false,
    };
    assert_eq!(client(&mut g1, 9, 3, cross_mset, 3), Err(Error::CrossShard));
    assert_eq!(read(&mut g1, &a, 4), Ok(Some("1".into())));
    assert_eq!(read(&mut g1, &elsewhere, 4), Ok(None));
    assert_eq!(read(&mut g1, &c, 4), Ok(None));

    let rename = Op::Rename {
        source: a.clone(),
        destination: c.clone(),
        only_if_new: false,
    };
    assert_eq!(
        client(&mut g1, 9, 4, rename.clone(), 5),
        Ok(Outcome::Applied(true))
    );

    // Shard 7 moves to group 2: a multi-key op on it is a wrong-group
    // answer at the frozen donor and at the receiver before the data.
    let c2 = config(2, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    assert!(reconfigure(&mut g1, &c2, 6));
    assert!(reconfigure(&mut g2, &c2, 6));
    let copy = Op::Copy {
        source: b.clone(),
        destination: a.clone(),
        replace: false,
    };
    let wrong_group = Err(Error::WrongGroup {
        shard: 7,
        config_num: 2,
    });
    assert_eq!(
        g1.check_client(&copy),
        wrong_group.clone().map(|_: Outcome| ())
    );
    assert_eq!(client(&mut g1, 9, 5, copy.clone(), 7), wrong_group);
    assert_eq!(client(&mut g2, 9, 5, copy.clone(), 7), wrong_group);

    assert_eq!(pull_and_install(&mut g2, &g1, 8), vec![5, 6, 7, 8, 9]);
    // The clerk's retry of the rename (seq 4) at the new owner is
    // answered from the record that moved with the shard, not run again
    // (run again it would fail: the source is gone).
    assert_eq!(client(&mut g2, 9, 4, rename, 9), Ok(Outcome::Applied(true)));
    assert_eq!(client(&mut g2, 9, 5, copy, 10), Ok(Outcome::Applied(true)));
    assert_eq!(read(&mut g2, &a, 11), Ok(Some("2".into())));
    assert_eq!(read(&mut g2, &c, 11), Ok(Some("1".into())));
    delete_and_confirm(&mut g2, &mut g1, 12);
    g1.check_invariants().expect("g1 consistent");
    g2.check_invariants().expect("g2 consistent");
}

/// Asynchronous replication's prediction: a plain put of a served shard,
/// new to its session, is told before it applies, and the applied output
/// is the one told; anything that could change it is not told.
#[test]
fn a_put_is_told_before_it_applies_only_when_nothing_can_change_its_answer() {
    let mut g1 = group(1);
    let served = key_in(3);
    let command = |client_id, seq, op| GroupCommand::Client { client_id, seq, op };
    let told = |machine: &ShardMachine, next: &GroupCommand, earlier: &[GroupCommand]| {
        machine.output_known_before(next, earlier.iter())
    };
    let put_served = command(1, 1, put(&served, "v"));
    assert_eq!(
        told(&g1, &put_served, &[]),
        None,
        "configuration 0 serves nothing: the answer is WrongGroup"
    );
    assert!(reconfigure(
        &mut g1,
        &config(1, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]),
        2
    ));
    let answer = told(&g1, &put_served, &[]);
    assert_eq!(answer, Some(GroupOutput::Client(Ok(Outcome::Done))));
    assert_eq!(
        told(&g1, &command(1, 1, put(&key_in(7), "v")), &[]),
        None,
        "another group's shard"
    );
    assert_eq!(
        told(&g1, &command(1, 1, append(&served, "v")), &[]),
        None,
        "an append answers a length"
    );
    let reconfiguring = GroupCommand::Reconfigure(config(2, [2; SHARDS]));
    assert_eq!(
        told(&g1, &put_served, &[reconfiguring]),
        None,
        "a configuration before it may take the shard away"
    );
    assert_eq!(
        told(&g1, &put_served, &[command(1, 1, get(&served))]),
        None,
        "the same session at the same sequence number before it"
    );
    assert_eq!(
        told(&g1, &put_served, &[command(1, 2, put(&served, "w"))]),
        None,
        "a later write of the session before it makes it stale"
    );
    assert_eq!(
        told(
            &g1,
            &command(1, 3, put(&served, "x")),
            &[command(2, 9, put(&served, "w"))]
        ),
        Some(GroupOutput::Client(Ok(Outcome::Done))),
        "another client's write before it changes nothing"
    );
    // The applied answer is the one told; once applied, a retry is a
    // duplicate, which is not told (its answer is the recorded one).
    assert_eq!(g1.apply(&put_served, 3), answer.expect("told"));
    assert_eq!(told(&g1, &put_served, &[]), None);
}

fn with_capacity(gid: Gid, capacity_bytes: u64) -> ShardMachine {
    let mut limits = MachineConfig::default();
    limits.store.capacity_bytes = capacity_bytes;
    ShardMachine::new(gid, SHARDS, limits)
}

fn set_capacity(machine: &mut ShardMachine, capacity_bytes: u64) -> GroupOutput {
    machine.apply(&GroupCommand::SetStoreCapacity { capacity_bytes }, 1)
}

/// Two replicas of one group whose nodes were given different capacities,
/// applying the same log: the first configuration, the capacity (if any),
/// then 200 values of 100 bytes into one shard, more than the smaller
/// capacity holds. (A server proposes no write before the capacity; the
/// machine itself does not refuse them, so that entries an older leader
/// wrote apply alike everywhere.)
fn replicas_apply_after(capacity_bytes: Option<u64>) -> (ShardMachine, ShardMachine) {
    let (mut small, mut large) = (with_capacity(1, 8_000), with_capacity(1, 64_000));
    let key_base = key_in(0);
    for replica in [&mut small, &mut large] {
        assert!(reconfigure(replica, &config(1, [1; SHARDS]), 1));
        if let Some(capacity_bytes) = capacity_bytes {
            let output = set_capacity(replica, capacity_bytes);
            assert!(matches!(
                output,
                GroupOutput::StoreCapacity { applied: true, .. }
            ));
        }
        for index in 0..200u64 {
            let key = tagged(&key_base, &format!("{index}"));
            let value = "v".repeat(100);
            assert_eq!(
                client(replica, 1, index + 1, put(&key, &value), 2),
                Ok(Outcome::Done)
            );
        }
    }
    (small, large)
}

#[test]
fn replicas_configured_with_different_capacities_agree_once_the_log_sets_it() {
    // Without the command each replica evicts at its own size: they differ.
    let (small, large) = replicas_apply_after(None);
    assert_ne!(
        small.snapshot(),
        large.snapshot(),
        "the replicas should differ"
    );
    // With it (after the shards were made at each node's own size), both
    // have the log's size and the same state, whichever size it is.
    for capacity_bytes in [8_000, 16_000, 64_000] {
        let (small, large) = replicas_apply_after(Some(capacity_bytes));
        assert_eq!(small.store_capacity_bytes(), capacity_bytes);
        assert_eq!(small.snapshot(), large.snapshot());
        assert!(small.stored_bytes() <= capacity_bytes);
    }
}

/// Writes 100 values of 100 bytes into `shard` of `machine` (client 1,
/// seqs 1..=100): about 18 KB with the entries' overhead.
fn fill_one_shard(machine: &mut ShardMachine, shard: ShardId) {
    let key_base = key_in(shard);
    for index in 0..100u64 {
        let key = tagged(&key_base, &format!("{index}"));
        assert_eq!(
            client(machine, 1, index + 1, put(&key, &"v".repeat(100)), 2),
            Ok(Outcome::Done)
        );
    }
}

/// Every group leaves (configuration 2): group 1's shards are parked there.
fn park_every_shard(machine: &mut ShardMachine) {
    let mut parked = config(2, [0; SHARDS]);
    parked.parked_shards = (0..SHARDS).map(|shard| (shard, 1)).collect();
    assert!(reconfigure(machine, &parked, 3));
}

#[test]
fn a_smaller_capacity_shrinks_served_shards_and_zero_is_refused() {
    let mut g1 = crate::logged(with_capacity(1, 64_000));
    assert!(reconfigure(&mut g1, &config(1, [1; SHARDS]), 1));
    fill_one_shard(&mut g1, 3);
    let before = g1.stored_bytes();
    assert!(before > 10_000);
    let zero = set_capacity(&mut g1, 0);
    assert_eq!(
        zero,
        GroupOutput::StoreCapacity {
            applied: false,
            evicted: 0
        }
    );
    assert_eq!(
        (g1.stored_bytes(), g1.store_capacity_bytes()),
        (before, 64_000)
    );
    let GroupOutput::StoreCapacity {
        applied: true,
        evicted,
    } = set_capacity(&mut g1, 10_000)
    else {
        panic!("a capacity of 10000 should apply");
    };
    assert!(evicted > 0);
    assert!(g1.stored_bytes() <= 10_000, "{} bytes", g1.stored_bytes());
    // The capacity is the machine's: a snapshot restores with it.
    let restored = ShardMachine::restore(&g1.snapshot()).expect("restores");
    assert_eq!(restored.store_capacity_bytes(), 10_000);
}

#[test]
fn a_received_shard_takes_the_receiving_group_capacity() {
    let (mut g1, mut g2) = (
        crate::logged(with_capacity(1, 64_000)),
        crate::logged(with_capacity(2, 64_000)),
    );
    assert!(reconfigure(&mut g1, &config(1, [1; SHARDS]), 1));
    assert!(reconfigure(&mut g2, &config(1, [1; SHARDS]), 1));
    fill_one_shard(&mut g1, 0);
    assert!(g1.stored_bytes() > 10_000);
    set_capacity(&mut g2, 10_000);
    let next = config(2, [2; SHARDS]);
    assert!(reconfigure(&mut g1, &next, 3));
    assert!(reconfigure(&mut g2, &next, 3));
    assert_eq!(pull_and_install(&mut g2, &g1, 3).len(), SHARDS);
    assert!(g2.stored_bytes() <= 10_000, "{} bytes", g2.stored_bytes());
}

#[test]
fn a_parked_shard_given_back_takes_the_group_capacity() {
    let mut g1 = crate::logged(with_capacity(1, 64_000));
    assert!(reconfigure(&mut g1, &config(1, [1; SHARDS]), 1));
    fill_one_shard(&mut g1, 0);
    // Every group leaves: the shards are parked here, frozen at their size.
    park_every_shard(&mut g1);
    set_capacity(&mut g1, 10_000);
    assert!(g1.stored_bytes() > 10_000, "a parked shard keeps its size");
    // Given back: served again, at the group's size.
    assert!(reconfigure(&mut g1, &config(3, [1; SHARDS]), 4));
    assert!(g1.stored_bytes() <= 10_000, "{} bytes", g1.stored_bytes());
}

#[test]
fn the_first_size_logged_also_resizes_shards_frozen_before_it() {
    // Replicas made these shards at their own sizes before the log named
    // one (the writes came from an older leader); parked since. The first
    // size resizes them too, so the replicas hold the same bytes.
    let mut g1 = with_capacity(1, 64_000);
    assert!(reconfigure(&mut g1, &config(1, [1; SHARDS]), 1));
    fill_one_shard(&mut g1, 0);
    park_every_shard(&mut g1);
    assert!(!g1.capacity_logged());
    set_capacity(&mut g1, 10_000);
    assert!(g1.stored_bytes() <= 10_000, "{} bytes", g1.stored_bytes());
}

#[test]
fn whether_a_size_was_logged_travels_in_snapshots_and_older_ones_read_as_not() {
    let logged = group(1);
    assert!(logged.capacity_logged());
    let restored = ShardMachine::restore(&logged.snapshot()).expect("restores");
    assert!(restored.capacity_logged());
    let unlogged = ShardMachine::new(1, SHARDS, MachineConfig::default());
    let restored = ShardMachine::restore(&unlogged.snapshot()).expect("restores");
    assert!(!restored.capacity_logged());
    // Format 3 (the machine, its tiers and the poller marker) knew nothing
    // of sizes: read as not logged, so the next leader writes one.
    let format_3 = codec::encode_versioned(
        &[codec::Format {
            what: "shard machine snapshot",
            version: 3,
        }],
        &(
            &logged,
            &BTreeMap::<ShardId, cache::store::DiskSnapshot>::new(),
            true,
        ),
    );
    let restored = ShardMachine::restore(&format_3).expect("format 3 restores");
    assert!(!restored.capacity_logged());
    assert!(restored.pollers_may_exist());
}
