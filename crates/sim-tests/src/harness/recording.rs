//! Clients whose every call is recorded for the linearizability checker,
//! over any [`api::KvClient`] (the kvraft clerk, the shardkv clerk, the
//! product's gRPC client), and the check of what they recorded.
//!
//! ```text
//!   test ──► RecordingClient (a client node) ──► RecordingKv<C> ──► C: KvClient ──► cluster
//!                                                  │ invoke / return / unknown
//!                                                  ▼
//!                                    Recorder ──► check_history(model) ──► verdict
//! ```
//!
//! A call that times out is recorded as *unknown* (it may or may not have
//! taken effect) and answers `None`; any other error is a bug of the
//! system or the test, and panics naming the client.

use std::future::Future;
use std::sync::Arc;

use api::{Error, KvClient};
use labrpc::sim::{Network, NodeId};
use linearizability::{
    Budget, History, KvInput, KvOutput, Model, PendingCall, Recorder, SetIf, Verdict, check,
};

/// The TTL the recorded expires give: no test runs this long, so no
/// deadline passes (the `kv` model does not model time).
pub const LONG_TTL_MS: u64 = 60 * 60 * 1000;

/// A [`KvClient`] whose calls are recorded (unless made without a
/// recorder: then they are only made).
pub struct RecordingKv<C> {
    client_id: u64,
    kv: C,
    recorder: Option<Recorder<KvInput, KvOutput>>,
    start: tokio::time::Instant,
}

impl<C: KvClient> RecordingKv<C> {
    /// Client `client_id` over `kv`; times are recorded in microseconds
    /// since `start`.
    pub fn new(
        client_id: u64,
        kv: C,
        recorder: Option<Recorder<KvInput, KvOutput>>,
        start: tokio::time::Instant,
    ) -> RecordingKv<C> {
        RecordingKv {
            client_id,
            kv,
            recorder,
            start,
        }
    }

    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The client underneath (its calls are not recorded).
    pub fn inner(&self) -> &C {
        &self.kv
    }

    fn now_us(&self) -> u64 {
        u64::try_from(
            labrpc::runtime::now()
                .duration_since(self.start)
                .as_micros(),
        )
        .unwrap_or(u64::MAX)
    }

    /// Records `input`, makes `call`, records its answer as `output` of
    /// the value, or the call as unknown if it timed out (`None`).
    ///
    /// # Panics
    /// On any error but a timeout.
    async fn recorded<T>(
        &self,
        input: KvInput,
        call: impl Future<Output = Result<T, Error>>,
        output: impl FnOnce(&T) -> KvOutput,
    ) -> Option<T> {
        let pending: Option<PendingCall> = self
            .recorder
            .as_ref()
            .map(|recorder| recorder.call(self.client_id, input, self.now_us()));
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
            Err(error) => panic!("client {}: unexpected error {error}", self.client_id),
        }
    }

    pub async fn get(&self, key: &str) -> Option<Option<String>> {
        let input = KvInput::Get { key: key.into() };
        let call = async { self.kv.get(key).await.map(|value| value.map(utf8)) };
        self.recorded(input, call, |value| KvOutput::Value(value.clone()))
            .await
    }

    pub async fn put(&self, key: &str, value: &str) -> Option<()> {
        let input = KvInput::Put {
            key: key.into(),
            value: value.into(),
        };
        self.recorded(input, self.kv.put(key, value), |_| KvOutput::Done)
            .await
    }

    pub async fn append(&self, key: &str, value: &str) -> Option<()> {
        let input = KvInput::Append {
            key: key.into(),
            value: value.into(),
        };
        // The kv model's append answers no length; the length is dropped.
        let append = async { self.kv.append(key, value).await.map(|_| ()) };
        self.recorded(input, append, |_| KvOutput::Done).await
    }

    pub async fn delete(&self, key: &str) -> Option<bool> {
        let input = KvInput::Delete { key: key.into() };
        self.recorded(input, self.kv.delete(key), |existed| {
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
            .kv
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
            self.kv
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

    /// `INCRBY`; a value that is not an integer (or an overflow) is
    /// recorded as refused.
    pub async fn incr(&self, key: &str, delta: i64) -> Option<Option<i64>> {
        let input = KvInput::Incr {
            key: key.into(),
            delta,
        };
        let call = async {
            match self.kv.increment(key, delta).await {
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
        let call = async { self.kv.get_del(key).await.map(|value| value.map(utf8)) };
        self.recorded(input, call, |value| KvOutput::Value(value.clone()))
            .await
    }

    pub async fn strlen(&self, key: &str) -> Option<i64> {
        let input = KvInput::Strlen { key: key.into() };
        self.recorded(input, self.kv.strlen(key), |length| {
            KvOutput::Integer(*length)
        })
        .await
    }

    /// Gives the key a deadline of [`LONG_TTL_MS`] (the `kv` model does
    /// not model time); whether the key was present.
    pub async fn expire(&self, key: &str) -> Option<bool> {
        let input = KvInput::Expire { key: key.into() };
        let call = self
            .kv
            .expire(key, LONG_TTL_MS, api::ExpireCondition::default());
        self.recorded(input, call, |applied| KvOutput::Applied(*applied))
            .await
    }

    pub async fn persist(&self, key: &str) -> Option<bool> {
        let input = KvInput::Persist { key: key.into() };
        self.recorded(input, self.kv.persist(key), |applied| {
            KvOutput::Applied(*applied)
        })
        .await
    }

    /// Whether the key is present, read by its TTL.
    pub async fn ttl(&self, key: &str) -> Option<bool> {
        let input = KvInput::Ttl { key: key.into() };
        let call = async {
            self.kv
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

/// A [`RecordingKv`] on a client node of its own: its calls are made from
/// that node, so the network's faults apply to them. Cheap to clone.
pub struct RecordingClient<C> {
    net: Network,
    node: NodeId,
    kv: Arc<RecordingKv<C>>,
}

impl<C> Clone for RecordingClient<C> {
    fn clone(&self) -> RecordingClient<C> {
        RecordingClient {
            net: self.net.clone(),
            node: self.node,
            kv: Arc::clone(&self.kv),
        }
    }
}

impl<C: KvClient + 'static> RecordingClient<C> {
    /// `kv` on the client node `node` of `net`.
    pub fn new(net: &Network, node: NodeId, kv: RecordingKv<C>) -> RecordingClient<C> {
        RecordingClient {
            net: net.clone(),
            node,
            kv: Arc::new(kv),
        }
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    pub fn net(&self) -> &Network {
        &self.net
    }

    /// Runs `work` with this client's recording client, as a task of the
    /// client node.
    pub fn spawn<F, Fut, T>(&self, work: F) -> madsim::task::JoinHandle<T>
    where
        F: FnOnce(Arc<RecordingKv<C>>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.net.spawn(self.node, work(Arc::clone(&self.kv)))
    }

    /// Runs `work` on the client node and waits for it.
    pub async fn run<F, Fut, T>(&self, work: F) -> T
    where
        F: FnOnce(Arc<RecordingKv<C>>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn(work)
            .await
            .expect("client nodes are never killed, so their tasks finish")
    }

    pub async fn put(&self, key: &str, value: &str) -> Option<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.run(|kv| async move { kv.put(&key, &value).await })
            .await
    }

    pub async fn append(&self, key: &str, value: &str) -> Option<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.run(|kv| async move { kv.append(&key, &value).await.map(|_| ()) })
            .await
    }

    pub async fn get(&self, key: &str) -> Option<Option<String>> {
        let key = key.to_string();
        self.run(|kv| async move { kv.get(&key).await }).await
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
}

/// Checks `recorder`'s history against `model` within `budget`: the
/// checker's summary if linearizable; otherwise what went wrong (the
/// violation explained, or an unknown verdict, which is a failure too).
pub fn check_history<M, B>(
    recorder: &Recorder<KvInput, KvOutput>,
    model: &M,
    budget: B,
) -> Result<String, String>
where
    M: Model<Input = KvInput, Output = KvOutput>,
    B: Budget,
{
    let history = recorder
        .history()
        .map_err(|error| format!("the history is malformed: {error}"))?;
    check_operations(&history, model, budget)
}

/// [`check_history`] of a history already taken (for example a part of
/// one).
pub fn check_operations<M, B>(
    history: &History<KvInput, KvOutput>,
    model: &M,
    budget: B,
) -> Result<String, String>
where
    M: Model<Input = KvInput, Output = KvOutput>,
    B: Budget,
{
    let operations = history.operations().len();
    let result = check(model, history, budget);
    match result.verdict {
        Verdict::Linearizable => Ok(format!("{operations} operations: {}", result.summary())),
        Verdict::NotLinearizable => Err(format!(
            "history of {operations} operations is not linearizable:\n{}",
            result.explain(model, history)
        )),
        Verdict::Unknown => Err(format!(
            "linearizability of {operations} operations unknown (a failure, not a pass): \
             the checker ran out of budget: {}",
            result.summary()
        )),
    }
}
