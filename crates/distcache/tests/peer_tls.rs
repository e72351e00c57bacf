//! Mutual TLS and peer authentication between real nodes in the test's
//! process (real gRPC over rustls, Raft logs on disk, loopback TCP),
//! docs/security.md "Peer traffic":
//!
//! - a node whose peer certificate comes from another CA cannot join: the
//!   others refuse its handshakes (counted), it learns nothing, and the
//!   group serves on without it;
//! - a plain-TCP peer is refused;
//! - a forged DeleteShards or PullChunk, sent by an authenticated member
//!   of the cluster on behalf of a group it does not belong to, is refused
//!   and the shard it names stays, data and all (without the check it
//!   would delete the donor's only copy of a shard in flight);
//! - a Raft message such a member sends to another group, as one of that
//!   group's replicas, is refused and moves nothing.

#![cfg(not(madsim))]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use distcache::node::NodeState;
use distcache::tls::{DemoCertificates, generate_cluster_certificates};
use shardctrler::ControllerClient;
use shardkv::{DeleteShards, MigrationError, PullChunk};
use shardkv::{Op, Outcome};

use support::cluster::TestCluster;
use support::keys::wait_for;

const STEP_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
const SHARD_COUNT: usize = 10;

fn state(cluster: &TestCluster, node_id: u64) -> Arc<NodeState> {
    cluster
        .node_state(node_id)
        .unwrap_or_else(|| panic!("node {node_id} runs"))
}

/// Calls refused by `node_id`'s peer policy for `reason`.
fn refused(cluster: &TestCluster, node_id: u64, reason: labrpc::Refusal) -> u64 {
    state(cluster, node_id)
        .peer_security
        .refusals()
        .into_iter()
        .find(|(seen, _)| *seen == reason)
        .map_or(0, |(_, count)| count)
}

/// A key of `shard`.
fn key_in(shard: usize) -> Vec<u8> {
    (0..100_000)
        .map(|index| format!("peer-tls-{index}").into_bytes())
        .find(|key| shardkv::key_to_shard(key, SHARD_COUNT) == shard)
        .expect("some key of every shard")
}

async fn put_through(cluster: &TestCluster, node_id: u64, key: &[u8], value: &str) {
    let forwarder = Arc::clone(&state(cluster, node_id).forwarder);
    let op = Op::Put {
        key: key.to_vec(),
        value: value.as_bytes().to_vec(),
        ttl_ms: None,
    };
    wait_for("a put through the cluster", STEP_TIMEOUT, POLL, || {
        let forwarder = Arc::clone(&forwarder);
        let op = op.clone();
        async move { forwarder.run(op, None).await.ok() }
    })
    .await;
}

async fn get_through(cluster: &TestCluster, node_id: u64, key: &[u8]) -> Option<Vec<u8>> {
    let forwarder = Arc::clone(&state(cluster, node_id).forwarder);
    let op = Op::Get { key: key.to_vec() };
    let outcome = wait_for("a get through the cluster", STEP_TIMEOUT, POLL, || {
        let forwarder = Arc::clone(&forwarder);
        let op = op.clone();
        async move { forwarder.run(op, None).await.ok() }
    })
    .await;
    match outcome {
        Outcome::Value(value) => value,
        other => panic!("a get answered {other:?}"),
    }
}

/// The labrpc client of a process that holds node `node_id`'s peer
/// certificate and key (a member of the cluster, authenticated), or of a
/// stranger speaking plain TCP (`None`).
fn peer_client(cluster: &TestCluster, as_node: Option<u64>) -> labrpc::Client {
    let security = match as_node {
        None => labrpc::PeerSecurity::default(),
        Some(node_id) => {
            let config = &cluster.configs[usize::try_from(node_id).expect("small") - 1];
            let tls = config.tls.as_ref().expect("[tls]");
            let files =
                distcache::peer_tls::PeerTlsFiles::from_settings(tls, &config.cluster_id, node_id)
                    .expect("the node's peer files load")
                    .expect("peer TLS is on");
            labrpc::PeerSecurity::with_tls(
                labrpc::PeerIdentity {
                    cluster_id: config.cluster_id.clone(),
                    node_id,
                },
                labrpc::Members::Any,
                files.labrpc().expect("rustls configurations"),
            )
        }
    };
    labrpc::Client::new(labrpc::ClientConfig {
        timeout: Duration::from_secs(5),
        security,
        ..labrpc::ClientConfig::default()
    })
}

fn data_addr(cluster: &TestCluster, node_id: u64) -> SocketAddr {
    let entry = cluster.configs[0]
        .nodes
        .iter()
        .find(|entry| entry.id == node_id)
        .expect("the node is in the table");
    let ip = entry.host.parse().expect("an IP");
    SocketAddr::new(ip, entry.data_port.expect("a data replica"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_a_certificate_from_another_ca_cannot_join_and_the_group_serves_on() {
    tracing::info!(
        "phase 1: nodes 1 and 2 hold certificates from the cluster's CA, node 3 one from another CA"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster_certificates: DemoCertificates =
        generate_cluster_certificates(&dir.path().join("cluster"), &[], "demo", &[1, 2, 3])
            .expect("the cluster's CA");
    let rogue = generate_cluster_certificates(&dir.path().join("rogue"), &[], "demo", &[3])
        .expect("another CA");
    let builder = TestCluster::builder()
        .groups(1)
        .replicas(3)
        .peer_tls(&cluster_certificates);
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut configs = builder.configs(data_dir.path());
    // Node 3 trusts the cluster's CA (so it could talk if the others let
    // it) but presents a certificate the cluster's CA did not sign.
    let tls = configs[2].tls.as_mut().expect("[tls]");
    tls.peer_cert = Some(rogue.peers[&3].0.clone());
    tls.peer_key = Some(rogue.peers[&3].1.clone());
    let cluster = TestCluster::from_demo(
        distcache::demo::Demo::start_configs(
            configs,
            data_dir.path().to_path_buf(),
            support::cluster::READY_TIMEOUT,
        )
        .await
        .expect("nodes 1 and 2 form the cluster"),
        data_dir,
    );

    tracing::info!("phase 2: the group serves with nodes 1 and 2");
    put_through(&cluster, 1, b"before", "1").await;
    assert_eq!(
        get_through(&cluster, 2, b"before").await,
        Some(b"1".to_vec())
    );

    tracing::info!("phase 3: node 3's calls are refused and counted; it learns nothing");
    wait_for(
        "nodes 1 and 2 refuse node 3's handshakes",
        STEP_TIMEOUT,
        POLL,
        || async {
            (refused(&cluster, 1, labrpc::Refusal::TlsHandshake) > 0
                && refused(&cluster, 2, labrpc::Refusal::TlsHandshake) > 0)
                .then_some(())
        },
    )
    .await;
    let outsider = state(&cluster, 3).local_status();
    for replica in &outsider.replicas {
        assert_eq!(
            (replica.commit_index, replica.is_leader),
            (0, false),
            "node 3's {} replica took part: {replica:?}",
            replica.role
        );
    }
    put_through(&cluster, 2, b"after", "2").await;
    assert_eq!(
        get_through(&cluster, 1, b"after").await,
        Some(b"2".to_vec())
    );
    assert!(
        state(&cluster, 3)
            .local_status()
            .replicas
            .iter()
            .all(|replica| replica.commit_index == 0),
        "node 3 learned of a commit"
    );

    tracing::info!("phase 4: a plain-TCP peer is refused");
    let before = refused(&cluster, 1, labrpc::Refusal::TlsHandshake);
    let forged = DeleteShards {
        config_num: 1,
        shards: (0..SHARD_COUNT).collect(),
        from_gid: 1,
    };
    let answer = peer_client(&cluster, None)
        .call(data_addr(&cluster, 1), &forged)
        .await;
    assert!(answer.is_err(), "a plain-TCP peer was answered: {answer:?}");
    wait_for(
        "the plain-TCP handshake is counted",
        STEP_TIMEOUT,
        POLL,
        || async { (refused(&cluster, 1, labrpc::Refusal::TlsHandshake) > before).then_some(()) },
    )
    .await;
    assert_eq!(
        get_through(&cluster, 1, b"before").await,
        Some(b"1".to_vec())
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_delete_from_a_node_outside_the_named_group_changes_nothing() {
    tracing::info!("phase 1: three groups of one replica each, mutual TLS between them");
    let dir = tempfile::tempdir().expect("tempdir");
    let certificates =
        generate_cluster_certificates(&dir.path().join("tls"), &[], "demo", &[1, 2, 3])
            .expect("the cluster's CA");
    let cluster = TestCluster::builder()
        .groups(3)
        .replicas(1)
        .peer_tls(&certificates)
        .start()
        .await;

    tracing::info!("phase 2: a key in a shard of group 2");
    let routing = wait_for("group 2 owns a shard", STEP_TIMEOUT, POLL, || async {
        let forwarder = &state(&cluster, 2).forwarder;
        forwarder.refresh().await;
        let routing = forwarder.routing();
        (routing.shards.contains(&2)).then_some(routing)
    })
    .await;
    let shard = routing
        .shards
        .iter()
        .position(|&gid| gid == 2)
        .expect("a shard of group 2");
    let key = key_in(shard);
    put_through(&cluster, 2, &key, "precious").await;

    tracing::info!(
        "phase 3: group 1 stops; shard {shard} moves to it, so group 2 offers it and waits"
    );
    cluster
        .stop_node_without_handoff(1)
        .await
        .expect("node 1 stops");
    let config_num = state(&cluster, 2)
        .forwarder
        .controller()
        .move_shard(shard, 1)
        .await
        .expect("the controller moves the shard");
    wait_for(
        "group 2 offers the shard to group 1",
        STEP_TIMEOUT,
        POLL,
        || async {
            state(&cluster, 2)
                .shard_report()
                .iter()
                .any(|(held, state, _)| *held == shard && state == "Offering")
                .then_some(())
        },
    )
    .await;

    tracing::info!(
        "phase 4: node 3 (group 3, a valid certificate) forges group 1's delete and pull"
    );
    let node_3 = peer_client(&cluster, Some(3));
    let target = data_addr(&cluster, 2);
    let forged_delete = DeleteShards {
        config_num,
        shards: vec![shard],
        from_gid: 1,
    };
    let answer = node_3
        .call(target, &forged_delete)
        .await
        .expect("node 3 is a member: its call is answered");
    assert_eq!(
        answer,
        Err(MigrationError::NotGroupMember {
            from_gid: 1,
            node: 3
        }),
        "a delete on behalf of group 1 from node 3"
    );
    let forged_pull = PullChunk {
        config_num,
        shard,
        offset: 0,
        max_bytes: 1 << 20,
        from_gid: 1,
    };
    let answer = node_3.call(target, &forged_pull).await.expect("answered");
    assert_eq!(
        answer,
        Err(MigrationError::NotGroupMember {
            from_gid: 1,
            node: 3
        }),
        "a pull on behalf of group 1 from node 3"
    );
    // In its own name, node 3's group is not the shard's new owner.
    let own_name = DeleteShards {
        from_gid: 3,
        ..forged_delete
    };
    let answer = node_3.call(target, &own_name).await.expect("answered");
    assert!(
        matches!(answer, Err(MigrationError::WrongReceiver { owner: 1, .. })),
        "a delete from group 3: {answer:?}"
    );

    tracing::info!("phase 5: the shard and its key are still at group 2");
    let report = state(&cluster, 2).shard_report();
    let (_, held_state, stats) = report
        .iter()
        .find(|(held, _, _)| *held == shard)
        .unwrap_or_else(|| panic!("group 2 lost shard {shard}: {report:?}"));
    assert_eq!(held_state, "Offering");
    assert_eq!(stats.entries, 1, "the shard's key is gone: {report:?}");

    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_raft_message_from_a_node_outside_the_group_is_refused_and_moves_nothing() {
    tracing::info!("phase 1: two groups of two replicas, mutual TLS between them");
    let dir = tempfile::tempdir().expect("tempdir");
    let certificates =
        generate_cluster_certificates(&dir.path().join("tls"), &[], "demo", &[1, 2, 3, 4])
            .expect("the cluster's CA");
    let cluster = TestCluster::builder()
        .groups(2)
        .replicas(2)
        .peer_tls(&certificates)
        .start()
        .await;
    put_through(&cluster, 1, b"k", "v").await;

    tracing::info!(
        "phase 2: node 3 (group 2, a valid certificate) asks node 1 for its vote as group 1's replica 1 (node 2)"
    );
    let data_term = |cluster: &TestCluster| {
        state(cluster, 1)
            .local_status()
            .replicas
            .iter()
            .find(|replica| replica.role == "data")
            .map(|replica| replica.term)
            .expect("node 1 has a data replica")
    };
    let term_before = data_term(&cluster);
    let forged_vote = raft::core::Message {
        from: 1,
        to: 0,
        term: term_before + 100,
        body: raft::core::MessageBody::RequestVote(raft::core::RequestVote {
            last_log_index: u64::MAX / 2,
            last_log_term: term_before + 99,
            leadership_transfer: true,
        }),
    };
    let answer = peer_client(&cluster, Some(3))
        .call(data_addr(&cluster, 1), &forged_vote)
        .await
        .expect("node 3 is a member: its call is answered");

    tracing::info!("phase 3: no vote, counted, the term did not move, the group serves");
    assert_eq!(
        answer, None,
        "a Raft message from outside the group got a reply"
    );
    assert_eq!(
        refused(&cluster, 1, labrpc::Refusal::SenderMismatch),
        1,
        "the forged Raft message was not counted"
    );
    assert_eq!(
        data_term(&cluster),
        term_before,
        "the forged vote moved group 1's term"
    );
    assert_eq!(get_through(&cluster, 2, b"k").await, Some(b"v".to_vec()));
    cluster.shutdown().await;
}
