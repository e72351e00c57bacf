//! Asynchronous replication ([`rsm::EarlyAcks`]) in production mode (real
//! tokio, labrpc on loopback): a leader answers a write it can predict
//! before a majority has it, never more than the bound at once, reads
//! never see what is not committed, and a prediction always matches the
//! applied output. The simulation tests (sim-tests `async_replication`)
//! show what a lost lead loses.

#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::time::Duration;

use raft::storage::MemoryStorage;
use rsm::{ApplyContext, EarlyAcks, ReplicatedMachine, Rsm, RsmConfig, SubmitError};
use serde::{Deserialize, Serialize};
use testkit::ports::free_addrs;

/// A register: `Set` answers the value it set (known before it applies),
/// `Add` answers the sum (known only once applied), `Next` counts itself
/// (known from the state and the `Next`s before it: a prediction that
/// misses one of them is wrong).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Register {
    value: u64,
    applied: u64,
    nexts: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Command {
    Set(u64),
    Add(u64),
    Next,
}

impl ReplicatedMachine for Register {
    type Command = Command;
    type Output = u64;

    fn apply(&mut self, command: &Command, _: &ApplyContext) -> u64 {
        self.applied += 1;
        match command {
            Command::Set(value) => self.value = *value,
            Command::Add(amount) => self.value += amount,
            Command::Next => {
                self.nexts += 1;
                return self.nexts;
            }
        }
        self.value
    }

    fn early_output<'a>(
        &self,
        command: &Command,
        earlier: impl Iterator<Item = &'a Command>,
    ) -> Option<u64> {
        match command {
            Command::Set(value) => Some(*value),
            Command::Add(_) => None,
            Command::Next => {
                let before = earlier.filter(|other| **other == Command::Next).count();
                Some(self.nexts + before as u64 + 1)
            }
        }
    }

    fn check_invariants(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Three replicas on loopback; `early_acks` None: synchronous. Their
/// Raft seeds are `seed_base` + id.
async fn start_group(
    early_acks: Option<EarlyAcks>,
    seed_base: u64,
) -> (Vec<Rsm<Register>>, Vec<labrpc::Server>) {
    let addrs: Vec<SocketAddr> = free_addrs(3);
    let mut replicas = Vec::new();
    let mut servers = Vec::new();
    for id in 0..3 {
        let config = RsmConfig {
            early_acks,
            apply_wait: Duration::from_millis(600),
            ..RsmConfig::new(id, addrs.clone(), seed_base + id as u64)
        };
        let rsm = Rsm::start(config, Register::default(), MemoryStorage::new())
            .await
            .expect("storage loads");
        let mut router = labrpc::Router::new();
        rsm.raft().add_handlers(&mut router);
        let server = labrpc::Server::start(addrs[id], router, labrpc::ServerConfig::default())
            .await
            .expect("server starts");
        replicas.push(rsm);
        servers.push(server);
    }
    (replicas, servers)
}

/// The one replica that leads, once its first entry is applied (before
/// that it answers nothing early), waiting at most 5 s.
async fn wait_leader(replicas: &[Rsm<Register>]) -> usize {
    for _ in 0..500 {
        let leaders: Vec<usize> = (0..replicas.len())
            .filter(|&id| replicas[id].raft().state().1)
            .collect();
        if let [leader] = leaders[..]
            && replicas[leader].read(|_, _| ()).await.is_ok()
        {
            return leader;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no single leader within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictable_writes_are_answered_early_and_all_apply_alike() {
    let (replicas, _servers) = start_group(Some(EarlyAcks::default()), 11).await;
    let leader = wait_leader(&replicas).await;
    // A first Set answered early: no entry before it is unapplied.
    assert_eq!(replicas[leader].submit(Command::Set(1)).await, Ok(1));
    // Concurrent writers, Sets and Adds mixed: every answer is the one
    // its entry gives when applied (the Adds wait for theirs).
    let mut writers = Vec::new();
    for writer in 0..8u64 {
        let rsm = replicas[leader].clone();
        writers.push(tokio::spawn(async move {
            for round in 0..50u64 {
                let command = if (writer + round) % 3 == 0 {
                    Command::Add(1)
                } else {
                    Command::Set(writer * 1000 + round)
                };
                let expected = match command {
                    Command::Set(value) => Some(value),
                    Command::Add(_) | Command::Next => None,
                };
                let output = rsm.submit(command).await.expect("a leader applies");
                if let Some(value) = expected {
                    assert_eq!(output, value);
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer ends");
    }
    let last = replicas[leader].submit(Command::Set(77)).await;
    assert_eq!(last, Ok(77));
    // A read on the leader sees the last write answered early: it waits
    // for it to apply.
    assert_eq!(replicas[leader].read(|r, _| r.value).await, Ok(77));
    let status = replicas[leader].status();
    assert!(
        status.early_acks.early_acks >= 100,
        "only {} writes were answered early",
        status.early_acks.early_acks
    );
    assert_eq!(status.early_acks.mispredicted, 0);
    assert_eq!(status.early_acks.lost, 0);
    assert_eq!(status.early_acks.outstanding, 0);
    // Every replica applies the same 402 commands to the same value.
    for replica in &replicas {
        for _ in 0..500 {
            if replica.with_machine(|r| r.applied) == 402 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            replica.with_machine(Register::clone),
            Register {
                value: 77,
                applied: 402,
                nexts: 0,
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_alone_answers_at_most_the_bound_and_serves_no_read_of_them() {
    let (replicas, _servers) = start_group(
        Some(EarlyAcks {
            max_unreplicated: 3,
        }),
        11,
    )
    .await;
    let leader = wait_leader(&replicas).await;
    assert_eq!(replicas[leader].submit(Command::Set(5)).await, Ok(5));
    assert_eq!(replicas[leader].read(|r, _| r.value).await, Ok(5));
    for (id, replica) in replicas.iter().enumerate() {
        if id != leader {
            replica.kill();
        }
    }
    let rsm = &replicas[leader];
    let before = rsm.status().early_acks.early_acks;
    // Alone, the leader answers three Sets at once (asynchronous
    // replication: nobody else has them)...
    for value in [10, 11, 12] {
        assert_eq!(rsm.submit(Command::Set(value)).await, Ok(value));
    }
    assert_eq!(rsm.status().early_acks.outstanding, 3);
    // At once (the leader still leads: stepping down takes an election
    // timeout, and its lease still holds, so a read index needs no
    // round): a fourth Set (past the bound) and an Add (it cannot tell its
    // output) are placed but wait for a commit that never comes, and a
    // read never shows what only this leader holds: it waits for the
    // writes answered early, which do not commit.
    let (fourth, add, read) = tokio::join!(
        rsm.submit(Command::Set(13)),
        rsm.submit(Command::Add(1)),
        rsm.read(|r, _| r.value),
    );
    for (what, outcome) in [("a fourth Set", fourth), ("an Add", add), ("a read", read)] {
        assert!(
            matches!(
                outcome,
                Err(SubmitError::Timeout | SubmitError::WrongLeader { .. })
            ),
            "{what} was answered without a majority: {outcome:?}"
        );
    }
    assert_eq!(rsm.with_machine(|r| r.value), 5);
    let stats = rsm.status().early_acks;
    assert_eq!(stats.early_acks - before, 3, "the three Sets alone");
    assert_eq!(stats.mispredicted, 0);
    rsm.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_every_write_waits_for_its_commit() {
    let (replicas, _servers) = start_group(None, 21).await;
    let leader = wait_leader(&replicas).await;
    assert_eq!(replicas[leader].submit(Command::Set(5)).await, Ok(5));
    for (id, replica) in replicas.iter().enumerate() {
        if id != leader {
            replica.kill();
        }
    }
    let alone = replicas[leader].submit(Command::Set(6)).await;
    assert!(alone.is_err(), "a write without a majority: {alone:?}");
    assert_eq!(replicas[leader].status().early_acks.early_acks, 0);
    replicas[leader].kill();
}

/// Callers that go away while their proposal is being placed (a client
/// that resets its stream) leave commands in the log that were never
/// recorded for predictions: no early answer may then be wrong. `Next`
/// answers its own count, so a prediction that misses an entry before it
/// is off by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_proposals_never_make_an_early_answer_wrong() {
    let (replicas, _servers) = start_group(
        Some(EarlyAcks {
            max_unreplicated: 10_000,
        }),
        11,
    )
    .await;
    let leader = wait_leader(&replicas).await;
    let rsm = replicas[leader].clone();
    let mut seed = 12_345u64;
    let mut proposals = Vec::new();
    for _ in 0..300 {
        let mut round = Vec::new();
        for _ in 0..4 {
            let rsm = rsm.clone();
            round.push(tokio::spawn(async move { rsm.submit(Command::Next).await }));
        }
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        tokio::time::sleep(Duration::from_micros((seed >> 33) % 400)).await;
        round[((seed >> 20) % 4) as usize].abort();
        proposals.extend(round);
    }
    let mut answered = Vec::new();
    for proposal in proposals {
        if let Ok(Ok(count)) = proposal.await {
            answered.push(count);
        }
    }
    // A read waits for every write answered early: once it is answered,
    // each of them has applied and been compared with its answer.
    rsm.read(|_, _| ()).await.expect("the leader reads");
    // Every answer is a distinct count, the one its entry applied with.
    answered.sort_unstable();
    let distinct = answered.len();
    answered.dedup();
    assert_eq!(answered.len(), distinct, "two answers share a count");
    let stats = rsm.status().early_acks;
    assert!(stats.early_acks >= 300, "only {stats:?} answered early");
    assert_eq!(stats.outstanding, 0, "{stats:?}");
    assert_eq!(stats.mispredicted, 0, "{stats:?}");
}
