//! An operator changes a data group's replicas (issue 21), on real nodes
//! in this process (two data groups of three replicas, gRPC and Raft over
//! loopback, Raft logs on disk) and through the `distcache` binary:
//!
//! - refusals (unknown group or node, an address nobody knows, an
//!   original replica coming back, a node replacing itself, the last
//!   voter, a second change while one runs) name what is wrong and change
//!   nothing;
//! - a learner that never catches up is removed again;
//! - with a client writing all along, a replica's machine is replaced
//!   (stop it, delete its data, start a new node with a new id and
//!   `joining = true`, `replace-replica`); the controller then lists the
//!   new replica, so that once the new node leads and an old one is
//!   stopped, requests still reach the group through the controller's
//!   list; every acknowledged write reads back;
//! - the controller group's replica on node 3 is replaced by one on a new
//!   node 8 that no other node's table lists; once node 8 leads the
//!   controller and node 3 is gone, the other nodes' clerks still reach it
//!   (through the replicas their tables list), shards move, and every
//!   acknowledged write reads back.

#![cfg(not(madsim))]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use distcache::config::JOINED_RAFT_ID_BASE;
use distcache::node::Node;
use distcache_client::proto;
use distcache_client::proto::admin_client::AdminClient;
use support::cluster::{TestCluster, joining_config};
use support::http::request;
use support::keys::{check_all, wait_for, write_until};
use support::processes::NodeProcesses;

async fn admin(addr: SocketAddr) -> AdminClient<tonic::transport::Channel> {
    let url = distcache_client::grpc_url(&addr.to_string()).expect("url");
    AdminClient::connect(url).await.expect("connect")
}

/// Group `gid`'s servers as the controller's latest configuration lists
/// them, and that configuration's number.
async fn controller_servers(
    client: &mut AdminClient<tonic::transport::Channel>,
    gid: u64,
) -> (Vec<String>, u64) {
    let status = client
        .status(proto::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    let servers = status
        .groups
        .iter()
        .find(|group| group.gid == gid)
        .map(|group| group.peer_addrs.clone())
        .unwrap_or_default();
    (servers, status.config_num)
}

/// The configuration in force at group `gid`'s leader: (voters,
/// learners) as Raft ids, from the running nodes of `cluster`.
fn group_membership(cluster: &TestCluster, gid: u64) -> Option<(Vec<u64>, Vec<u64>)> {
    cluster.running().into_iter().find_map(|node_id| {
        let state = cluster.node_state(node_id)?;
        let raft = state.raft_of(gid)?;
        raft.state().1.then(|| {
            let (_, membership) = raft.membership();
            (
                membership.voters.into_iter().collect(),
                membership.learners.into_iter().collect(),
            )
        })
    })
}

/// Runs `distcache admin <arguments>` against `addr`: (success, output).
fn cli(addr: &str, arguments: &[&str]) -> (bool, String) {
    let mut command = vec!["admin"];
    command.extend_from_slice(arguments);
    let output = NodeProcesses::cli(addr, &command);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_is_replaced_while_clients_write_and_nothing_acknowledged_is_lost() {
    // Phase 1: two groups (nodes 1-3: group 1 and the controller; nodes
    // 4-6: group 2); a client writes all along.
    let cluster = TestCluster::builder().groups(2).replicas(3).start().await;
    let addr = cluster.grpc_addr();
    let mut client = admin(addr).await;
    let data = distcache_client::Client::connect(&addr.to_string()).expect("data client");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_until(data.clone(), Arc::clone(&stop)));
    let (servers_before, config_before) = controller_servers(&mut client, 2).await;
    assert_eq!(servers_before.len(), 3, "{servers_before:?}");
    let membership_before = wait_for(
        "group 2 has a leader",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { group_membership(&cluster, 2) },
    )
    .await;
    assert_eq!(membership_before, (vec![0, 1, 2], vec![]));

    // Phase 2: refusals, each naming what is wrong and changing nothing.
    eprintln!("replica_change: phase 2: refusals");
    let refusals: Vec<(&str, tonic::Status)> = vec![
        (
            "no group 99",
            client
                .remove_replica(proto::RemoveReplicaRequest {
                    gid: 99,
                    node_id: 4,
                    forwarded: false,
                })
                .await
                .expect_err("unknown group"),
        ),
        (
            "node 8's controller address is not known",
            client
                .add_replica(proto::AddReplicaRequest {
                    gid: 0,
                    node_id: 8,
                    ..proto::AddReplicaRequest::default()
                })
                .await
                .expect_err("no controller address"),
        ),
        (
            "node 4 is already a replica of group 2",
            client
                .add_replica(proto::AddReplicaRequest {
                    gid: 2,
                    node_id: 4,
                    ..proto::AddReplicaRequest::default()
                })
                .await
                .expect_err("a member"),
        ),
        (
            "node 8's data address is not known",
            client
                .add_replica(proto::AddReplicaRequest {
                    gid: 2,
                    node_id: 8,
                    ..proto::AddReplicaRequest::default()
                })
                .await
                .expect_err("no address"),
        ),
        (
            "cannot replace itself",
            client
                .replace_replica(proto::ReplaceReplicaRequest {
                    gid: 2,
                    remove_node_id: 5,
                    add_node_id: 5,
                    ..proto::ReplaceReplicaRequest::default()
                })
                .await
                .expect_err("itself"),
        ),
        (
            "not an IP address and port",
            client
                .add_replica(proto::AddReplicaRequest {
                    gid: 2,
                    node_id: 8,
                    peer_addr: "nowhere".into(),
                    ..proto::AddReplicaRequest::default()
                })
                .await
                .expect_err("a bad address"),
        ),
    ];
    for (expected, status) in refusals {
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(expected),
            "{expected}: {status:?}"
        );
    }
    let http = cluster.http_addr(1).expect("node 1 serves HTTP");
    let answer = request(
        http,
        "POST",
        "/v1/admin/remove-replica",
        Some("application/json"),
        br#"{"gid": 2, "node_id": 999}"#.to_vec(),
    )
    .await;
    // Removing a node that is no replica of the group is in effect
    // already: answered with the voters, nothing changed (checked below).
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer
            .text()
            .contains(&format!("\"config_num\":{config_before}")),
        "{}",
        answer.text()
    );
    let (succeeded, text) = cli(
        &addr.to_string(),
        &["remove-replica", "--group", "2", "--node", "42"],
    );
    assert!(
        succeeded && text.contains("group 2 replicas: node 4"),
        "{text}"
    );
    assert_eq!(
        group_membership(&cluster, 2),
        Some(membership_before.clone())
    );
    assert_eq!(
        controller_servers(&mut client, 2).await.0,
        servers_before,
        "a refusal changed the controller's list"
    );

    // Phase 3: a learner that never catches up (node 8 does not run) is
    // removed again; while it waits, a second change is refused.
    eprintln!("replica_change: phase 3: a learner that never catches up; a second change refused");
    let nowhere = SocketAddr::from(([127, 0, 0, 1], testkit::ports::free_port_block(1)));
    let mut waiting_client = client.clone();
    let stuck = tokio::spawn(async move {
        waiting_client
            .add_replica(proto::AddReplicaRequest {
                gid: 2,
                node_id: 8,
                peer_addr: nowhere.to_string(),
                catch_up_timeout_ms: 3000,
                forwarded: false,
            })
            .await
    });
    wait_for(
        "node 8 is group 2's learner",
        Duration::from_secs(10),
        Duration::from_millis(10),
        || async {
            let (_, learners) = group_membership(&cluster, 2)?;
            learners.contains(&(JOINED_RAFT_ID_BASE + 8)).then_some(())
        },
    )
    .await;
    let second = client
        .remove_replica(proto::RemoveReplicaRequest {
            gid: 2,
            node_id: 5,
            forwarded: false,
        })
        .await
        .expect_err("a second change while one runs");
    assert_eq!(second.code(), tonic::Code::Unavailable, "{second:?}");
    assert!(second.message().contains("under way"), "{second:?}");
    let stuck = stuck
        .await
        .expect("task")
        .expect_err("node 8 never catches up");
    assert!(
        stuck.message().contains("did not catch up") && stuck.message().contains("nothing changed"),
        "{stuck:?}"
    );
    assert_eq!(
        group_membership(&cluster, 2),
        Some(membership_before.clone())
    );
    assert_eq!(
        controller_servers(&mut client, 2).await,
        (servers_before.clone(), config_before)
    );

    // Phase 4: node 6's machine is replaced: stopped, its data deleted,
    // a new node 7 started empty (joining), then replace-replica through
    // the CLI, asked of node 1 (outside the group; its table does not list
    // node 7, so the address goes with the request).
    eprintln!("replica_change: phase 4: replace node 6 by node 7");
    cluster.stop_node(6).await.expect("node 6 stops");
    let node6_dir = cluster.configs[5].data_dir.clone();
    std::fs::remove_dir_all(&node6_dir).expect("node 6's data is deleted");
    let node7_config = joining_config(&cluster.configs[5], 7, 2, &cluster.data_dir);
    let node7_data_addr = format!(
        "127.0.0.1:{}",
        node7_config
            .nodes
            .last()
            .expect("node 7")
            .data_port
            .expect("port")
    );
    let node7 = Node::start_in_process(node7_config)
        .await
        .expect("node 7 starts");
    let (succeeded, text) = cli(
        &addr.to_string(),
        &[
            "replace-replica",
            "--group",
            "2",
            "--remove",
            "6",
            "--add",
            "7",
            "--peer-addr",
            &node7_data_addr,
        ],
    );
    assert!(succeeded, "{text}");
    assert!(
        text.contains(&format!("node 7 ({node7_data_addr})")) && !text.contains("node 6"),
        "{text}"
    );
    let (voters, learners) = group_membership(&cluster, 2).expect("a leader");
    assert_eq!(voters, vec![0, 1, JOINED_RAFT_ID_BASE + 7]);
    assert!(learners.is_empty(), "{learners:?}");
    assert!(
        node7
            .state()
            .raft_of(2)
            .expect("node 7 hosts group 2")
            .status()
            .is_voter
    );

    // Phase 5: the controller lists the group's voters now (a new
    // configuration, no shard moved).
    let (servers_after, config_after) = controller_servers(&mut client, 2).await;
    assert_eq!(
        servers_after,
        vec![
            servers_before[0].clone(),
            servers_before[1].clone(),
            node7_data_addr.clone()
        ]
    );
    assert!(
        config_after > config_before,
        "{config_after} vs {config_before}"
    );
    // The same request again: in effect already, nothing new.
    let again = client
        .replace_replica(proto::ReplaceReplicaRequest {
            gid: 2,
            remove_node_id: 6,
            add_node_id: 7,
            peer_addr: node7_data_addr.clone(),
            ..proto::ReplaceReplicaRequest::default()
        })
        .await
        .expect("a repeated replace is in effect")
        .into_inner();
    assert_eq!(again.config_num, config_after);

    // Phase 6: node 7 leads group 2 and node 4 stops: only a client that
    // follows the controller's list (4, 5, 7) reaches the group's leader;
    // the old list (4, 5, 6) holds a stopped node, a deleted one and a
    // follower.
    eprintln!("replica_change: phase 6: node 7 leads, node 4 stops");
    let moved = client
        .transfer_leader(proto::TransferLeaderRequest {
            gid: 2,
            to_node_id: 7,
            forwarded: false,
        })
        .await
        .expect("leadership moves to the new replica")
        .into_inner();
    assert_eq!(moved.leader_node_id, 7);
    eprintln!("replica_change: node 7 leads");
    cluster
        .stop_node_without_handoff(4)
        .await
        .expect("node 4 stops");
    eprintln!("replica_change: node 4 stopped");
    let mut after = BTreeMap::new();
    for i in 0..50 {
        let (key, value) = (format!("after-{i}"), format!("a{i}"));
        let written = tokio::time::timeout(
            Duration::from_secs(15),
            data.set(key.as_bytes(), value.as_bytes()),
        )
        .await;
        if !matches!(written, Ok(Ok(()))) {
            for node in [1, 5] {
                let state = cluster.node_state(node).expect("running");
                eprintln!(
                    "node {node}: routing {} {:?}; group 2 raft {:?}",
                    state.forwarder.routing().num,
                    state.forwarder.routing().groups,
                    state
                        .raft_of(2)
                        .map(|raft| (raft.status(), raft.membership()))
                );
            }
            let raft = node7.state().raft_of(2).expect("group 2");
            eprintln!("node 7: {:?} {:?}", raft.status(), raft.membership());
            eprintln!("node 7 data status: {:?}", node7.state().local_status());
            eprintln!("controller: {:?}", controller_servers(&mut client, 2).await);
            eprintln!(
                "before: {servers_before:?} {config_before}, after: {servers_after:?} {config_after}"
            );
            panic!("write {key} with node 4 and 6 gone: {written:?}");
        }
        after.insert(key, value);
    }
    eprintln!("replica_change: 50 writes with node 4 and 6 gone");

    // Phase 7: every acknowledged write reads back.
    eprintln!("replica_change: phase 7: read back");
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, failed) = writer.await.expect("writer");
    eprintln!("replica_change: writer stopped");

    // The writer ran through every phase; a loaded machine makes each write
    // slower, so the bound only says it wrote at all (6 runs here: 338-497).
    assert!(
        acknowledged.len() >= 20,
        "only {} writes acknowledged",
        acknowledged.len()
    );
    check_all(&data, &acknowledged, "after the replacement").await;
    check_all(&data, &after, "after node 4 stopped").await;
    eprintln!(
        "replica_change: {} writes acknowledged ({} failed while groups elected), all read back",
        acknowledged.len(),
        failed
    );
    node7.shutdown().await;
    eprintln!("replica_change: node 7 stopped");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_voter_of_a_group_is_not_removed() {
    let cluster = TestCluster::builder().groups(1).replicas(1).start().await;
    let mut client = admin(cluster.grpc_addr()).await;
    let refused = client
        .remove_replica(proto::RemoveReplicaRequest {
            gid: 1,
            node_id: 1,
            forwarded: false,
        })
        .await
        .expect_err("the last voter");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("last voter"), "{refused:?}");
    assert_eq!(group_membership(&cluster, 1), Some((vec![0], vec![])));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_controller_replica_is_replaced_and_clerks_reach_a_leader_their_tables_do_not_list() {
    // Nodes 1-3: group 1 and the controller; nodes 4-6: group 2.
    let cluster = TestCluster::builder().groups(2).replicas(3).start().await;
    let addr = cluster.grpc_addr();
    let mut client = admin(addr).await;
    let data = distcache_client::Client::connect(&addr.to_string()).expect("data client");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_until(data.clone(), Arc::clone(&stop)));
    let membership_before = wait_for(
        "the controller has a leader",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { group_membership(&cluster, 0) },
    )
    .await;
    assert_eq!(membership_before, (vec![0, 1, 2], vec![]));

    // Node 3's controller replica is replaced by node 8's: a node that
    // hosts a controller replica only, started empty with joining = true;
    // only its own table lists it.
    eprintln!("controller change: replace node 3 by node 8");
    let node8_config = joining_config(&cluster.configs[0], 8, 0, &cluster.data_dir);
    let node8_addr = format!(
        "127.0.0.1:{}",
        node8_config
            .nodes
            .last()
            .expect("node 8")
            .controller_port
            .expect("port")
    );
    let node8 = Node::start_in_process(node8_config)
        .await
        .expect("node 8 starts");
    // A data replica's address given for a controller replica is refused:
    // Raft messages carry no group, so controller traffic would reach a
    // data replica.
    let node4_data_addr = {
        let topology = cluster.configs[0].validate().expect("valid");
        topology.groups[&2][0].1
    };
    let wrong = client
        .add_replica(proto::AddReplicaRequest {
            gid: 0,
            node_id: 8,
            peer_addr: node4_data_addr.to_string(),
            ..proto::AddReplicaRequest::default()
        })
        .await
        .expect_err("a data replica's address");
    assert_eq!(wrong.code(), tonic::Code::InvalidArgument, "{wrong:?}");
    assert!(
        wrong
            .message()
            .contains("is the peer address of group 2's replica on node 4"),
        "{wrong:?}"
    );
    assert_eq!(
        group_membership(&cluster, 0),
        Some(membership_before.clone())
    );
    let (succeeded, text) = cli(
        &addr.to_string(),
        &[
            "replace-replica",
            "--group",
            "0",
            "--remove",
            "3",
            "--add",
            "8",
            "--peer-addr",
            &node8_addr,
        ],
    );
    assert!(succeeded, "{text}");
    assert!(
        text.contains(&format!("node 8 ({node8_addr})")) && !text.contains("node 3"),
        "{text}"
    );
    let (voters, learners) = group_membership(&cluster, 0).expect("a controller leader");
    assert_eq!(voters, vec![0, 1, JOINED_RAFT_ID_BASE + 8]);
    assert!(learners.is_empty(), "{learners:?}");

    // Node 8 leads the controller; node 3 stops for good (group 1 keeps
    // a majority). The clerks of nodes 1, 2, 4, 5 and 6 know nodes 1-3
    // only.
    let moved = client
        .transfer_leader(proto::TransferLeaderRequest {
            gid: 0,
            to_node_id: 8,
            forwarded: false,
        })
        .await
        .expect("the controller's leadership moves to node 8")
        .into_inner();
    assert_eq!(moved.leader_node_id, 8);
    cluster
        .stop_node_without_handoff(3)
        .await
        .expect("node 3 stops");
    let raft8 = node8
        .state()
        .raft_of(0)
        .expect("node 8 hosts a controller replica");
    assert!(raft8.status().is_leader, "{:?}", raft8.status());

    // Changes and queries through nodes whose clerks cannot name the
    // leader: a shard moves to group 2 and back, asked of node 5.
    eprintln!("controller change: shards move through node 5 while node 8 leads");
    let node5_grpc = cluster.configs[0].validate().expect("valid").grpc[&5];
    let mut client5 = admin(node5_grpc).await;
    let (_, config_before) = controller_servers(&mut client5, 2).await;
    let mut last = config_before;
    for (shard, gid) in [(0, 2), (0, 1), (1, 2)] {
        let reply = tokio::time::timeout(
            Duration::from_secs(20),
            client5.r#move(proto::MoveRequest { shard, gid }),
        )
        .await
        .expect("the move answers in time")
        .expect("the move is done")
        .into_inner();
        assert!(reply.config_num > last, "{} vs {last}", reply.config_num);
        last = reply.config_num;
    }
    assert!(
        raft8.status().is_leader,
        "node 8 lost the lead: the moves may not have gone through it"
    );
    let (_, config_now) = controller_servers(&mut client5, 2).await;
    assert_eq!(config_now, last);

    // Writes after the moves, through node 1, whose clerk cannot name the
    // controller's leader either; then every acknowledged write reads back.
    let mut after = BTreeMap::new();
    for i in 0..50 {
        let (key, value) = (format!("after-{i}"), format!("a{i}"));
        tokio::time::timeout(
            Duration::from_secs(15),
            data.set(key.as_bytes(), value.as_bytes()),
        )
        .await
        .expect("the write answers in time")
        .expect("the write is acknowledged");
        after.insert(key, value);
    }
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, failed) = writer.await.expect("writer");
    assert!(!acknowledged.is_empty(), "the writer wrote nothing");
    check_all(
        &data,
        &acknowledged,
        "after the controller replica was replaced",
    )
    .await;
    check_all(&data, &after, "after the shards moved").await;
    eprintln!(
        "controller change: {} writes acknowledged ({failed} failed), all read back",
        acknowledged.len()
    );

    // Node 1's replica may leave (node 2's, an original one every table
    // lists, stays); then node 2's may not: no original would be left.
    // Asked of node 8, the leader: the other nodes' tables do not list its
    // gRPC address, so they cannot pass an admin request on to it.
    let node8_grpc = node8
        .state()
        .topology
        .grpc
        .get(&8)
        .copied()
        .expect("node 8's own table lists it");
    let mut client = admin(node8_grpc).await;
    let removed = client
        .remove_replica(proto::RemoveReplicaRequest {
            gid: 0,
            node_id: 1,
            forwarded: false,
        })
        .await
        .expect("node 1's controller replica leaves")
        .into_inner();
    let voters: Vec<u64> = removed.voters.iter().map(|voter| voter.node_id).collect();
    assert_eq!(voters, vec![2, 8]);
    assert_eq!(removed.config_num, 0);
    // The status of a node hosting a controller replica names its voters.
    let status = client
        .status(proto::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.controller_node_ids, vec![2, 8]);
    let last_listed = client
        .remove_replica(proto::RemoveReplicaRequest {
            gid: 0,
            node_id: 2,
            forwarded: false,
        })
        .await
        .expect_err("the last listed controller replica");
    assert_eq!(
        last_listed.code(),
        tonic::Code::InvalidArgument,
        "{last_listed:?}"
    );
    assert!(
        last_listed
            .message()
            .contains("last of the controller's original replicas"),
        "{last_listed:?}"
    );
    node8.shutdown().await;
    cluster.shutdown().await;
}
