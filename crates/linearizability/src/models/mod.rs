//! The built-in models: a key/value map partitioned by key (and the same
//! map for a store that may evict keys), Redis's string commands over the
//! keys of one hash tag (multi-key commands included), and a single
//! register.

pub mod evicting_kv;
pub mod kv;
pub mod register;
pub mod strings;

pub use evicting_kv::EvictingKvModel;
pub use kv::{KvInput, KvModel, KvOutput, SetIf};
pub use register::{RegisterInput, RegisterModel, RegisterOutput};
pub use strings::{StringsInput, StringsModel, StringsOutput};
