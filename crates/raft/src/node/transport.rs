//! How the driver reaches its peers: the [`Transport`] seam.
//!
//! The event loop hands every outgoing request (a message whose body
//! `is_request()`) to a transport in its own task and steps the reply, if
//! one comes back, into the core. Two transports exist:
//!
//! - [`LabrpcTransport`]: production and simulation. Raft messages over
//!   labrpc, one method, `raft.Message`, whose reply is the core's answer
//!   (None if the node refused the message or is gone). This is what
//!   [`super::RaftNode::make`] uses.
//! - [`LocalNetwork`]: nodes in one process calling each other's
//!   [`super::RaftNode::handle_message`] directly: no encoding, no loss.
//!   For benchmarks of the driver (`benches/driver_throughput.rs`) and
//!   in-process tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::core::{Message, NodeId};

use super::RaftNode;

impl labrpc::Rpc for Message {
    const NAME: &'static str = "raft.Message";
    type Reply = Option<Message>;
    /// A leader sends each peer a message every round: they share one
    /// stream per peer (a frame each way per message) rather than a gRPC
    /// call each. The handler only steps the message into the event loop
    /// and waits for its answer, so it ends promptly.
    const STREAMED: bool = true;
}

/// The reply to one request: None if it was lost, refused or timed out.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Option<Message>> + Send + 'static>>;

/// Delivers requests to peers.
pub trait Transport: Send + Sync + 'static {
    /// Delivers `request` to node `request.to` and resolves to its reply.
    /// Must resolve within a bounded time (the driver allows a bounded
    /// number of calls in flight per peer and drops requests beyond it).
    fn call(&self, request: Message) -> ReplyFuture;
}

/// Where each node's labrpc server is, by node id. Cheap to clone (clones
/// share the book). It starts with the addresses a node is configured
/// with; a node that joins later is added with [`AddressBook::set`] (the
/// rsm does it on every replica when it applies the address entry that
/// precedes the node's membership change).
#[derive(Clone, Debug, Default)]
pub struct AddressBook {
    addrs: Arc<RwLock<BTreeMap<NodeId, SocketAddr>>>,
}

impl AddressBook {
    /// Most addresses a book holds: a configuration names at most
    /// [`crate::core::MAX_MEMBERS`] nodes, and the book may also remember
    /// nodes that left.
    pub const MAX_ADDRESSES: usize = 4 * crate::core::MAX_MEMBERS;

    /// Node `i` at `peer_addrs[i]`.
    pub fn from_list(peer_addrs: &[SocketAddr]) -> AddressBook {
        let book = AddressBook::default();
        for (id, addr) in peer_addrs.iter().enumerate() {
            book.set(id as NodeId, *addr);
        }
        book
    }

    pub fn get(&self, id: NodeId) -> Option<SocketAddr> {
        self.addrs
            .read()
            .expect("address book lock poisoned")
            .get(&id)
            .copied()
    }

    /// Records (or replaces) node `id`'s address. False, and nothing
    /// changed, if the book is full ([`AddressBook::MAX_ADDRESSES`]) and
    /// `id` is not in it.
    pub fn set(&self, id: NodeId, addr: SocketAddr) -> bool {
        let mut addrs = self.addrs.write().expect("address book lock poisoned");
        if addrs.len() >= Self::MAX_ADDRESSES && !addrs.contains_key(&id) {
            return false;
        }
        addrs.insert(id, addr);
        true
    }

    /// Every address, by id.
    pub fn all(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.addrs
            .read()
            .expect("address book lock poisoned")
            .clone()
    }
}

/// Requests as labrpc calls to the peers' addresses, with a deadline.
#[derive(Clone)]
pub struct LabrpcTransport {
    client: labrpc::Client,
    book: AddressBook,
    timeout: Duration,
}

impl LabrpcTransport {
    /// Calls node `i` at `peer_addrs[i]`; each call gives up after `timeout`.
    pub fn new(
        client: labrpc::Client,
        peer_addrs: Vec<SocketAddr>,
        timeout: Duration,
    ) -> LabrpcTransport {
        LabrpcTransport::with_book(client, AddressBook::from_list(&peer_addrs), timeout)
    }

    /// Calls each node at its address in `book` as the book says at the
    /// time of the call (a node without an address gets no request).
    pub fn with_book(
        client: labrpc::Client,
        book: AddressBook,
        timeout: Duration,
    ) -> LabrpcTransport {
        LabrpcTransport {
            client,
            book,
            timeout,
        }
    }
}

impl Transport for LabrpcTransport {
    fn call(&self, request: Message) -> ReplyFuture {
        let client = self.client.clone();
        let addr = self.book.get(request.to);
        let timeout = self.timeout;
        Box::pin(async move {
            let addr = addr?;
            client
                .call_with_timeout::<Message>(addr, &request, timeout)
                .await
                .ok()
                .flatten()
        })
    }
}

/// An in-process network: node `i`'s requests go straight to the
/// [`RaftNode`] registered as `i`. Cheap to clone (clones share the
/// registry). Requests to an unregistered node get no reply.
#[derive(Clone, Default)]
pub struct LocalNetwork {
    nodes: Arc<RwLock<Vec<Option<RaftNode>>>>,
}

impl LocalNetwork {
    pub fn new() -> LocalNetwork {
        LocalNetwork::default()
    }

    /// Makes `node` reachable as `id` (replacing any earlier one).
    pub fn register(&self, id: NodeId, node: RaftNode) {
        let mut nodes = self.nodes.write().expect("local network lock poisoned");
        let slot = id as usize;
        if nodes.len() <= slot {
            nodes.resize(slot + 1, None);
        }
        nodes[slot] = Some(node);
    }

    /// Makes `id` unreachable.
    pub fn unregister(&self, id: NodeId) {
        let mut nodes = self.nodes.write().expect("local network lock poisoned");
        if let Some(slot) = nodes.get_mut(id as usize) {
            *slot = None;
        }
    }
}

impl Transport for LocalNetwork {
    fn call(&self, request: Message) -> ReplyFuture {
        let node = self
            .nodes
            .read()
            .expect("local network lock poisoned")
            .get(request.to as usize)
            .cloned()
            .flatten();
        Box::pin(async move { node?.handle_message(request).await })
    }
}
