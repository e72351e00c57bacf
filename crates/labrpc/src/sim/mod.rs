//! The simulated network's control panel (only under `--cfg madsim`).
//!
//! A test creates one [`Network`] at its start. It becomes the current
//! network of the simulation (a thread-local: madsim runs a whole simulation
//! on one thread), and every [`crate::Client`] call made inside the
//! simulation consults it to decide what happens to the request and the
//! reply. Nodes are madsim nodes with an IP; the network knows them by
//! [`NodeId`] and routes a call by the destination IP.
//!
//! What a fault means, with the semantics of 6.5840's labrpc:
//!
//! | control | effect on a call from A to B |
//! |---|---|
//! | `disconnect(A)` or `disconnect(B)` | fails after 0-100 ms (0-7 s with long delays) |
//! | `cut_link(A, B)` | the same, for this pair only (both directions) |
//! | unreliable | 0-27 ms extra delay; 10% of requests and 10% of replies lost |
//! | long reordering | with probability 2/3 the reply waits 200-2200 ms more |
//! | `kill(B)` | B's tasks stop; calls to it fail; its handlers never run again |
//! | `restart(B)` | kill, then B's init runs again; B's fsynced files survive |
//! | `pause(B)` | B's tasks are not polled until `resume(B)`; calls to it time out |
//!
//! A call whose link goes down while it is in flight loses its reply, as in
//! labrpc. Every failure is an [`crate::RpcError`] that the caller sees no
//! later than its deadline.
//!
//! What the statistics count:
//! - `total_rpc_count`: requests that entered the network (sent by a client),
//!   whether or not they were then lost;
//! - `rpc_count(node)`: requests delivered to a handler on that node;
//! - `total_bytes`: encoded request bytes of every request that entered the
//!   network plus encoded reply bytes of every reply delivered to its caller.

mod network;
mod state;
pub mod watch;

pub use network::Network;
pub(crate) use state::{deliver, record_delivery};

pub use madsim::task::NodeId;
