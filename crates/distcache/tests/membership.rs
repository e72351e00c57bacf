//! Leadership transfer by an operator (issue 21), on real nodes (two data
//! groups of three replicas in this process, gRPC and Raft over loopback)
//! and through the `distcache` binary: refusals name what is wrong and
//! change nothing; a request sent to a node that does not lead the group
//! is passed on to the one that does; data groups and the controller
//! group alike; writes go on.

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

/// The node whose replica of `gid` (0: the controller) leads, once exactly
/// one does (at most 10 s).
async fn leader_of(client: &mut AdminClient<tonic::transport::Channel>, gid: u64) -> u64 {
    let role = if gid == 0 { "controller" } else { "data" };
    wait_for(
        "one leader of the group",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            let mut client = client.clone();
            async move {
                let status = client
                    .status(proto::StatusRequest {})
                    .await
                    .ok()?
                    .into_inner();
                let leaders: Vec<u64> = status
                    .nodes
                    .iter()
                    .filter(|node| {
                        node.replicas.iter().any(|replica| {
                            replica.role == role && replica.gid == gid && replica.is_leader
                        })
                    })
                    .map(|node| node.node_id)
                    .collect();
                (leaders.len() == 1).then(|| leaders[0])
            }
        },
    )
    .await
}

/// Runs `distcache admin transfer-leader ...` against `addr`; (success,
/// stdout + stderr).
fn cli_transfer(addr: &str, arguments: &[&str]) -> (bool, String) {
    let mut command = vec!["admin", "transfer-leader"];
    command.extend_from_slice(arguments);
    let output = NodeProcesses::cli(addr, &command);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn transfer(gid: u64, to_node_id: u64) -> proto::TransferLeaderRequest {
    proto::TransferLeaderRequest {
        gid,
        to_node_id,
        forwarded: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_moves_the_leadership_of_data_and_controller_groups() {
    let demo = TestCluster::builder().groups(2).replicas(3).start().await;
    let addr = demo.grpc_addr();
    let mut client = admin(addr).await;
    let data = distcache_client::Client::connect(&addr.to_string()).expect("data client");
    data.set(b"before", b"1").await.expect("set");

    // Phase 1: refusals, each naming what is wrong.
    let status = client
        .status(proto::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    let group_2_nodes: Vec<u64> = status
        .nodes
        .iter()
        .filter(|node| {
            node.replicas
                .iter()
                .any(|replica| replica.role == "data" && replica.gid == 2)
        })
        .map(|node| node.node_id)
        .collect();
    assert_eq!(group_2_nodes.len(), 3, "{status:?}");
    let outsider = status
        .nodes
        .iter()
        .map(|node| node.node_id)
        .find(|node| !group_2_nodes.contains(node))
        .expect("a node outside group 2");
    let unknown_group = client
        .transfer_leader(transfer(99, group_2_nodes[0]))
        .await
        .expect_err("unknown group");
    assert_eq!(unknown_group.code(), tonic::Code::InvalidArgument);
    assert!(
        unknown_group.message().contains("group 99"),
        "{unknown_group:?}"
    );
    let not_a_member = client
        .transfer_leader(transfer(2, outsider))
        .await
        .expect_err("a node outside the group");
    assert_eq!(not_a_member.code(), tonic::Code::InvalidArgument);
    assert!(
        not_a_member
            .message()
            .contains(&format!("node {outsider} hosts no replica of group 2")),
        "{not_a_member:?}"
    );
    let (succeeded, text) = cli_transfer(&addr.to_string(), &["--group", "99", "--to", "1"]);
    assert!(!succeeded && text.contains("group 99"), "{text}");
    let http = demo.http_addr(1).expect("node 1 serves HTTP");
    let answer = request(
        http,
        "POST",
        "/v1/admin/transfer-leader",
        Some("application/json"),
        br#"{"gid": 2, "to_node_id": 999}"#.to_vec(),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("node 999"), "{}", answer.text());

    // Phase 2: group 2's leadership moves, asked of a node outside the
    // group (passed on to the leader).
    let leader = leader_of(&mut client, 2).await;
    let target = *group_2_nodes
        .iter()
        .find(|&&node| node != leader)
        .expect("another replica");
    let outsider_addr: SocketAddr = status
        .nodes
        .iter()
        .find(|node| node.node_id == outsider)
        .expect("outsider")
        .grpc_addr
        .parse()
        .expect("address");
    let reply = admin(outsider_addr)
        .await
        .transfer_leader(transfer(2, target))
        .await
        .expect("transfer over gRPC")
        .into_inner();
    assert_eq!(reply.leader_node_id, target);
    assert_eq!(leader_of(&mut client, 2).await, target);
    // To the node that leads already: nothing to do.
    let reply = client
        .transfer_leader(transfer(2, target))
        .await
        .expect("no-op transfer")
        .into_inner();
    assert_eq!(reply.leader_node_id, target);

    // Phase 3: the controller group's leadership moves, through the CLI.
    let controller_leader = leader_of(&mut client, 0).await;
    let controller_target = status
        .controller_node_ids
        .iter()
        .copied()
        .find(|&node| node != controller_leader)
        .expect("another controller replica");
    let (succeeded, text) = cli_transfer(
        &addr.to_string(),
        &["--group", "0", "--to", &controller_target.to_string()],
    );
    assert!(succeeded, "{text}");
    assert!(
        text.contains(&format!("controller group led by node {controller_target}")),
        "{text}"
    );
    assert_eq!(leader_of(&mut client, 0).await, controller_target);

    // Phase 4: back to the first leader over REST; writes go on.
    let answer = request(
        http,
        "POST",
        "/v1/admin/transfer-leader",
        Some("application/json"),
        format!(r#"{{"gid": 2, "to_node_id": {leader}}}"#).into_bytes(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer
            .text()
            .contains(&format!(r#""leader_node_id":{leader}"#)),
        "{}",
        answer.text()
    );
    assert_eq!(leader_of(&mut client, 2).await, leader);
    data.set(b"after", b"2")
        .await
        .expect("set after the transfers");
    assert_eq!(data.get(b"before").await.expect("get"), Some(b"1".to_vec()));
    demo.shutdown().await;
}
