//! Clerks on client nodes whose every call is recorded for the
//! linearizability checker (the harness's [`RecordingClient`]), and the
//! controller calls the tests make.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use labrpc::sim::Network;
use linearizability::{KvInput, KvOutput, Recorder};
use shardctrler::{Config, ControllerClient, Gid};
use shardkv::{Clerk, ClerkConfig, Controller};

use crate::harness::{RecordingClient, RecordingKv};

use super::SHARDS;
use super::tester_client_ip;

/// A shardkv clerk whose every call is recorded.
pub type RecordingClerk = RecordingKv<Clerk<Controller>>;

/// A recording shardkv clerk on a client node of its own (its calls are
/// made from that node; see [`RecordingClient`]), and a controller clerk
/// for the Join, Leave, Move and Query calls the tests make from there.
#[derive(Clone)]
pub struct TestClient {
    client: RecordingClient<Clerk<Controller>>,
    /// One session for every controller call of this client.
    admin: Arc<Controller>,
}

impl Deref for TestClient {
    type Target = RecordingClient<Clerk<Controller>>;

    fn deref(&self) -> &RecordingClient<Clerk<Controller>> {
        &self.client
    }
}

impl TestClient {
    pub(super) fn new(
        net: &Network,
        subnet: u8,
        controller_addrs: &[SocketAddr],
        recorder: &Recorder<KvInput, KvOutput>,
        start: tokio::time::Instant,
        next_client: &AtomicU64,
        recorded: bool,
    ) -> TestClient {
        let index = next_client.fetch_add(1, Ordering::Relaxed);
        let node = net.add_client_node(
            &format!("skv-client-{index}"),
            tester_client_ip(subnet, index),
        );
        let controller = Controller::new(controller_addrs.to_vec());
        // Join and Leave may wait out elections on a lossy network.
        let admin = Controller::with_config(
            controller_addrs.to_vec(),
            shardctrler::ClerkConfig {
                operation_deadline: std::time::Duration::from_secs(60),
                ..shardctrler::ClerkConfig::default()
            },
        );
        let kv = RecordingKv::new(
            index,
            Clerk::new(controller, SHARDS, ClerkConfig::default()),
            recorded.then(|| recorder.clone()),
            start,
        );
        TestClient {
            client: RecordingClient::new(net, node, kv),
            admin: Arc::new(admin),
        }
    }

    pub(super) async fn controller_join(&self, servers: BTreeMap<Gid, Vec<SocketAddr>>) {
        let admin = Arc::clone(&self.admin);
        self.run(|_| async move {
            admin
                .clerk()
                .join(servers)
                .await
                .unwrap_or_else(|error| panic!("controller join failed: {error}"));
        })
        .await;
    }

    pub(super) async fn controller_leave(&self, gids: Vec<Gid>) {
        let admin = Arc::clone(&self.admin);
        self.run(|_| async move {
            admin
                .clerk()
                .leave(gids)
                .await
                .unwrap_or_else(|error| panic!("controller leave failed: {error}"));
        })
        .await;
    }

    pub(super) async fn controller_move(&self, shard: usize, gid: Gid) {
        let admin = Arc::clone(&self.admin);
        self.run(move |_| async move {
            admin
                .clerk()
                .move_shard(shard, gid)
                .await
                .unwrap_or_else(|error| panic!("controller move failed: {error}"));
        })
        .await;
    }

    pub(super) async fn controller_declare_lost(&self, gid: Gid) -> u64 {
        let admin = Arc::clone(&self.admin);
        self.run(move |_| async move {
            admin
                .clerk()
                .declare_lost(gid)
                .await
                .unwrap_or_else(|error| panic!("controller declare-lost failed: {error}"))
        })
        .await
    }

    pub(super) async fn controller_query(&self) -> Config {
        let admin = Arc::clone(&self.admin);
        self.run(|_| async move {
            admin
                .clerk()
                .query(None)
                .await
                .unwrap_or_else(|error| panic!("controller query failed: {error}"))
        })
        .await
    }
}
