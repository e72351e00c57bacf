//! A recorded client whose reads any replica may serve: every `Get` goes
//! through the product client (whose `read_from` the test sets), or, as
//! a raw gRPC call with `read_from = READ_FROM_ANY_REPLICA`, to a node
//! drawn at random (one that holds a replica of the key's group serves it
//! there, leader or follower; any other forwards it to the group's
//! replicas in turn), and every other operation goes through the product
//! client as usual. The history is checked with the same kv model as the
//! leader-read tests: a follower read must be as linearizable.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use api::{Error, KvClient, Op, Outcome};
use distcache_client::Client;
use distcache_client::proto::cache_client::CacheClient;
use distcache_client::proto::{GetRequest, ReadFrom};
use tonic::transport::{Channel, Endpoint};

/// How long one read is tried (then it is recorded as unknown), and one
/// call waits.
const READ_DEADLINE: Duration = Duration::from_secs(8);
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// See the module docs.
pub struct ReplicaReadKv {
    client: Client,
    nodes: Vec<String>,
    /// Reads go to random nodes here; else through `client` (whose own
    /// `read_from` decides).
    random: bool,
    channels: Mutex<BTreeMap<String, Channel>>,
}

impl ReplicaReadKv {
    /// Reads at random among `nodes` (gRPC URLs) if `random`, else
    /// through `client` like the rest.
    pub fn new(client: Client, nodes: Vec<String>, random: bool) -> ReplicaReadKv {
        assert!(!nodes.is_empty(), "replica reads need a node to ask");
        ReplicaReadKv {
            client,
            nodes,
            random,
            channels: Mutex::new(BTreeMap::new()),
        }
    }

    fn cache(&self, url: &str) -> CacheClient<Channel> {
        let mut channels = self.channels.lock().expect("channels lock");
        let channel = channels
            .entry(url.to_string())
            .or_insert_with(|| {
                Endpoint::from_shared(url.to_string())
                    .expect("the cluster's URLs parse")
                    .connect_timeout(CALL_TIMEOUT)
                    .connect_lazy()
            })
            .clone();
        CacheClient::new(channel)
    }

    /// One read of `key` at a node drawn at random, with `read_from =
    /// READ_FROM_ANY_REPLICA` and `max_staleness_ms`: the value (`None`:
    /// no such key), or `None` if it was not answered within a call's
    /// timeout (any error).
    pub async fn read_once(&self, key: &[u8], max_staleness_ms: u64) -> Option<Option<Vec<u8>>> {
        let url = &self.nodes[madsim::rand::random::<u64>() as usize % self.nodes.len()];
        let request = GetRequest {
            key: key.to_vec(),
            read_from: ReadFrom::AnyReplica as i32,
            max_staleness_ms,
            ..GetRequest::default()
        };
        let mut cache = self.cache(url);
        match tokio::time::timeout(CALL_TIMEOUT, cache.get(request)).await {
            Ok(Ok(reply)) => {
                let reply = reply.into_inner();
                Some(reply.found.then_some(reply.value))
            }
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// The product client every operation but the random reads goes
    /// through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn read_anywhere(&self, key: Vec<u8>) -> Result<Outcome, Error> {
        let deadline = labrpc::runtime::now() + READ_DEADLINE;
        let mut attempts = 0;
        while labrpc::runtime::now() < deadline {
            attempts += 1;
            let url = &self.nodes[madsim::rand::random::<u64>() as usize % self.nodes.len()];
            let request = GetRequest {
                key: key.clone(),
                read_from: ReadFrom::AnyReplica as i32,
                ..GetRequest::default()
            };
            let mut cache = self.cache(url);
            match tokio::time::timeout(CALL_TIMEOUT, cache.get(request)).await {
                Ok(Ok(reply)) => {
                    let reply = reply.into_inner();
                    return Ok(Outcome::Value(reply.found.then_some(reply.value)));
                }
                Ok(Err(status))
                    if !matches!(
                        status.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::Unknown
                            | tonic::Code::Cancelled
                    ) =>
                {
                    return Err(Error::UnexpectedOutcome {
                        op: "Get (any replica)".into(),
                        outcome: format!("{status:?}"),
                    });
                }
                Ok(Err(_)) | Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        Err(Error::Timeout {
            deadline_ms: u64::try_from(READ_DEADLINE.as_millis()).unwrap_or(u64::MAX),
            attempts,
        })
    }
}

impl KvClient for ReplicaReadKv {
    async fn run(&self, op: Op) -> Result<Outcome, Error> {
        match op {
            Op::Get { key } if self.random => self.read_anywhere(key).await,
            other => self.client.run(other).await,
        }
    }
}
