//! The load balancer: asks the controller to move a shard off a group
//! that stays busier than the others (issue 22; opt-in, `balance_load`).
//!
//! ```text
//!  every node: Forwarder::run ─► Metrics::record_key
//!     ─► ShardRequests[shard of the key] += 1  (requests entering here)
//!     exported as distcache_shard_requests_total{shard} and in
//!     Admin.NodeStatus (shard_requests)
//!
//!  each node with balance_load, every balance_interval_ms:
//!     its controller replica leads? no ─► forget everything, sleep
//!     yes ─► NodeStatus of every node ─► each node's totals
//!        LoadWatch::interval_loads: minus that node's totals last time
//!          ─► this interval's requests per shard, summed over the nodes
//!        LoadWatch::observe(latest configuration, loads):
//!          the controller's placement (shardctrler::load) with one move:
//!          which group would give a shard?
//!          the same group for balance_after_intervals intervals in a row
//!          ─► BalanceLoad{loads summed over those intervals, max_moves: 1}
//! ```
//!
//! **Where requests are counted.** Each request is counted once, by the
//! node it enters (its front end's forwarder), whichever group serves it.
//! The balancer sums the nodes' counts, so what it sees per shard is every
//! request the cluster received for that shard in the interval. (Counting
//! on the group leaders instead would need a hook in the data replica's
//! request path; the sum is the same.) Operations without a key (scans,
//! counts, flushes of a whole shard) and the node's own probes are not
//! counted.
//!
//! **Why it waits.** One busy interval moves nothing: the controller's
//! placement must name the same giving group for `after_intervals`
//! consecutive intervals, and the proposal carries the loads summed over
//! them, so a burst that fades is ignored. The controller decides with the
//! same placement and margin (it may still find nothing worth moving and
//! answer the latest number). After a proposal the count starts again, so
//! at most one shard moves per `after_intervals` intervals.
//!
//! **Bounds.** One task per node; each interval one NodeStatus per node of
//! the table (at most `MAX_NODES`, each bounded by the Admin service's
//! status timeout), one controller query and at most one change. Memory:
//! one total per shard for each node of the table, and one running sum.
//!
//! **Failures.** A node that does not answer contributes nothing this
//! interval and starts from its next answer (its previous totals are
//! dropped, so a gap is never counted twice); a node whose totals went down
//! (it restarted) likewise. A controller that cannot be reached costs the
//! interval. Only the node whose controller replica leads acts, so two
//! balancers never propose at once except briefly around a leader change,
//! and the controller's answer to each is exact (a BalanceLoad that finds
//! nothing worth moving changes nothing).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shardctrler::load::{HYSTERESIS_PERCENT, plan_load_moves};
use shardctrler::{Config, ControllerClient, Gid};
use tokio::task::JoinHandle;

use crate::node::NodeState;
use crate::service::AdminService;

/// How the balancer runs (from the node's configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceSettings {
    /// How often the loads are read.
    pub interval: Duration,
    /// Intervals in a row the same group must be the one to give before a
    /// move is proposed.
    pub after_intervals: u32,
}

/// The balancer's memory between intervals (no IO: the task feeds it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadWatch {
    shard_count: usize,
    after_intervals: u32,
    /// Each node's per-shard totals at the last poll it answered.
    last_totals: BTreeMap<u64, Vec<u64>>,
    /// The group the placement would take a shard from, how many
    /// intervals in a row, and the loads summed over them.
    streak: Option<Streak>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Streak {
    giver: Gid,
    intervals: u32,
    loads: Vec<u64>,
}

impl LoadWatch {
    /// # Panics
    /// If `after_intervals` is 0.
    pub fn new(shard_count: usize, after_intervals: u32) -> LoadWatch {
        assert!(after_intervals > 0, "a move needs at least one interval");
        LoadWatch {
            shard_count,
            after_intervals,
            last_totals: BTreeMap::new(),
            streak: None,
        }
    }

    /// Forgets every total and streak (this node stopped leading the
    /// controller: whoever leads next starts afresh).
    pub fn reset(&mut self) {
        self.last_totals.clear();
        self.streak = None;
    }

    /// This interval's requests per shard, summed over the nodes that
    /// answered both this poll and the one before, from each node's
    /// running totals (`(node id, totals)`; a node missing here starts
    /// again from its next answer). `None` when no node could be compared
    /// (the first poll). Totals of the wrong length are ignored.
    pub fn interval_loads(&mut self, totals: &[(u64, Vec<u64>)]) -> Option<Vec<u64>> {
        let mut loads = vec![0u64; self.shard_count];
        let mut compared = false;
        let mut seen = BTreeMap::new();
        for (node_id, current) in totals {
            if current.len() != self.shard_count {
                continue;
            }
            if let Some(previous) = self.last_totals.get(node_id) {
                // A total that went down: the node restarted and counts
                // from 0. Its requests since then are not comparable.
                let deltas: Option<Vec<u64>> = current
                    .iter()
                    .zip(previous)
                    .map(|(now, before)| now.checked_sub(*before))
                    .collect();
                if let Some(deltas) = deltas {
                    for (load, delta) in loads.iter_mut().zip(deltas) {
                        *load = load.saturating_add(delta);
                    }
                    compared = true;
                }
            }
            seen.insert(*node_id, current.clone());
        }
        self.last_totals = seen;
        compared.then_some(loads)
    }

    /// Takes one interval's loads under `config`; the loads to propose
    /// (summed over the streak) once the same group has been the one to
    /// give for `after_intervals` intervals in a row.
    pub fn observe(&mut self, config: &Config, loads: &[u64]) -> Option<Vec<u64>> {
        if loads.len() != config.shard_count() {
            self.streak = None;
            return None;
        }
        let gids = config.groups.keys().copied().collect();
        let moves = plan_load_moves(&config.shards, &gids, loads, 1, HYSTERESIS_PERCENT);
        let Some(giver) = moves.first().map(|step| step.from) else {
            self.streak = None;
            return None;
        };
        let streak = match self.streak.take() {
            Some(mut streak) if streak.giver == giver => {
                streak.intervals += 1;
                for (sum, load) in streak.loads.iter_mut().zip(loads) {
                    *sum = sum.saturating_add(*load);
                }
                streak
            }
            _ => Streak {
                giver,
                intervals: 1,
                loads: loads.to_vec(),
            },
        };
        if streak.intervals >= self.after_intervals {
            return Some(streak.loads);
        }
        self.streak = Some(streak);
        None
    }
}

/// Starts the balancer task of a node (see the module docs).
/// `authorization` is what its NodeStatus calls send (the default user's
/// password as a bearer token when one is set).
pub fn spawn(
    state: Arc<NodeState>,
    settings: BalanceSettings,
    authorization: Option<String>,
) -> JoinHandle<()> {
    tokio::spawn(run(state, settings, authorization))
}

async fn run(state: Arc<NodeState>, settings: BalanceSettings, authorization: Option<String>) {
    let clerk = state.forwarder.controller().clone();
    let shard_count = state.metrics.shard_count();
    let admin = AdminService::new(Arc::clone(&state));
    let authorization = authorization.and_then(|value| value.parse().ok());
    let mut watch = LoadWatch::new(shard_count, settings.after_intervals);
    tracing::info!(
        interval_ms = settings.interval.as_millis() as u64,
        after_intervals = settings.after_intervals,
        "load balancer started (acts while this node's controller replica leads)"
    );
    loop {
        tokio::time::sleep(settings.interval).await;
        let leads = state.raft_of(0).is_some_and(|raft| raft.status().is_leader);
        if !leads {
            watch.reset();
            continue;
        }
        let nodes: Vec<(u64, std::net::SocketAddr)> = state
            .topology
            .grpc
            .iter()
            .map(|(&node_id, &addr)| (node_id, addr))
            .collect();
        let statuses =
            futures::future::join_all(nodes.iter().map(|&(node_id, addr)| {
                admin.node_status_of(node_id, addr, authorization.as_ref())
            }))
            .await;
        let totals: Vec<(u64, Vec<u64>)> = statuses
            .into_iter()
            .filter(|status| status.reachable)
            .map(|status| (status.node_id, status.shard_requests))
            .collect();
        if totals.len() < nodes.len() {
            tracing::debug!(
                answered = totals.len(),
                nodes = nodes.len(),
                "load balancer: some nodes did not report their shard requests"
            );
        }
        let Some(loads) = watch.interval_loads(&totals) else {
            continue;
        };
        let config = match clerk.query(None).await {
            Ok(config) => config,
            Err(error) => {
                tracing::debug!("load balancer: query of the latest configuration: {error}");
                continue;
            }
        };
        let Some(window) = watch.observe(&config, &loads) else {
            continue;
        };
        match clerk.balance_load(window.clone(), 1).await {
            Ok(num) if num > config.num => tracing::info!(
                config_num = num,
                "load balancer: a shard moved off the busiest group"
            ),
            Ok(num) => tracing::info!(
                config_num = num,
                "load balancer: the controller found nothing worth moving"
            ),
            Err(error) => tracing::warn!("load balancer: BalanceLoad failed: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(shards: Vec<Gid>) -> Config {
        let mut config = Config::initial(shards.len());
        config.num = 4;
        for &gid in &shards {
            config.groups.insert(gid, Vec::new());
        }
        config.shards = shards;
        config
    }

    #[test]
    fn interval_loads_are_the_sum_of_each_nodes_deltas() {
        let mut watch = LoadWatch::new(3, 2);
        assert_eq!(
            watch.interval_loads(&[(1, vec![5, 0, 0]), (2, vec![1, 1, 1])]),
            None,
            "the first poll has nothing to compare with"
        );
        assert_eq!(
            watch.interval_loads(&[(1, vec![9, 0, 2]), (2, vec![2, 1, 1])]),
            Some(vec![5, 0, 2])
        );
        // Node 2 did not answer: it contributes nothing now and starts
        // again from its next answer.
        assert_eq!(
            watch.interval_loads(&[(1, vec![10, 0, 2])]),
            Some(vec![1, 0, 0])
        );
        assert_eq!(
            watch.interval_loads(&[(1, vec![10, 0, 2]), (2, vec![50, 50, 50])]),
            Some(vec![0, 0, 0])
        );
        // Node 1 restarted (its totals went down); wrong lengths are ignored.
        assert_eq!(
            watch.interval_loads(&[(1, vec![1, 0, 0]), (2, vec![51, 50, 50]), (3, vec![7])]),
            Some(vec![1, 0, 0])
        );
        assert_eq!(
            watch.interval_loads(&[(1, vec![3, 0, 0])]),
            Some(vec![2, 0, 0])
        );
    }

    #[test]
    fn a_move_is_proposed_only_after_the_same_giver_persists() {
        let config = config(vec![1, 1, 2, 2]);
        let hot = [100, 100, 1, 1];
        let mut watch = LoadWatch::new(4, 3);
        assert_eq!(watch.observe(&config, &hot), None);
        assert_eq!(watch.observe(&config, &hot), None);
        assert_eq!(
            watch.observe(&config, &hot),
            Some(vec![300, 300, 3, 3]),
            "the third interval in a row proposes the summed loads"
        );
        // After a proposal the count starts again.
        assert_eq!(watch.observe(&config, &hot), None);
    }

    #[test]
    fn a_quiet_or_even_interval_breaks_the_streak() {
        let config = config(vec![1, 1, 2, 2]);
        let hot_on_1 = [100, 100, 1, 1];
        let hot_on_2 = [1, 1, 100, 100];
        let even = [5, 5, 5, 5];
        let mut watch = LoadWatch::new(4, 2);
        assert_eq!(watch.observe(&config, &hot_on_1), None);
        assert_eq!(watch.observe(&config, &even), None);
        assert_eq!(watch.observe(&config, &hot_on_1), None);
        assert_eq!(watch.observe(&config, &hot_on_2), None, "another giver");
        assert_eq!(
            watch.observe(&config, &hot_on_2),
            Some(vec![2, 2, 200, 200])
        );
        // Equal loads never start a streak.
        let mut watch = LoadWatch::new(4, 1);
        assert_eq!(watch.observe(&config, &even), None);
        assert_eq!(watch.observe(&config, &[0; 4]), None);
    }

    #[test]
    fn reset_forgets_totals_and_streak() {
        let config = config(vec![1, 1, 2, 2]);
        let mut watch = LoadWatch::new(4, 2);
        watch.interval_loads(&[(1, vec![0; 4])]);
        assert_eq!(watch.observe(&config, &[100, 100, 1, 1]), None);
        watch.reset();
        assert_eq!(watch.interval_loads(&[(1, vec![9; 4])]), None);
        assert_eq!(watch.observe(&config, &[100, 100, 1, 1]), None);
    }
}
