//! The built-in models: a key/value map partitioned by key (with an option
//! for a store that may evict keys), Redis's string commands over the
//! keys of one hash tag (multi-key commands included), Redis's hashes,
//! lists, sets and sorted sets over the keys of one hash tag (random
//! commands included), and a single register.

pub mod collections;
pub mod kv;
pub mod register;
pub mod strings;

pub use collections::{CollectionsInput, CollectionsModel, CollectionsOutput};
pub use kv::{KvInput, KvModel, KvOutput, SetIf};
pub use register::{RegisterInput, RegisterModel, RegisterOutput};
pub use strings::{StringsInput, StringsModel, StringsOutput};
