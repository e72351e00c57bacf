//! Graceful shutdown hands leadership off: a demo cluster in this process
//! (one data group of three replicas, each node also a controller replica),
//! one client writing without pause through the public gRPC API, and the
//! node that leads the data group stopped twice: once as SIGTERM stops it
//! (`Node::shutdown`: hand-off first) and once without the hand-off. The
//! unavailability window is the longest time between two consecutive
//! acknowledged writes around the stop; both are printed (run with
//! `--nocapture`) and the hand-off must shorten it. Every acknowledged
//! write is read back afterwards.

#![cfg(not(madsim))]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use distcache::demo::Demo;
use distcache_client::{Client, ClientConfig};
use support::cluster::TestCluster;
use tokio::time::Instant;

/// The node whose data replica leads, as the nodes themselves report.
async fn data_leader(demo: &Demo) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for node_id in demo.running() {
            let Some(state) = demo.node_state(node_id) else {
                continue;
            };
            let leads = state
                .local_status()
                .replicas
                .iter()
                .any(|replica| replica.role == "data" && replica.is_leader);
            if leads {
                return node_id;
            }
        }
        assert!(Instant::now() < deadline, "no data leader within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What one stop looked like from the client.
struct Window {
    /// Longest time between consecutive acknowledged writes from just
    /// before the stop to the end.
    longest_gap: Duration,
    /// How long the node took to stop.
    stop_took: Duration,
    writes: usize,
}

/// Writes without pause, stops the data leader (`handoff` or not), keeps
/// writing for `after`, and measures.
async fn measure(
    demo: &Demo,
    client: &Client,
    round: &str,
    handoff: bool,
    acknowledged: &mut BTreeMap<String, String>,
) -> Window {
    let leader = data_leader(demo).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let client = client.clone();
        let stop = Arc::clone(&stop);
        let round = round.to_string();
        tokio::spawn(async move {
            let mut done = Vec::new();
            let mut sequence = 0u64;
            while !stop.load(Ordering::Relaxed) {
                sequence += 1;
                let key = format!("{round}-{sequence}");
                client
                    .set(key.as_bytes(), key.as_bytes())
                    .await
                    .unwrap_or_else(|error| panic!("write {key}: {error}"));
                done.push((Instant::now(), key));
            }
            done
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stop_started = Instant::now();
    if handoff {
        demo.stop_node(leader).await.expect("stop");
    } else {
        demo.stop_node_without_handoff(leader).await.expect("stop");
    }
    let stop_took = stop_started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let done = writer.await.expect("writer");
    let mut longest_gap = Duration::ZERO;
    let mut previous: Option<Instant> = None;
    for (at, key) in &done {
        if let Some(previous) = previous
            && *at >= stop_started
        {
            longest_gap = longest_gap.max(at.duration_since(previous));
        }
        previous = Some(*at);
        acknowledged.insert(key.clone(), key.clone());
    }
    let after = done.iter().filter(|(at, _)| *at > stop_started).count();
    assert!(after > 0, "{round}: no write acknowledged after the stop");
    demo.start_node(leader).await.expect("restart");
    Window {
        longest_gap,
        stop_took,
        writes: done.len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopping_leader_hands_off_so_clients_see_no_election_gap() {
    let demo = TestCluster::builder().groups(1).replicas(3).start().await;
    let seeds = demo.grpc_seeds();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let client = Client::new(
        &seeds,
        ClientConfig {
            rpc_timeout: Duration::from_millis(500),
            operation_deadline: Duration::from_secs(20),
            backoff_min: Duration::from_millis(2),
            backoff_max: Duration::from_millis(20),
            ..ClientConfig::default()
        },
    )
    .expect("client");
    let mut acknowledged = BTreeMap::new();
    // Two rounds each, alternating, so a slow moment of the machine does
    // not decide the comparison alone; the best of each is compared.
    let mut with = Vec::new();
    let mut without = Vec::new();
    for round in 0..2 {
        with.push(
            measure(
                &demo,
                &client,
                &format!("with{round}"),
                true,
                &mut acknowledged,
            )
            .await,
        );
        without.push(
            measure(
                &demo,
                &client,
                &format!("without{round}"),
                false,
                &mut acknowledged,
            )
            .await,
        );
    }
    for (name, windows) in [("with hand-off", &with), ("without hand-off", &without)] {
        for window in windows.iter() {
            println!(
                "{name}: longest gap between acknowledged writes {} ms (stop took {} ms, {} writes)",
                window.longest_gap.as_millis(),
                window.stop_took.as_millis(),
                window.writes
            );
        }
    }
    let best = |windows: &[Window]| {
        windows
            .iter()
            .map(|window| window.longest_gap)
            .min()
            .expect("rounds")
    };
    assert!(
        best(&with) < best(&without),
        "the hand-off did not shorten the window: {:?} vs {:?}",
        best(&with),
        best(&without)
    );
    // Below raft's minimum election timeout (300 ms): no election wait.
    assert!(
        best(&with) < Duration::from_millis(300),
        "with hand-off the window was {:?}",
        best(&with)
    );
    for (key, value) in &acknowledged {
        assert_eq!(
            client
                .get(key.as_bytes())
                .await
                .expect("read back")
                .as_deref(),
            Some(value.as_bytes()),
            "{key} lost"
        );
    }
    demo.shutdown().await;
}
