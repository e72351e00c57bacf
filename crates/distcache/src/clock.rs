//! The current time, through the runtime seam (see `distcache_client::clock`).

pub use distcache_client::clock::now;
