//! The workload: concurrent clients over gRPC (`distcache-client`) and RESP
//! (a minimal RESP2 client of the harness's own), each recording every
//! operation it sends.
//!
//! Keys: registers `r0..r3` (get, set, compare-and-set, delete) and append
//! keys `a0..a2` (append a unique token, get). The append keys change name
//! every [`APPEND_WINDOW`] (`a1.w4`) so that values stay short enough for
//! the checker. Every value written is unique (`c3.17`), so a read names
//! the write it saw.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use distcache_client::{Client, ClientConfig, ClientError, ReadFrom};
use linearizability::{KvInput, KvOutput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::resp_client::{RespClient, RespError, RespReply};

/// How long an append key keeps one name.
pub const APPEND_WINDOW: Duration = Duration::from_secs(10);
/// Register keys.
pub const REGISTERS: usize = 4;
/// Append keys per window.
pub const APPEND_KEYS: usize = 3;
/// Counter keys (`c0`, `c1`): increments by small deltas, and reads.
pub const COUNTERS: usize = 2;
/// Most operations one run records (a bound on the history's memory).
pub const OPERATIONS_MAX: usize = 400_000;
/// The separator after each appended token.
pub const TOKEN_END: char = ';';

/// Which front end an operation went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Front {
    Grpc,
    Resp,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The answer.
    Ok(KvOutput),
    /// A definite failure: nothing changed (a read that failed, or a
    /// request refused before it was sent).
    Failed(String),
    /// No answer (timeout, lost connection, an error that may follow a
    /// write that applied): the operation may or may not have taken effect.
    Unknown(String),
}

/// One recorded operation. Times are microseconds since the run started.
#[derive(Clone, Debug)]
pub struct OpRecord {
    pub client: u64,
    pub front: Front,
    pub input: KvInput,
    pub call_us: u64,
    pub end_us: u64,
    pub ending: Ending,
}

/// The shared log of operations.
#[derive(Clone)]
pub struct Log {
    start: Instant,
    records: Arc<Mutex<Vec<OpRecord>>>,
}

impl Log {
    pub fn new(start: Instant) -> Log {
        Log {
            start,
            records: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Records `record`; false when the log is full (the client stops).
    pub fn push(&self, record: OpRecord) -> bool {
        let mut records = self.records.lock().expect("operation log lock");
        if records.len() >= OPERATIONS_MAX {
            return false;
        }
        records.push(record);
        true
    }

    pub fn records(&self) -> Vec<OpRecord> {
        self.records.lock().expect("operation log lock").clone()
    }
}

/// What a client needs to run.
#[derive(Clone)]
pub struct ClientSetup {
    pub id: u64,
    pub seed: u64,
    pub front: Front,
    pub grpc_seeds: Vec<String>,
    pub resp_addrs: Vec<String>,
    pub op_timeout: Duration,
    /// Reads any replica of the key's group may answer: the gRPC client's
    /// `read_from = AnyReplica`, `READONLY` on every RESP connection.
    pub replica_reads: bool,
}

/// The append key `index` at `elapsed` since the run started.
pub fn append_key(index: usize, elapsed: Duration) -> String {
    let window = elapsed.as_secs() / APPEND_WINDOW.as_secs();
    format!("a{index}.w{window}")
}

/// Runs one client until `stop` turns true (its last operation finishes or
/// times out first).
pub async fn run_client(setup: ClientSetup, log: Log, mut stop: watch::Receiver<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(setup.seed ^ setup.id.wrapping_mul(0x9e37_79b9));
    let mut driver = match setup.front {
        Front::Grpc => {
            let seeds: Vec<&str> = setup.grpc_seeds.iter().map(String::as_str).collect();
            let config = ClientConfig {
                rpc_timeout: Duration::from_millis(1000).min(setup.op_timeout),
                operation_deadline: setup.op_timeout,
                read_from: if setup.replica_reads {
                    ReadFrom::AnyReplica
                } else {
                    ReadFrom::Leader
                },
                ..ClientConfig::default()
            };
            match Client::new(&seeds, config) {
                Ok(client) => Driver::Grpc(client),
                Err(error) => {
                    eprintln!("client {}: cannot build a gRPC client: {error}", setup.id);
                    return;
                }
            }
        }
        Front::Resp => Driver::Resp {
            addrs: setup.resp_addrs.clone(),
            connection: None,
            next: rng.gen_range(0..setup.resp_addrs.len().max(1)),
            readonly: setup.replica_reads,
        },
    };
    let mut sequence = 0u64;
    let mut last_seen: Vec<Option<String>> = vec![None; REGISTERS];
    while !*stop.borrow() {
        sequence += 1;
        let value = format!("c{}.{sequence}", setup.id);
        let input = choose(&mut rng, setup.front, &value, &last_seen, log.start());
        let call_us = log.now_us();
        let ending = match tokio::time::timeout(
            setup.op_timeout + Duration::from_millis(200),
            driver.run(&input, setup.op_timeout),
        )
        .await
        {
            Ok(ending) => ending,
            Err(_) => {
                driver.forget_connection();
                Ending::Unknown(format!("no answer within {:?}", setup.op_timeout))
            }
        };
        let ending = match (&input, ending) {
            // A read that did not answer changed nothing.
            (KvInput::Get { .. }, Ending::Unknown(why)) => Ending::Failed(why),
            (_, ending) => ending,
        };
        if let (KvInput::Get { key }, Ending::Ok(KvOutput::Value(value))) = (&input, &ending)
            && let Some(index) = register_index(key)
        {
            last_seen[index].clone_from(value);
        }
        if let (KvInput::Cas { key, value, .. }, Ending::Ok(KvOutput::Cas(true))) =
            (&input, &ending)
            && let Some(index) = register_index(key)
        {
            last_seen[index] = Some(value.clone());
        }
        let record = OpRecord {
            client: setup.id,
            front: setup.front,
            input,
            call_us,
            end_us: log.now_us(),
            ending,
        };
        if !log.push(record) {
            return;
        }
        let pause = Duration::from_millis(rng.gen_range(5..25));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}

fn register_index(key: &str) -> Option<usize> {
    key.strip_prefix('r')?
        .parse()
        .ok()
        .filter(|&i| i < REGISTERS)
}

/// The next operation: 40% on registers, 20% on counters, 40% on append
/// keys.
fn choose(
    rng: &mut ChaCha8Rng,
    front: Front,
    value: &str,
    last_seen: &[Option<String>],
    start: Instant,
) -> KvInput {
    let roll = rng.gen_range(0..10);
    if (4..6).contains(&roll) {
        let key = format!("c{}", rng.gen_range(0..COUNTERS));
        return if rng.gen_bool(0.7) {
            KvInput::Incr {
                key,
                delta: rng.gen_range(1..=5),
            }
        } else {
            KvInput::Get { key }
        };
    }
    if roll < 4 {
        let index = rng.gen_range(0..REGISTERS);
        let key = format!("r{index}");
        let roll = rng.gen_range(0..100);
        match (front, roll) {
            (_, 0..40) => KvInput::Get { key },
            (_, 40..70) | (Front::Resp, 70..95) => KvInput::Put {
                key,
                value: value.to_string(),
            },
            (Front::Grpc, 70..95) => KvInput::Cas {
                key,
                expected: last_seen[index].clone(),
                value: value.to_string(),
            },
            _ => KvInput::Delete { key },
        }
    } else {
        let key = append_key(rng.gen_range(0..APPEND_KEYS), start.elapsed());
        if rng.gen_bool(0.6) {
            KvInput::Append {
                key,
                value: format!("{value}{TOKEN_END}"),
            }
        } else {
            KvInput::Get { key }
        }
    }
}

enum Driver {
    Grpc(Client),
    Resp {
        addrs: Vec<String>,
        connection: Option<RespClient>,
        next: usize,
        /// Send `READONLY` on each new connection.
        readonly: bool,
    },
}

impl Driver {
    fn forget_connection(&mut self) {
        if let Driver::Resp { connection, .. } = self {
            *connection = None;
        }
    }

    async fn run(&mut self, input: &KvInput, timeout: Duration) -> Ending {
        match self {
            Driver::Grpc(client) => run_grpc(client, input).await,
            Driver::Resp {
                addrs,
                connection,
                next,
                readonly,
            } => {
                if connection.is_none() {
                    if addrs.is_empty() {
                        return Ending::Failed("no RESP address".into());
                    }
                    let addr = &addrs[*next % addrs.len()];
                    *next += 1;
                    match RespClient::connect(addr, timeout).await {
                        Ok(mut client) => {
                            if *readonly {
                                // Bounded like an operation; a refusal here
                                // is a failed operation (nothing recorded).
                                let answer =
                                    tokio::time::timeout(timeout, client.call(&[b"READONLY"]))
                                        .await;
                                if !matches!(answer, Ok(Ok(RespReply::Simple(ref ok))) if ok == "OK")
                                {
                                    return Ending::Failed(format!(
                                        "READONLY on {addr}: {answer:?}"
                                    ));
                                }
                            }
                            *connection = Some(client);
                        }
                        Err(error) => {
                            return Ending::Failed(format!("connect to {addr}: {error}"));
                        }
                    }
                }
                let client = connection.as_mut().expect("connected above");
                let ending = run_resp(client, input).await;
                if !matches!(ending, Ending::Ok(_)) {
                    // A fresh connection (to the next node) after any trouble.
                    *connection = None;
                }
                ending
            }
        }
    }
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

async fn run_grpc(client: &Client, input: &KvInput) -> Ending {
    let result = match input {
        KvInput::Get { key } => client
            .get(key.as_bytes())
            .await
            .map(|value| KvOutput::Value(text(value))),
        KvInput::Put { key, value } => client
            .set(key.as_bytes(), value.as_bytes())
            .await
            .map(|()| KvOutput::Done),
        KvInput::Append { key, value } => client
            .append(key.as_bytes(), value.as_bytes())
            .await
            .map(|_length| KvOutput::Done),
        KvInput::Delete { key } => client.delete(key.as_bytes()).await.map(KvOutput::Deleted),
        KvInput::Incr { key, delta } => client
            .increment(key.as_bytes(), *delta)
            .await
            .map(KvOutput::Integer),
        KvInput::Cas {
            key,
            expected,
            value,
        } => client
            .compare_and_set(
                key.as_bytes(),
                expected.as_deref().map(str::as_bytes),
                value.as_bytes(),
            )
            .await
            .map(KvOutput::Cas),
        other => return Ending::Failed(format!("the workload does not issue {other:?}")),
    };
    match result {
        Ok(output) => Ending::Ok(output),
        Err(
            error @ (ClientError::InvalidArgument(_)
            | ClientError::Unimplemented(_)
            | ClientError::BadAddress { .. }
            | ClientError::NoSeeds),
        ) => Ending::Failed(error.to_string()),
        // A timeout or a server error may follow a write that applied.
        Err(error) => Ending::Unknown(error.to_string()),
    }
}

async fn run_resp(client: &mut RespClient, input: &KvInput) -> Ending {
    let delta;
    let command: Vec<&[u8]> = match input {
        KvInput::Get { key } => vec![b"GET", key.as_bytes()],
        KvInput::Incr { key, delta: by } => {
            delta = by.to_string();
            vec![b"INCRBY", key.as_bytes(), delta.as_bytes()]
        }
        KvInput::Put { key, value } => vec![b"SET", key.as_bytes(), value.as_bytes()],
        KvInput::Append { key, value } => vec![b"APPEND", key.as_bytes(), value.as_bytes()],
        KvInput::Delete { key } => vec![b"DEL", key.as_bytes()],
        KvInput::Cas { .. } => return Ending::Failed("RESP has no compare-and-set".into()),
        other => return Ending::Failed(format!("the workload does not issue {other:?}")),
    };
    let reply = match client.call(&command).await {
        Ok(reply) => reply,
        Err(RespError::NotSent(why)) => return Ending::Failed(why),
        Err(error) => return Ending::Unknown(error.to_string()),
    };
    match (input, reply) {
        (KvInput::Get { .. }, RespReply::Bulk(value)) => Ending::Ok(KvOutput::Value(text(value))),
        (KvInput::Put { .. }, RespReply::Simple(ok)) if ok == "OK" => Ending::Ok(KvOutput::Done),
        (KvInput::Append { .. }, RespReply::Integer(_)) => Ending::Ok(KvOutput::Done),
        (KvInput::Incr { .. }, RespReply::Integer(value)) => Ending::Ok(KvOutput::Integer(value)),
        (KvInput::Delete { .. }, RespReply::Integer(count)) => {
            Ending::Ok(KvOutput::Deleted(count > 0))
        }
        (KvInput::Get { .. }, RespReply::Error(message)) => Ending::Failed(message),
        (_, RespReply::Error(message)) => Ending::Unknown(message),
        (_, other) => Ending::Unknown(format!("unexpected reply {other:?}")),
    }
}
