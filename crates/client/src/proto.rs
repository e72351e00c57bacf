//! The generated public API (`proto/distcache/v1/`, package `distcache.v1`):
//! message types, the `Cache` and `Admin` clients, and the server traits the
//! `distcache` node implements.

#![allow(clippy::all, clippy::pedantic, unreachable_pub, missing_docs)]

tonic::include_proto!("distcache.v1");
