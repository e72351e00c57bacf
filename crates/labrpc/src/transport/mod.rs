//! The wire under labrpc: the one place where production and simulation differ.
//!
//! Both transports expose the same items: `bind`, `serve` and `Connection`.
//!
//! - `grpc` (production): tonic's gRPC over HTTP/2 and TCP, one service
//!   (`LabRpc.Call`) carrying `{method, payload}`; one multiplexed channel per
//!   peer, reconnecting after errors. Methods that opt in
//!   (`Rpc::STREAMED`: Raft's messages) share one long-lived stream per peer
//!   instead (`LabRpc.Stream`, `call_stream.rs`).
//! - `simulated` (madsim): one madsim connection per call, carrying the same
//!   `{method, payload}` bytes. We do not run madsim-tonic's simulated server
//!   here: it reads each connection's request inside its accept loop, so one
//!   slow or paused caller stalls every other caller of that server, which
//!   would distort the lab's timing limits and wedge servers under `pause`.
//!   Each connection gets its own task instead.

#[cfg(not(madsim))]
mod call_stream;
#[cfg(not(madsim))]
mod grpc;
#[cfg(not(madsim))]
pub(crate) use grpc::{Connection, bind, serve};

#[cfg(madsim)]
mod simulated;
#[cfg(madsim)]
pub(crate) use simulated::{Connection, bind, serve};
