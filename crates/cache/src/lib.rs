//! # cache: the data plane (overview written last)

pub mod hash;
pub mod hotkeys;
pub mod near;
pub mod policy;
pub mod ring;
pub mod store;
pub mod table;
pub mod workload;

pub use policy::PolicyKind;
pub use store::{Store, StoreConfig, StoreError};
