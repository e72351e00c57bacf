//! The built-in models: a key/value map partitioned by key, and a single register.

pub mod kv;
pub mod register;

pub use kv::{KvInput, KvModel, KvOutput, SetIf};
pub use register::{RegisterInput, RegisterModel, RegisterOutput};
