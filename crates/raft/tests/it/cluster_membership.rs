//! Seeded runs of five cores of which three are the bootstrap group and
//! two start outside it, under loss, delay, partitions and crashes, while
//! the leader keeps changing the configuration at random (add a learner or
//! a voter, promote, remove, the leader included) and handing leadership
//! over to random nodes. The safety checks of
//! `support` run on every tick: one leader per term whatever configuration
//! elected it, log matching, leader completeness (every committed entry
//! survives every change) and state machine safety. Then the network heals,
//! every node is brought back in as a voter, and all must converge.

use crate::support;

use raft::core::{MembershipChange, MembershipError, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use support::{Cluster, Faults};

const SIZE: usize = 5;

fn random_faults(seed: u64) -> Faults {
    Faults {
        drop_probability: [0.0, 0.05, 0.2][(seed % 3) as usize],
        max_delay_ticks: [1, 5, 30][(seed / 3 % 3) as usize],
        crash_probability: [0.0, 0.002, 0.01][(seed / 9 % 3) as usize],
        partition_probability: [0.0, 0.005, 0.02][(seed / 27 % 3) as usize],
    }
}

/// A random single-server change for `node` given the leader's
/// configuration.
fn random_change(cluster: &Cluster, leader: NodeId, rng: &mut ChaCha8Rng) -> MembershipChange {
    let membership = cluster.node(leader as usize).membership();
    let node = rng.gen_range(0..SIZE as u64);
    if membership.is_learner(node) {
        if rng.gen_bool(0.7) {
            MembershipChange::PromoteLearner(node)
        } else {
            MembershipChange::Remove(node)
        }
    } else if membership.is_voter(node) {
        MembershipChange::Remove(node)
    } else if rng.gen_bool(0.7) {
        MembershipChange::AddLearner(node)
    } else {
        MembershipChange::AddVoter(node)
    }
}

/// Returns how many changes were accepted by a leader.
fn run_seed(seed: u64) -> u64 {
    let mut cluster = Cluster::with_bootstrap(SIZE, 3, seed, random_faults(seed), |_| {});
    cluster.snapshot_interval = seed.is_multiple_of(2).then_some(15);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d65_6d62);
    let mut accepted = 0;
    for _ in 0..2_000 {
        if cluster.now_ticks.is_multiple_of(3) {
            cluster.propose_at_leaders();
        }
        if cluster.now_ticks.is_multiple_of(7) {
            cluster.read_at_leaders();
        }
        if cluster.now_ticks.is_multiple_of(20)
            && let Some(leader) = cluster.current_leader()
        {
            let change = random_change(&cluster, leader, &mut rng);
            if cluster
                .node_mut(leader as usize)
                .propose_membership_change(change)
                .is_ok()
            {
                accepted += 1;
            }
        }
        if cluster.now_ticks % 50 == 25
            && let Some(leader) = cluster.current_leader()
        {
            // Hand over to a random node (refused unless it is a voter).
            let target = rng.gen_range(0..SIZE as u64);
            let _ = cluster.node_mut(leader as usize).transfer_leader(target);
        }
        cluster.step();
    }
    bring_everyone_back(&mut cluster, seed);
    cluster.converge(5_000);
    accepted
}

/// Heals, restarts everyone, and has the leader add and promote every node
/// until all five are voters of a committed configuration.
fn bring_everyone_back(cluster: &mut Cluster, seed: u64) {
    cluster.faults = Faults::none();
    cluster.heal();
    cluster.restart_all();
    for _ in 0..20_000 {
        if let Some(leader) = cluster.current_leader() {
            let node = cluster.node(leader as usize);
            let membership = node.membership().clone();
            let committed = node.log().last_config_index() <= node.log().commit_index();
            if committed && membership.voters.len() == SIZE {
                return;
            }
            let missing = (0..SIZE as u64).find(|&id| !membership.is_voter(id));
            if let Some(id) = missing {
                let change = if membership.is_learner(id) {
                    MembershipChange::PromoteLearner(id)
                } else {
                    MembershipChange::AddLearner(id)
                };
                let result = cluster
                    .node_mut(leader as usize)
                    .propose_membership_change(change);
                if let Err(MembershipError::Invalid { reason, .. }) = result {
                    panic!("seed {seed}: {change:?} refused: {reason}");
                }
            }
            if cluster.now_ticks.is_multiple_of(3) {
                cluster.propose_at_leaders();
            }
        }
        cluster.step();
    }
    let detail: Vec<String> = (0..SIZE)
        .map(|id| {
            let node = cluster.node(id);
            format!(
                "node {id} {:?} term {} leader {:?} voters {:?} learners {:?} config at {} log ..={} commit {}",
                node.role(),
                node.term(),
                node.leader_id(),
                node.membership().voters,
                node.membership().learners,
                node.log().last_config_index(),
                node.log().last_index(),
                node.log().commit_index()
            )
        })
        .collect();
    panic!(
        "seed {seed}: the group did not get all {SIZE} nodes back as voters\n{}",
        detail.join("\n")
    );
}

#[test]
fn membership_changes_under_faults_keep_every_safety_property() {
    let mut accepted = 0;
    for seed in 0..200 {
        accepted += run_seed(seed);
    }
    assert!(
        accepted > 1_000,
        "membership changes were exercised: {accepted}"
    );
}
