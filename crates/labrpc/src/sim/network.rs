//! [`Network`]: what a test holds to create nodes, inject faults and read
//! statistics.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use madsim::runtime::Handle;
use madsim::task::NodeId;

use super::state::{self, NetworkState, NodeInfo};

/// The control panel of the simulated network. Cheap to clone; every clone
/// controls the same network. See the [module docs](super) for what each
/// fault means.
#[derive(Clone)]
pub struct Network {
    state: Arc<Mutex<NetworkState>>,
}

impl Default for Network {
    fn default() -> Network {
        Network::new()
    }
}

impl Network {
    /// Creates a reliable, fully connected network with no nodes and makes it
    /// the current network of this simulation. Create it in the test's main
    /// task, before any node.
    ///
    /// # Panics
    /// Outside a madsim runtime.
    pub fn new() -> Network {
        // Fail early and clearly outside a simulation.
        let _ = Handle::current();
        let state = Arc::new(Mutex::new(NetworkState::new()));
        state::install(&state);
        Network { state }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut NetworkState) -> T) -> T {
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// Creates a node named `name` with address `ip` whose `init` runs now
    /// and again on every [`Network::restart`]. `init` typically reopens the
    /// node's files and starts its servers; the node stays up after `init`
    /// returns, until it is killed.
    ///
    /// # Panics
    /// If `ip` is already taken.
    pub fn add_node<F>(
        &self,
        name: &str,
        ip: IpAddr,
        init: impl Fn() -> F + Send + Sync + 'static,
    ) -> NodeId
    where
        F: Future<Output = ()> + 'static,
    {
        let node = Handle::current()
            .create_node()
            .name(name)
            .ip(ip)
            .init(move || {
                let setup = init();
                async move {
                    setup.await;
                    // madsim ends a node whose init task returns; ours live
                    // on (serving from the tasks init spawned) until killed.
                    std::future::pending::<()>().await;
                }
            })
            .build()
            .id();
        self.with_state(|state| {
            assert!(
                state.node_by_ip.insert(ip, node).is_none(),
                "two nodes with address {ip}"
            );
            state.nodes.insert(
                node,
                NodeInfo {
                    name: name.to_string(),
                    ip,
                },
            );
        });
        node
    }

    /// Creates a node with nothing running on it, for clients: tasks are put
    /// there with [`Network::spawn`], so faults apply to their calls.
    pub fn add_client_node(&self, name: &str, ip: IpAddr) -> NodeId {
        self.add_node(name, ip, || async {})
    }

    /// Runs `future` as a task of `node` (it dies with the node).
    ///
    /// # Panics
    /// If `node` does not exist.
    pub fn spawn<F>(&self, node: NodeId, future: F) -> madsim::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Handle::current()
            .get_node(node)
            .unwrap_or_else(|| panic!("no node {node}"))
            .spawn(future)
    }

    /// The node's name and address, for reports.
    pub fn describe(&self, node: NodeId) -> String {
        self.with_state(|state| match state.nodes.get(&node) {
            Some(info) => format!("{} ({}, node {node})", info.name, info.ip),
            None => format!("node {node}"),
        })
    }

    /// The nodes created through this network, in creation order.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.with_state(|state| state.nodes.keys().copied().collect())
    }

    /// Reconnects `node` in both directions (links cut one by one stay cut).
    pub fn connect(&self, node: NodeId) {
        self.with_state(|state| state.disconnected.remove(&node));
    }

    /// Disconnects `node` in both directions: nothing reaches it, nothing
    /// leaves it.
    pub fn disconnect(&self, node: NodeId) {
        self.with_state(|state| state.disconnected.insert(node));
    }

    pub fn is_connected(&self, node: NodeId) -> bool {
        self.with_state(|state| !state.disconnected.contains(&node))
    }

    /// Cuts the link between `a` and `b`, both directions.
    pub fn cut_link(&self, a: NodeId, b: NodeId) {
        self.with_state(|state| {
            state.cut_links.insert((a, b));
            state.cut_links.insert((b, a));
        });
    }

    /// Cuts traffic from `from` to `to` only (replies to calls that `to`
    /// makes to `from` are lost too, since they travel that way).
    pub fn cut_link_one_way(&self, from: NodeId, to: NodeId) {
        self.with_state(|state| state.cut_links.insert((from, to)));
    }

    /// Heals the link between `a` and `b`, both directions.
    pub fn heal_link(&self, a: NodeId, b: NodeId) {
        self.with_state(|state| {
            state.cut_links.remove(&(a, b));
            state.cut_links.remove(&(b, a));
        });
    }

    /// Splits the listed nodes into groups that can talk only within
    /// themselves; replaces every earlier cut among them. Nodes not listed
    /// keep their links.
    pub fn partition(&self, groups: &[&[NodeId]]) {
        self.with_state(|state| {
            let listed: Vec<NodeId> = groups
                .iter()
                .flat_map(|group| group.iter().copied())
                .collect();
            state
                .cut_links
                .retain(|(from, to)| !(listed.contains(from) && listed.contains(to)));
            for (index, group) in groups.iter().enumerate() {
                for (other_index, other) in groups.iter().enumerate() {
                    if index == other_index {
                        continue;
                    }
                    for &from in group.iter() {
                        for &to in other.iter() {
                            state.cut_links.insert((from, to));
                        }
                    }
                }
            }
        });
    }

    /// Heals every cut link and reconnects every node.
    pub fn heal_all(&self) {
        self.with_state(|state| {
            state.cut_links.clear();
            state.disconnected.clear();
        });
    }

    /// Reliable (the default) or unreliable: 10% of requests and 10% of
    /// replies lost, 0-27 ms extra delay per call.
    pub fn set_reliable(&self, reliable: bool) {
        self.with_state(|state| state.reliable = reliable);
    }

    /// Long reordering: with probability 2/3 a reply waits 200-2200 ms more.
    pub fn set_long_reordering(&self, long_reordering: bool) {
        self.with_state(|state| state.long_reordering = long_reordering);
    }

    /// Long delays: a call to a disconnected peer fails after 0-7 s instead
    /// of 0-100 ms (always bounded by the call's deadline).
    pub fn set_long_delays(&self, long_delays: bool) {
        self.with_state(|state| state.long_delays = long_delays);
    }

    /// Stops every task of `node`. Its handlers never run again until a
    /// restart; calls to it fail.
    pub fn kill(&self, node: NodeId) {
        Handle::current().kill(node);
    }

    /// Kills `node` and runs its init again. Files it fsynced survive;
    /// unsynced writes are lost, as after a power failure.
    ///
    /// Async because the old incarnation must be gone first: madsim drops a
    /// killed node's tasks when it next polls them, and an old server task
    /// dropped after the new one bound would close the new one's socket.
    /// Waiting one millisecond lets the executor drain every woken task.
    pub async fn restart(&self, node: NodeId) {
        let handle = Handle::current();
        handle.kill(node);
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        handle.restart(node);
    }

    /// Freezes `node`: its tasks are not polled until [`Network::resume`].
    pub fn pause(&self, node: NodeId) {
        Handle::current().pause(node);
    }

    pub fn resume(&self, node: NodeId) {
        Handle::current().resume(node);
    }

    /// Requests that entered the network, lost or not.
    pub fn total_rpc_count(&self) -> u64 {
        self.with_state(|state| state.stats.total_rpc_count)
    }

    /// Requests delivered to a handler on `node`.
    pub fn rpc_count(&self, node: NodeId) -> u64 {
        self.with_state(|state| {
            state
                .stats
                .delivered_by_node
                .get(&node)
                .copied()
                .unwrap_or(0)
        })
    }

    /// Encoded bytes of requests sent plus replies delivered.
    pub fn total_bytes(&self) -> u64 {
        self.with_state(|state| state.stats.total_bytes)
    }
}
