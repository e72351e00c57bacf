//! # cache: the data plane (overview written last)

pub mod hash;
pub mod near;
pub mod policy;
pub mod store;
pub mod table;
pub mod workload;

pub use policy::PolicyKind;
pub use store::{Store, StoreConfig, StoreError};
