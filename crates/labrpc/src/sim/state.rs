//! The shared state behind [`super::Network`] and the per-call fault logic.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use madsim::rand::{Rng, thread_rng};
use madsim::task::NodeId;

use crate::client::Client;
use crate::error::RpcError;

/// Probability (per mille) that an unreliable network loses a request, and
/// separately a reply: labrpc's 10%.
pub(crate) const UNRELIABLE_LOSS_PER_MILLE: u32 = 100;
/// Extra delay of every call on an unreliable network: labrpc's 0-27 ms.
pub(crate) const UNRELIABLE_DELAY_MS_MAX: u64 = 27;
/// How long a call to a disconnected peer takes to fail.
pub(crate) const UNREACHABLE_DELAY_MS_MAX: u64 = 100;
/// The same with long delays on: labrpc's 0-7 s.
pub(crate) const UNREACHABLE_LONG_DELAY_MS_MAX: u64 = 7_000;
/// Long reordering: a reply is held back with probability 600/900 = 2/3 ...
pub(crate) const REORDER_PER_900: u32 = 600;
/// ... for 200 ms plus up to 2000 ms.
pub(crate) const REORDER_DELAY_MS_MIN: u64 = 200;
pub(crate) const REORDER_DELAY_MS_SPREAD: u64 = 2_000;

#[derive(Debug, Clone)]
pub(crate) struct NodeInfo {
    pub(crate) name: String,
    pub(crate) ip: IpAddr,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) total_rpc_count: u64,
    pub(crate) total_bytes: u64,
    pub(crate) delivered_by_node: BTreeMap<NodeId, u64>,
}

/// Everything the network knows. Guarded by one mutex; no await while held.
#[derive(Debug)]
pub(crate) struct NetworkState {
    pub(crate) nodes: BTreeMap<NodeId, NodeInfo>,
    pub(crate) node_by_ip: BTreeMap<IpAddr, NodeId>,
    pub(crate) disconnected: BTreeSet<NodeId>,
    /// Directed pairs `(from, to)` whose traffic is blocked.
    pub(crate) cut_links: BTreeSet<(NodeId, NodeId)>,
    pub(crate) reliable: bool,
    pub(crate) long_reordering: bool,
    pub(crate) long_delays: bool,
    pub(crate) stats: Stats,
}

impl NetworkState {
    pub(crate) fn new() -> Self {
        Self {
            nodes: BTreeMap::new(),
            node_by_ip: BTreeMap::new(),
            disconnected: BTreeSet::new(),
            cut_links: BTreeSet::new(),
            reliable: true,
            long_reordering: false,
            long_delays: false,
            stats: Stats::default(),
        }
    }

    /// Whether a message can travel from `from` to the node owning `to_ip`
    /// right now: both are nodes of this network, neither is disconnected
    /// and the link between them is not cut.
    fn link_up(&self, from: NodeId, to_ip: IpAddr) -> bool {
        let Some(&to) = self.node_by_ip.get(&to_ip) else {
            return false;
        };
        if !self.nodes.contains_key(&from) {
            return false;
        }
        !self.disconnected.contains(&from)
            && !self.disconnected.contains(&to)
            && !self.cut_links.contains(&(from, to))
    }
}

thread_local! {
    /// The network of the simulation running on this thread, if any.
    static CURRENT: RefCell<Weak<Mutex<NetworkState>>> = const { RefCell::new(Weak::new()) };
}

pub(crate) fn install(state: &Arc<Mutex<NetworkState>>) {
    CURRENT.with(|current| *current.borrow_mut() = Arc::downgrade(state));
}

fn current() -> Option<Arc<Mutex<NetworkState>>> {
    CURRENT.with(|current| current.borrow().upgrade())
}

fn lock(state: &Mutex<NetworkState>) -> std::sync::MutexGuard<'_, NetworkState> {
    // A panic while holding this lock already fails the simulation; the
    // state itself stays consistent (every update is a single assignment).
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts a request reaching a handler on the node that owns `server`.
pub(crate) fn record_delivery(server: SocketAddr) {
    let Some(state) = current() else { return };
    let mut state = lock(&state);
    if let Some(&node) = state.node_by_ip.get(&server.ip()) {
        *state.stats.delivered_by_node.entry(node).or_insert(0) += 1;
    }
}

fn unreachable(peer: SocketAddr, method: &'static str, reason: &str) -> RpcError {
    RpcError::Unreachable {
        peer,
        method,
        reason: reason.to_string(),
    }
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Carries one call through the simulated network: the faults decided here,
/// the simulated transport underneath.
pub(crate) async fn deliver(
    client: &Client,
    peer: SocketAddr,
    method: &'static str,
    payload: Vec<u8>,
) -> Result<Bytes, RpcError> {
    let Some(state) = current() else {
        // No network installed: a plain, reliable madsim network.
        return client.transmit(peer, method, payload, false).await;
    };
    let from = madsim::plugin::node();
    let (link_up, reliable, long_reordering, long_delays) = {
        let mut state = lock(&state);
        if !state.nodes.contains_key(&from) {
            // madsim's supervisor (the test's main task) has no address, so
            // replies could never reach it: say so instead of a vague error.
            return Err(unreachable(
                peer,
                method,
                "calls must be made from a node of the network (see Network::add_client_node)",
            ));
        }
        state.stats.total_rpc_count += 1;
        state.stats.total_bytes += payload.len() as u64;
        (
            state.link_up(from, peer.ip()),
            state.reliable,
            state.long_reordering,
            state.long_delays,
        )
    };

    if !link_up {
        let delay_ms_max = if long_delays {
            UNREACHABLE_LONG_DELAY_MS_MAX
        } else {
            UNREACHABLE_DELAY_MS_MAX
        };
        sleep_ms(thread_rng().gen_range(0..delay_ms_max)).await;
        return Err(unreachable(
            peer,
            method,
            "simulated network: peer disconnected",
        ));
    }
    if !reliable {
        sleep_ms(thread_rng().gen_range(0..=UNRELIABLE_DELAY_MS_MAX)).await;
        if thread_rng().gen_range(0..1000) < UNRELIABLE_LOSS_PER_MILLE {
            return Err(unreachable(peer, method, "simulated network: request lost"));
        }
    }

    let reply = client.transmit(peer, method, payload, false).await?;

    // The reply crosses the network back: it is lost if the link went down
    // meanwhile, or by chance on an unreliable network.
    if !lock(&state).link_up(from, peer.ip()) {
        return Err(unreachable(
            peer,
            method,
            "simulated network: reply lost, link went down",
        ));
    }
    if !reliable && thread_rng().gen_range(0..1000) < UNRELIABLE_LOSS_PER_MILLE {
        return Err(unreachable(peer, method, "simulated network: reply lost"));
    }
    if long_reordering && thread_rng().gen_range(0..900) < REORDER_PER_900 {
        // labrpc's shape: most reordered replies wait a little, a few a lot.
        let spread_ms = thread_rng().gen_range(0..=REORDER_DELAY_MS_SPREAD);
        sleep_ms(REORDER_DELAY_MS_MIN + thread_rng().gen_range(0..=spread_ms)).await;
    }
    lock(&state).stats.total_bytes += reply.len() as u64;
    Ok(reply)
}
