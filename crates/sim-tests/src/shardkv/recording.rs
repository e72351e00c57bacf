//! Clerks on client nodes whose every call is recorded for the
//! linearizability checker, and the controller calls the tests make.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use api::{Error, KvClient};
use labrpc::sim::{Network, NodeId};
use linearizability::{KvInput, KvOutput, PendingCall, Recorder, SetIf};
use shardctrler::{Config, Gid};
use shardkv::{Clerk, ClerkConfig, Controller};

use super::SHARDS;
use super::tester_client_ip;

/// A clerk on a client node; its calls are made from that node.
#[derive(Clone)]
pub struct TestClient {
    net: Network,
    node: NodeId,
    clerk: Arc<RecordingClerk>,
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
        TestClient {
            net: net.clone(),
            node,
            clerk: Arc::new(RecordingClerk {
                client: index,
                clerk: Clerk::new(controller, SHARDS, ClerkConfig::default()),
                controller: admin,
                recorder: recorded.then(|| recorder.clone()),
                start,
            }),
        }
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Runs `work` with this client's clerk, as a task of the client node.
    pub fn spawn<F, Fut, T>(&self, work: F) -> madsim::task::JoinHandle<T>
    where
        F: FnOnce(Arc<RecordingClerk>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.net.spawn(self.node, work(Arc::clone(&self.clerk)))
    }

    /// Runs `work` on the client node and waits for it.
    pub async fn run<F, Fut, T>(&self, work: F) -> T
    where
        F: FnOnce(Arc<RecordingClerk>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn(work)
            .await
            .expect("client nodes are never killed, so their tasks finish")
    }

    pub async fn put(&self, key: &str, value: &str) -> Option<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.run(|clerk| async move { clerk.put(&key, &value).await })
            .await
    }

    pub async fn append(&self, key: &str, value: &str) -> Option<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.run(|clerk| async move { clerk.append(&key, &value).await })
            .await
    }

    pub async fn get(&self, key: &str) -> Option<Option<String>> {
        let key = key.to_string();
        self.run(|clerk| async move { clerk.get(&key).await }).await
    }

    /// Get that must succeed and read `expected`.
    pub async fn check_get(&self, key: &str, expected: &str) {
        match self.get(key).await {
            Some(value) => assert_eq!(
                value.as_deref(),
                Some(expected),
                "get({key}) read {value:?}, expected {expected:?}"
            ),
            None => panic!("get({key}) gave up; expected {expected:?}"),
        }
    }

    pub(super) async fn controller_join(&self, servers: BTreeMap<Gid, Vec<SocketAddr>>) {
        self.run(|clerk| async move {
            clerk
                .controller
                .clerk()
                .join(servers)
                .await
                .unwrap_or_else(|error| panic!("controller join failed: {error}"));
        })
        .await;
    }

    pub(super) async fn controller_leave(&self, gids: Vec<Gid>) {
        self.run(|clerk| async move {
            clerk
                .controller
                .clerk()
                .leave(gids)
                .await
                .unwrap_or_else(|error| panic!("controller leave failed: {error}"));
        })
        .await;
    }

    pub(super) async fn controller_move(&self, shard: usize, gid: Gid) {
        self.run(move |clerk| async move {
            clerk
                .controller
                .clerk()
                .move_shard(shard, gid)
                .await
                .unwrap_or_else(|error| panic!("controller move failed: {error}"));
        })
        .await;
    }

    pub(super) async fn controller_declare_lost(&self, gid: Gid) -> u64 {
        self.run(move |clerk| async move {
            clerk
                .controller
                .clerk()
                .declare_lost(gid)
                .await
                .unwrap_or_else(|error| panic!("controller declare-lost failed: {error}"))
        })
        .await
    }

    pub(super) async fn controller_query(&self) -> Config {
        self.run(|clerk| async move {
            clerk
                .controller
                .clerk()
                .query(None)
                .await
                .unwrap_or_else(|error| panic!("controller query failed: {error}"))
        })
        .await
    }
}

/// A clerk that records every call and its outcome (None: gave up, the
/// outcome is unknown).
pub struct RecordingClerk {
    client: u64,
    clerk: Clerk<Controller>,
    controller: Controller,
    recorder: Option<Recorder<KvInput, KvOutput>>,
    start: tokio::time::Instant,
}

impl RecordingClerk {
    fn now_us(&self) -> u64 {
        u64::try_from(
            labrpc::runtime::now()
                .duration_since(self.start)
                .as_micros(),
        )
        .unwrap_or(u64::MAX)
    }

    async fn recorded<T>(
        &self,
        input: KvInput,
        call: impl Future<Output = Result<T, Error>>,
        output: impl FnOnce(&T) -> KvOutput,
    ) -> Option<T> {
        let pending: Option<PendingCall> = self
            .recorder
            .as_ref()
            .map(|recorder| recorder.call(self.client, input, self.now_us()));
        let result = call.await;
        let now_us = self.now_us();
        match result {
            Ok(value) => {
                if let (Some(recorder), Some(pending)) = (&self.recorder, pending) {
                    recorder.returned(pending, output(&value), now_us);
                }
                Some(value)
            }
            Err(Error::Timeout { .. }) => {
                if let (Some(recorder), Some(pending)) = (&self.recorder, pending) {
                    recorder.timed_out(pending, now_us);
                }
                None
            }
            Err(error) => panic!("client {}: unexpected error {error}", self.client),
        }
    }

    pub async fn get(&self, key: &str) -> Option<Option<String>> {
        let input = KvInput::Get { key: key.into() };
        let call = async {
            self.clerk.get(key).await.map(|value| {
                value.map(|bytes| String::from_utf8(bytes).expect("tests store UTF-8 values"))
            })
        };
        self.recorded(input, call, |value| KvOutput::Value(value.clone()))
            .await
    }

    pub async fn put(&self, key: &str, value: &str) -> Option<()> {
        let input = KvInput::Put {
            key: key.into(),
            value: value.into(),
        };
        self.recorded(input, self.clerk.put(key, value), |_| KvOutput::Done)
            .await
    }

    pub async fn append(&self, key: &str, value: &str) -> Option<()> {
        let input = KvInput::Append {
            key: key.into(),
            value: value.into(),
        };
        self.recorded(input, self.clerk.append(key, value), |_| KvOutput::Done)
            .await
    }

    pub async fn delete(&self, key: &str) -> Option<bool> {
        let input = KvInput::Delete { key: key.into() };
        self.recorded(input, self.clerk.delete(key), |existed| {
            KvOutput::Deleted(*existed)
        })
        .await
    }

    pub async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
    ) -> Option<bool> {
        let input = KvInput::Cas {
            key: key.into(),
            expected: expected.map(str::to_string),
            value: value.into(),
        };
        let call = self
            .clerk
            .compare_and_set(key, expected.map(|e| e.as_bytes().to_vec()), value);
        self.recorded(input, call, |swapped| KvOutput::Cas(*swapped))
            .await
    }

    /// `SET` with a condition (no TTL); `get`: answer the old value.
    pub async fn set(&self, key: &str, value: &str, condition: SetIf, get: bool) -> Option<bool> {
        let input = KvInput::Set {
            key: key.into(),
            value: value.into(),
            condition,
            get,
        };
        let api_condition = match condition {
            SetIf::Always => api::SetCondition::Always,
            SetIf::Absent => api::SetCondition::IfAbsent,
            SetIf::Present => api::SetCondition::IfPresent,
        };
        let call = async {
            self.clerk
                .set(key, value, api_condition, api::SetTtl::Clear, get)
                .await
                .map(|(applied, previous)| (applied, previous.map(utf8)))
        };
        self.recorded(input, call, |(applied, previous)| KvOutput::Set {
            applied: *applied,
            previous: previous.clone(),
        })
        .await
        .map(|(applied, _)| applied)
    }

    /// `INCRBY`; a value that is not an integer is recorded as refused.
    pub async fn incr(&self, key: &str, delta: i64) -> Option<Option<i64>> {
        let input = KvInput::Incr {
            key: key.into(),
            delta,
        };
        let call = async {
            match self.clerk.increment(key, delta).await {
                Ok(value) => Ok(Some(value)),
                Err(Error::NotAnInteger | Error::IncrementOverflow) => Ok(None),
                Err(error) => Err(error),
            }
        };
        self.recorded(input, call, |value| match value {
            Some(value) => KvOutput::Integer(*value),
            None => KvOutput::Refused,
        })
        .await
    }

    pub async fn get_del(&self, key: &str) -> Option<Option<String>> {
        let input = KvInput::GetDel { key: key.into() };
        let call = async { self.clerk.get_del(key).await.map(|value| value.map(utf8)) };
        self.recorded(input, call, |value| KvOutput::Value(value.clone()))
            .await
    }

    pub async fn strlen(&self, key: &str) -> Option<i64> {
        let input = KvInput::Strlen { key: key.into() };
        self.recorded(input, self.clerk.strlen(key), |length| {
            KvOutput::Integer(*length)
        })
        .await
    }

    /// Gives the key a deadline an hour away (the `kv` model does not
    /// model time); whether the key was present.
    pub async fn expire(&self, key: &str) -> Option<bool> {
        let input = KvInput::Expire { key: key.into() };
        let call = self
            .clerk
            .expire(key, 60 * 60 * 1000, api::ExpireCondition::default());
        self.recorded(input, call, |applied| KvOutput::Applied(*applied))
            .await
    }

    pub async fn persist(&self, key: &str) -> Option<bool> {
        let input = KvInput::Persist { key: key.into() };
        self.recorded(input, self.clerk.persist(key), |applied| {
            KvOutput::Applied(*applied)
        })
        .await
    }

    /// Whether the key is present, read by its TTL.
    pub async fn ttl(&self, key: &str) -> Option<bool> {
        let input = KvInput::Ttl { key: key.into() };
        let call = async {
            self.clerk
                .ttl(key)
                .await
                .map(|ttl| ttl != api::KeyTtl::Missing)
        };
        self.recorded(input, call, |present| KvOutput::Applied(*present))
            .await
    }
}

fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("tests store UTF-8 values")
}
