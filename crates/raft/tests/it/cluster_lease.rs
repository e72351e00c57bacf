//! Lease reads (`Config::lease_reads`) in a whole cluster of cores whose
//! clocks may run at different rates: a read answered under a lease must
//! not miss a commit made anywhere before it was asked. That holds while
//! clocks drift apart by less than the configured bound, and fails, as it
//! must, once a leader's clock runs slow past it.

use crate::support;

use support::{Cluster, Faults};

fn leases_on(config: &mut raft::core::Config) {
    config.lease_reads = true;
}

/// A leader that served lease reads, then is cut off while the others
/// elect a leader and commit; returns (stale reads, lease reads served by
/// the old leader). The old leader's clock runs at `leader_clock_percent`.
fn cut_off_leader_keeps_reading(seed: u64, leader_clock_percent: u64) -> (u64, u64) {
    let mut cluster = Cluster::with_config(3, seed, Faults::none(), leases_on);
    cluster.fail_on_stale_read = false;
    cluster.run_until(2_000, "a leader", |cluster| {
        cluster.current_leader().is_some()
    });
    let old = cluster.current_leader().expect("a leader") as usize;
    cluster.clock_percent[old] = leader_clock_percent;
    // Writes commit; reads take a round, then ride the lease.
    for step in 0..100 {
        if step % 3 == 0 {
            cluster.propose_at_leaders();
        }
        cluster.read_at_leaders();
        cluster.step();
    }
    let served_before = cluster.node(old).lease_reads_served();
    assert!(
        served_before > 0,
        "seed {seed}: the leader served no read under its lease"
    );
    cluster.isolate(old);
    // The others elect a leader and commit while the old one, which still
    // believes it leads, keeps answering reads.
    for step in 0..400 {
        if step % 3 == 0 {
            cluster.propose_at_leaders();
        }
        cluster.read_at_leaders();
        cluster.step();
    }
    let new = cluster.current_leader().expect("a new leader") as usize;
    assert_ne!(new, old, "seed {seed}: the majority elected a new leader");
    (
        cluster.stale_reads,
        cluster.node(old).lease_reads_served() - served_before,
    )
}

#[test]
fn a_cut_off_leader_within_the_drift_bound_serves_no_stale_read() {
    // 92%: slower than the others by 8%, inside the default 10% bound.
    for seed in 0..20 {
        let (stale, _) = cut_off_leader_keeps_reading(seed, 92);
        assert_eq!(stale, 0, "seed {seed}: a stale read inside the drift bound");
    }
}

#[test]
fn a_cut_off_leader_whose_clock_runs_slow_past_the_bound_serves_stale_reads() {
    // 30%: its lease (237 ms on its clock) lasts 790 ms of real time, long
    // after the others elected a new leader. The assumption is the only
    // thing between leases and stale reads, and this shows it.
    let stale: u64 = (0..20)
        .map(|seed| cut_off_leader_keeps_reading(seed, 30).0)
        .sum();
    assert!(
        stale > 0,
        "no stale read although the leader's clock ran at 30%"
    );
}

#[test]
fn lease_reads_stay_linearizable_under_faults_with_clocks_inside_the_bound() {
    let mut lease_reads = 0;
    for seed in 0..300 {
        let faults = Faults {
            drop_probability: [0.0, 0.05, 0.2][(seed % 3) as usize],
            max_delay_ticks: [1, 5, 30][(seed / 3 % 3) as usize],
            crash_probability: [0.0, 0.002, 0.01][(seed / 9 % 3) as usize],
            partition_probability: [0.0, 0.005, 0.02][(seed / 27 % 3) as usize],
        };
        let mut cluster = Cluster::with_config(3, seed, faults, leases_on);
        // Rates within 4% of real time: at most 8% apart.
        for (id, rate) in cluster.clock_percent.iter_mut().enumerate() {
            *rate = 96 + (seed + id as u64 * 3) % 9;
        }
        for _ in 0..1_500 {
            if cluster.now_ticks.is_multiple_of(3) {
                cluster.propose_at_leaders();
            }
            if cluster.now_ticks.is_multiple_of(2) {
                cluster.read_at_leaders();
            }
            cluster.step();
        }
        lease_reads += (0..3)
            .filter_map(|id| cluster.nodes[id].as_ref())
            .map(|node| node.lease_reads_served())
            .sum::<u64>();
        cluster.converge(5_000);
    }
    assert!(
        lease_reads > 1_000,
        "leases served only {lease_reads} reads"
    );
}

/// A voter that acknowledged the leader and then restarts has forgotten
/// that it did; it must still refuse votes for a minimum election timeout,
/// or a peer the leader could not reach would be elected inside the
/// leader's lease. One follower is cut off from the leader only, so it
/// keeps campaigning while the other refuses it; then the other restarts
/// and the leader is cut off from both.
#[test]
fn a_restarted_voter_grants_no_vote_inside_the_lease_it_confirmed() {
    let mut stale = 0;
    let mut elected_elsewhere = 0;
    for seed in 0..20 {
        // A candidate asks again every 2 ticks, so the cut-off follower
        // asks the restarted one at once.
        let mut cluster = Cluster::with_config(3, seed, Faults::none(), |config| {
            leases_on(config);
            config.vote_resend_interval_ticks = 2;
            config.vote_resends_per_round_max = 100;
        });
        cluster.fail_on_stale_read = false;
        cluster.run_until(2_000, "a leader", |cluster| {
            cluster.current_leader().is_some()
        });
        let leader = cluster.current_leader().expect("a leader") as usize;
        let (restarting, campaigning) = ((leader + 1) % 3, (leader + 2) % 3);
        for step in 0..60 {
            if step % 3 == 0 {
                cluster.propose_at_leaders();
            }
            cluster.step();
        }
        // Up to date, it hears from the leader no more.
        cluster.cut_link(leader, campaigning);
        for _ in 0..150 {
            cluster.read_at_leaders();
            cluster.step();
        }
        assert_eq!(cluster.current_leader(), Some(leader as u64), "seed {seed}");
        // Just after a renewal: the lease has about 237 ms to run.
        let mut was_valid = true;
        for _ in 0..100 {
            cluster.read_at_leaders();
            cluster.step();
            let valid = cluster.node(leader).lease_valid();
            if valid && !was_valid {
                break;
            }
            was_valid = valid;
        }
        assert!(
            cluster.node(leader).lease_valid(),
            "seed {seed}: the lease renews"
        );
        cluster.crash(restarting);
        cluster.restart(restarting);
        cluster.cut_link(leader, restarting);
        for step in 0..100 {
            if step % 3 == 0 {
                cluster.propose_at_leaders();
            }
            cluster.read_at_leaders();
            cluster.step();
        }
        stale += cluster.stale_reads;
        elected_elsewhere += u64::from(cluster.leaders().contains(&(campaigning as u64)));
    }
    assert!(
        elected_elsewhere > 0,
        "the cut-off follower was never elected: the scenario tests nothing"
    );
    assert_eq!(stale, 0, "a stale read after a voter's restart");
}

/// A leadership transfer may elect its target at once (voters grant a
/// `TimeoutNow` campaign even while they hear from the leader), so the
/// leader gives its lease up when it starts one, and does not take one
/// again in that term even if the transfer is abandoned: a `TimeoutNow`
/// still on its way could elect the target later.
#[test]
fn a_leader_handing_over_gives_its_lease_up_for_the_rest_of_its_term() {
    let mut cluster = Cluster::with_config(3, 5, Faults::none(), leases_on);
    cluster.run_until(2_000, "a leader", |cluster| {
        cluster.current_leader().is_some()
    });
    let leader = cluster.current_leader().expect("a leader") as usize;
    for step in 0..60 {
        if step % 3 == 0 {
            cluster.propose_at_leaders();
        }
        cluster.read_at_leaders();
        cluster.step();
    }
    let mut renewed = false;
    for _ in 0..60 {
        cluster.read_at_leaders();
        cluster.step();
        renewed |= cluster.node(leader).lease_valid();
    }
    assert!(renewed, "the leader holds a lease under reads");
    let target = (leader + 1) % 3;
    // The target never hears the hand-over: the transfer is abandoned.
    cluster.cut_link(leader, target);
    let term = cluster.node(leader).term();
    cluster
        .node_mut(leader)
        .transfer_leader(target as u64)
        .expect("a transfer to a voter");
    assert!(
        !cluster.node(leader).lease_valid(),
        "the lease ends with the transfer"
    );
    let served = cluster.node(leader).lease_reads_served();
    for _ in 0..200 {
        cluster.read_at_leaders();
        cluster.step();
    }
    assert_eq!(
        cluster.current_leader(),
        Some(leader as u64),
        "still the leader"
    );
    assert_eq!(cluster.node(leader).term(), term, "of the same term");
    assert_eq!(
        cluster.node(leader).transfer_target(),
        None,
        "the transfer was abandoned"
    );
    assert_eq!(
        cluster.node(leader).lease_reads_served(),
        served,
        "no lease read for the rest of the term"
    );
    assert!(cluster.reads_confirmed > 0);
}

#[test]
fn a_read_index_with_a_round_sends_the_commit_index_even_under_the_lease() {
    use raft::core::MessageBody;
    let mut cluster = Cluster::with_config(3, 9, Faults::none(), leases_on);
    cluster.run_until(2_000, "a leader", |cluster| {
        cluster.current_leader().is_some()
    });
    let leader = cluster.current_leader().expect("a leader") as usize;
    let mut leased = false;
    for step in 0..200 {
        if step % 3 == 0 {
            cluster.propose_at_leaders();
        }
        cluster.read_at_leaders();
        cluster.step();
        leased = cluster.node(leader).lease_valid();
        if leased && step > 30 {
            break;
        }
    }
    assert!(leased, "the leader holds a lease under reads");
    let heartbeats = |ready: &raft::core::Ready| {
        ready
            .messages
            .iter()
            .filter_map(|message| match &message.body {
                MessageBody::Heartbeat(heartbeat) => Some((message.to, heartbeat.commit_index)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let node = cluster.node_mut(leader);
    if node.has_ready() {
        let pending = node.ready();
        node.advance(pending);
    }
    let served = node.lease_reads_served();
    // Under the lease a plain read index is answered at once, no message.
    node.read_index(b"plain".to_vec())
        .expect("the leader reads");
    assert_eq!(node.lease_reads_served(), served + 1);
    let ready = node.ready();
    assert!(heartbeats(&ready).is_empty(), "no round under the lease");
    assert_eq!(ready.read_states.len(), 1);
    node.advance(ready);
    // With a round: a heartbeat to each follower, carrying the commit.
    let commit = node.log().commit_index();
    node.read_index_with_round(b"round".to_vec())
        .expect("the leader reads");
    assert_eq!(node.lease_reads_served(), served + 1, "not a lease read");
    let ready = node.ready();
    let sent = heartbeats(&ready);
    assert_eq!(sent.len(), 2, "a heartbeat to each follower: {sent:?}");
    // Each carries min(commit, what that follower holds): a majority
    // holds the commit point, so some follower learns it.
    assert!(
        sent.iter().all(|&(_, carried)| carried <= commit)
            && sent.iter().any(|&(_, carried)| carried == commit),
        "the commit index {commit} reaches a follower that holds it: {sent:?}"
    );
    assert!(ready.read_states.is_empty(), "confirmed only by the round");
}
