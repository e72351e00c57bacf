//! Declaring a data group lost, on real nodes (a demo of two groups of
//! three replicas in this process, gRPC and Raft over loopback) and through
//! the `distcache` binary: refusals change nothing (no confirmation, an
//! unknown gid, the last group), a declaration removes the group, its keys
//! read as missing on the group that takes its shards, status shows the
//! lost group and the lost-shard markers, the metrics count them, the lost
//! group's own replicas stop serving, and its gid may not join again.

#![cfg(not(madsim))]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use distcache_client::proto;
use distcache_client::proto::admin_client::AdminClient;
use support::cluster::TestCluster;
use support::http::request;
use support::keys::wait_for;
use support::processes::NodeProcesses;

async fn admin(addr: SocketAddr) -> AdminClient<tonic::transport::Channel> {
    let url = distcache_client::grpc_url(&addr.to_string()).expect("url");
    AdminClient::connect(url).await.expect("connect")
}

/// Runs `distcache admin declare-lost ...` against `addr`; (success,
/// stdout + stderr).
fn cli_declare_lost(addr: &str, arguments: &[&str]) -> (bool, String) {
    let mut command = vec!["admin", "declare-lost"];
    command.extend_from_slice(arguments);
    let output = NodeProcesses::cli(addr, &command);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_cli_refuses_without_confirmation_and_sends_nothing() {
    // Nothing listens there: had the command tried to connect, it would
    // say it cannot reach the address.
    let (succeeded, text) = cli_declare_lost("127.0.0.1:9", &["2"]);
    assert!(!succeeded, "{text}");
    assert!(text.contains("--yes-data-is-lost"), "{text}");
    assert!(!text.contains("cannot reach"), "{text}");
}

/// `POST path` with a JSON `body` to the HTTP gateway at `addr`;
/// (status code, body).
async fn post_json(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let answer = request(
        addr,
        "POST",
        path,
        Some("application/json"),
        body.as_bytes().to_vec(),
    )
    .await;
    (answer.status, answer.text())
}

async fn status(client: &mut AdminClient<tonic::transport::Channel>) -> proto::StatusReply {
    client
        .status(proto::StatusRequest {})
        .await
        .expect("status")
        .into_inner()
}

/// A key whose shard group `gid` owns in `shards`.
fn key_of_group(shards: &[u64], gid: u64) -> String {
    (0..10_000)
        .map(|index| format!("key-{index}"))
        .find(|key| {
            let shard = shardkv::key_to_shard(key.as_bytes(), shards.len());
            shards[shard] == gid
        })
        .expect("a key of the group")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_a_group_lost_on_real_nodes() {
    let demo = TestCluster::builder().groups(2).replicas(3).start().await;
    let addr = demo.grpc_addr();
    let mut client = admin(addr).await;
    let data = distcache_client::Client::connect(&addr.to_string()).expect("data client");

    // Phase 1: keys in both groups.
    let before = status(&mut client).await;
    let lost_key = key_of_group(&before.shard_owners, 2);
    let kept_key = key_of_group(&before.shard_owners, 1);
    for key in [&lost_key, &kept_key] {
        data.set(key.as_bytes(), b"v").await.expect("set");
    }

    // Phase 2: refusals change nothing.
    let unconfirmed = client
        .declare_lost(proto::DeclareLostRequest {
            gid: 2,
            confirm_data_is_lost: false,
        })
        .await
        .expect_err("refused without confirmation");
    assert_eq!(unconfirmed.code(), tonic::Code::InvalidArgument);
    let unknown = client
        .declare_lost(proto::DeclareLostRequest {
            gid: 99,
            confirm_data_is_lost: true,
        })
        .await
        .expect_err("unknown gid");
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument);
    assert!(unknown.message().contains("99"), "{}", unknown.message());
    let (succeeded, text) = cli_declare_lost(&addr.to_string(), &["99", "--yes-data-is-lost"]);
    assert!(!succeeded && text.contains("group 99"), "{text}");
    let http = demo.http_addr(1).expect("node 1 serves HTTP");
    let (code, answer) = post_json(http, "/v1/admin/declare-lost", r#"{"gid": 2}"#).await;
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("confirm_data_is_lost"), "{answer}");
    let (code, answer) = post_json(
        http,
        "/v1/admin/declare-lost",
        r#"{"gid": 99, "confirm_data_is_lost": true}"#,
    )
    .await;
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("invalid_argument"), "{answer}");
    assert_eq!(status(&mut client).await.config_num, before.config_num);

    // Phase 3: declare group 2 lost through the CLI.
    let (succeeded, text) = cli_declare_lost(&addr.to_string(), &["2", "--yes-data-is-lost"]);
    assert!(succeeded, "{text}");
    // Again, over REST: idempotent, the latest configuration.
    let (code, answer) = post_json(
        http,
        "/v1/admin/declare-lost",
        r#"{"gid": 2, "confirm_data_is_lost": true}"#,
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    let after = status(&mut client).await;
    assert!(after.config_num > before.config_num);
    assert!(after.groups.iter().all(|group| group.gid != 2));
    assert_eq!(after.lost_groups.len(), 1);
    assert_eq!(after.lost_groups[0].gid, 2);
    // The last group may not be declared lost.
    let last = client
        .declare_lost(proto::DeclareLostRequest {
            gid: 1,
            confirm_data_is_lost: true,
        })
        .await
        .expect_err("the last group");
    assert!(last.message().contains("last group"), "{}", last.message());

    // Phase 4: group 1 takes every shard; group 2's keys are gone, group
    // 1's kept; markers in status, the counter in the metrics.
    wait_for(
        "the lost group's key reads as missing",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async { matches!(data.get(lost_key.as_bytes()).await, Ok(None)).then_some(()) },
    )
    .await;
    assert_eq!(
        data.get(kept_key.as_bytes()).await.expect("get"),
        Some(b"v".to_vec())
    );
    let lost_shards_owned_by_2: Vec<u64> = before
        .shard_owners
        .iter()
        .enumerate()
        .filter(|(_, gid)| **gid == 2)
        .map(|(shard, _)| shard as u64)
        .collect();
    // The leader answered the read; a follower may apply the change a
    // heartbeat later (a lease read sends nothing), so wait until every
    // replica of group 1 marks some shard, then check which.
    let view = wait_for(
        "group 1's replicas mark the lost shards",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let mut client = client.clone();
            async move {
                let view = status(&mut client).await;
                let mut group_1 = view
                    .nodes
                    .iter()
                    .flat_map(|node| &node.replicas)
                    .filter(|replica| replica.role == "data" && replica.gid == 1)
                    .peekable();
                let all_marked = group_1.peek().is_some()
                    && group_1.all(|replica| !replica.lost_shards.is_empty());
                all_marked.then_some(view)
            }
        },
    )
    .await;
    let group_1_replicas: Vec<&proto::ReplicaStatus> = view
        .nodes
        .iter()
        .flat_map(|node| &node.replicas)
        .filter(|replica| replica.role == "data" && replica.gid == 1)
        .collect();
    for replica in &group_1_replicas {
        let marked: Vec<u64> = replica.lost_shards.iter().map(|lost| lost.shard).collect();
        assert_eq!(marked, lost_shards_owned_by_2, "{replica:?}");
        assert!(
            replica
                .lost_shards
                .iter()
                .all(|lost| lost.previous_owner == 2)
        );
        assert!(replica.waiting.is_empty());
    }
    // Node 1 hosts a replica of group 1 (the demo puts group g on nodes
    // 3g-2..3g).
    let node = demo.node_state(1).expect("node 1 runs");
    node.observe();
    let text = node.metrics.encode();
    assert!(
        text.lines()
            .any(|line| line.starts_with("distcache_shards_lost_total") && !line.ends_with(" 0")),
        "{text}"
    );

    // Phase 5: group 2's own replicas learn they were declared lost and
    // serve nothing; gid 2 may not join again.
    wait_for(
        "group 2's replicas see they were declared lost",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let mut client = client.clone();
            async move {
                let view = status(&mut client).await;
                let group_2: Vec<&proto::ReplicaStatus> = view
                    .nodes
                    .iter()
                    .flat_map(|node| &node.replicas)
                    .filter(|replica| replica.role == "data" && replica.gid == 2)
                    .collect();
                (!group_2.is_empty() && group_2.iter().all(|replica| replica.declared_lost))
                    .then_some(())
            }
        },
    )
    .await;
    let rejoin = client
        .join(proto::JoinRequest {
            groups: vec![proto::GroupMembers {
                gid: 2,
                peer_addrs: vec!["127.0.0.1:1".into()],
            }],
        })
        .await
        .expect_err("a lost gid may not join");
    assert!(
        rejoin.message().contains("declared lost"),
        "{}",
        rejoin.message()
    );
    demo.shutdown().await;
}
