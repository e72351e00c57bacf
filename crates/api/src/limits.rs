//! Size limits on what an operation carries, and the settings of a
//! key/value state machine.

use cache::StoreConfig;
use serde::{Deserialize, Serialize};

use crate::{Error, Op};

/// The default bound on the exactly-once table (clients remembered).
pub const DEFAULT_MAX_CLIENTS: u64 = 10_000;
/// The default log time after which a silent client is forgotten. It must
/// exceed a clerk's operation deadline (30 s by default).
pub const DEFAULT_CLIENT_IDLE_EXPIRY_MS: u64 = 10 * 60 * 1000;

/// Settings of a key/value state machine (kvraft's, or one shardkv group's
/// for each of its shards); identical on every replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineConfig {
    pub store: StoreConfig,
    pub max_key_bytes: u64,
    pub max_value_bytes: u64,
    /// Most elements one hash, set, list or sorted set may hold.
    #[serde(default = "default_max_collection_elements")]
    pub max_collection_elements: u64,
    /// Bound on the exactly-once table; past it the least recently active
    /// client is forgotten.
    pub max_clients: u64,
    /// A client silent for this long (log time) is forgotten.
    pub client_idle_expiry_ms: u64,
}

impl MachineConfig {
    /// The key and value bounds operations are checked against.
    pub fn limits(&self) -> Limits {
        Limits {
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
            max_collection_elements: self.max_collection_elements,
        }
    }
}

impl Default for MachineConfig {
    fn default() -> MachineConfig {
        let limits = Limits::default();
        MachineConfig {
            store: StoreConfig::new(64 << 20),
            max_key_bytes: limits.max_key_bytes,
            max_value_bytes: limits.max_value_bytes,
            max_collection_elements: limits.max_collection_elements,
            max_clients: DEFAULT_MAX_CLIENTS,
            client_idle_expiry_ms: DEFAULT_CLIENT_IDLE_EXPIRY_MS,
        }
    }
}

/// Largest key and value an operation may carry; identical on every
/// replica (they are part of the replicated machine's configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_key_bytes: u64,
    /// Also bounds an append's result, and the total bytes a collection
    /// operation carries.
    pub max_value_bytes: u64,
    /// Most elements one hash, set, list or sorted set may hold (and most
    /// answers a count argument may ask for).
    #[serde(default = "default_max_collection_elements")]
    pub max_collection_elements: u64,
}

/// The default [`Limits::max_collection_elements`].
pub const DEFAULT_MAX_COLLECTION_ELEMENTS: u64 = 1 << 20;

fn default_max_collection_elements() -> u64 {
    DEFAULT_MAX_COLLECTION_ELEMENTS
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
            max_collection_elements: DEFAULT_MAX_COLLECTION_ELEMENTS,
        }
    }
}

impl Limits {
    /// Refuses an operation whose keys or values are over the limits (a
    /// multi-key operation: each key and value alone, and at most
    /// [`Limits::max_collection_elements`] keys). Servers
    /// check before proposing (bad input costs no log entry) and
    /// [`crate::execute`] checks again at apply time.
    pub fn check(&self, op: &Op) -> Result<(), Error> {
        for key in op.keys() {
            let key_bytes = key.len() as u64;
            if key_bytes > self.max_key_bytes {
                return Err(Error::TooLarge {
                    what: "key".into(),
                    size_bytes: key_bytes,
                    limit_bytes: self.max_key_bytes,
                });
            }
        }
        if op.is_multi_key() {
            let key_count = op.keys().count() as u64;
            if key_count > self.max_collection_elements {
                return Err(Error::TooManyElements {
                    count: key_count,
                    limit: self.max_collection_elements,
                });
            }
        }
        let value_bytes = op.value_size_bytes() as u64;
        if value_bytes > self.max_value_bytes {
            return Err(Error::TooLarge {
                what: "value".into(),
                size_bytes: value_bytes,
                limit_bytes: self.max_value_bytes,
            });
        }
        Ok(())
    }
}
