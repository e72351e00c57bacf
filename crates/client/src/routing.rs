//! [`Router`]: which node a call goes to, and how the shard map is re-read
//! without waiting on a node that does not answer.
//!
//! ```text
//!  call fails ─► mark the map stale; a node that gave no answer is suspect
//!  next attempt ─► node_for(key): the owner's leader, else the other nodes
//!                  and seeds, suspects only when nothing else is left
//!  stale map ─► start_refresh (one in flight per client, in the background;
//!               callers go on with the old map)
//!                 ask candidate 1 ─┐ first good answer wins
//!       +REFRESH_STAGGER: ask 2 ───┤ (a failure starts the next at once;
//!       +REFRESH_STAGGER: ask 3 ───┘  at most REFRESH_FAN_OUT at a time)
//! ```
//!
//! A wrong or old map costs a forwarding hop inside the cluster, never a
//! wrong answer (every node answers every key), so nothing here waits for
//! a refresh unless no map was ever read.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use labrpc::runtime::watch;
use tokio::time::Instant;

use crate::error::ClientError;

/// How long a refresh waits for a candidate's answer before also asking
/// the next one. Well above a round trip inside a data center (so a
/// healthy first seed is normally the only one asked) and well below the
/// 2 s default RPC timeout a dead seed used to cost.
pub(crate) const REFRESH_STAGGER: Duration = Duration::from_millis(150);
/// Most `Admin.Status` calls one refresh has out at once: one slow node
/// and one dead one still leave a third to answer, and a cluster of any
/// size gets at most this many extra calls per refresh.
pub(crate) const REFRESH_FAN_OUT: usize = 3;
/// How long a node that gave no answer (a timeout, a refused or broken
/// connection) is tried only when no other node is left. Longer than a
/// group needs to elect a new leader (about a second), so calls do not go
/// back to a paused leader before the map can name its successor; short
/// enough that a node that came back is used again within seconds. When
/// it ends, one call may pay one RPC timeout to learn the node is still
/// away, and makes it suspect again.
pub(crate) const SUSPECT_FOR: Duration = Duration::from_secs(3);

/// The shard map as last read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Routing {
    pub(crate) config_num: u64,
    pub(crate) shard_owners: Vec<u64>,
    /// gid -> gRPC URL of the node hosting its leader.
    pub(crate) leaders: BTreeMap<u64, String>,
    /// Every reachable node's gRPC URL (fallbacks).
    pub(crate) nodes: Vec<String>,
    /// The nodes the map listed as unreachable (the answering node's
    /// status call to them timed out, as under load): tried after every
    /// other node, and asked by refreshes, so that a client whose seeds
    /// are gone can still find the cluster.
    pub(crate) unreachable: Vec<String>,
    /// gid -> gRPC URLs of the reachable nodes hosting one of its replicas
    /// (where reads any replica may answer go).
    pub(crate) members: BTreeMap<u64, Vec<String>>,
    pub(crate) read_at: Option<Instant>,
}

impl Routing {
    /// The group serving `key`'s shard, once a map has been read.
    fn owner(&self, key: &[u8]) -> Option<u64> {
        if self.shard_owners.is_empty() {
            return None;
        }
        Some(self.shard_owners[shardkv::key_to_shard(key, self.shard_owners.len())])
    }
}

/// The client's one routing refresh, as the callers waiting on it see it.
#[derive(Clone, Debug)]
pub(crate) struct RefreshState {
    /// Whether a refresh is running (at most one per client).
    in_flight: bool,
    /// Refreshes finished since the client was built.
    finished: u64,
    /// How the last finished refresh ended.
    last_outcome: Result<(), ClientError>,
}

/// The routing table, the nodes suspected dead, and the one refresh.
pub(crate) struct Router {
    seeds: Vec<String>,
    routing: Mutex<Routing>,
    /// URL -> until when it is suspect. Holds only URLs the client called
    /// (seeds and the nodes the cluster listed), and expired entries are
    /// dropped on every insert.
    suspects: Mutex<BTreeMap<String, Instant>>,
    refresh: watch::Sender<RefreshState>,
}

impl Router {
    /// # Panics
    ///
    /// If `seeds` is empty (the client refuses that before).
    pub(crate) fn new(seeds: Vec<String>) -> Router {
        assert!(!seeds.is_empty(), "a router needs at least one seed");
        let (refresh, _) = watch::channel(RefreshState {
            in_flight: false,
            finished: 0,
            last_outcome: Ok(()),
        });
        Router {
            seeds,
            routing: Mutex::new(Routing::default()),
            suspects: Mutex::new(BTreeMap::new()),
            refresh,
        }
    }

    pub(crate) fn seeds(&self) -> &[String] {
        &self.seeds
    }

    pub(crate) fn routing(&self) -> std::sync::MutexGuard<'_, Routing> {
        self.routing.lock().expect("routing lock")
    }

    /// Whether a map was ever read (the nodes and leaders are known).
    pub(crate) fn has_routing(&self) -> bool {
        let routing = self.routing();
        routing.config_num > 0 || !routing.nodes.is_empty()
    }

    pub(crate) fn is_stale(&self, max_age: Duration) -> bool {
        self.routing()
            .read_at
            .is_none_or(|read_at| read_at.elapsed() >= max_age)
    }

    pub(crate) fn mark_stale(&self) {
        self.routing().read_at = None;
    }

    pub(crate) fn install(&self, routing: Routing) {
        *self.routing() = routing;
    }

    /// `url` gave no answer: other nodes go first for [`SUSPECT_FOR`].
    pub(crate) fn suspect(&self, url: &str) {
        let now = labrpc::runtime::now();
        let mut suspects = self.suspects.lock().expect("suspects lock");
        suspects.retain(|_, until| *until > now);
        suspects.insert(url.to_string(), now + SUSPECT_FOR);
    }

    /// `url` answered.
    pub(crate) fn clear_suspect(&self, url: &str) {
        self.suspects.lock().expect("suspects lock").remove(url);
    }

    fn is_suspect(&self, url: &str, now: Instant) -> bool {
        self.suspects
            .lock()
            .expect("suspects lock")
            .get(url)
            .is_some_and(|until| *until > now)
    }

    /// The node to try for `key` on attempt `attempt` (0-based) of one
    /// operation: the owner's leader first, then the other known nodes and
    /// the seeds in turn, skipping suspects while any other is left.
    pub(crate) fn node_for(&self, key: Option<&[u8]>, attempt: usize) -> String {
        self.choose(attempt, |routing| {
            key.and_then(|key| routing.owner(key))
                .and_then(|gid| routing.leaders.get(&gid))
                .into_iter()
                .cloned()
                .collect()
        })
    }

    /// The node to try for a read of `key` any replica may answer, on
    /// attempt `attempt`: the nodes hosting a replica of its group, in
    /// turn from `start` (so reads spread over the group), then the key's
    /// leader and the other nodes, skipping suspects while any other is
    /// left.
    pub(crate) fn replica_for(&self, key: &[u8], start: usize, attempt: usize) -> String {
        self.choose(attempt, |routing| {
            let Some(gid) = routing.owner(key) else {
                return Vec::new();
            };
            let mut first: Vec<String> = Vec::new();
            if let Some(members) = routing.members.get(&gid)
                && !members.is_empty()
            {
                let from = start % members.len();
                first.extend(members[from..].iter().cloned());
                first.extend(members[..from].iter().cloned());
            }
            first.extend(routing.leaders.get(&gid).cloned());
            first
        })
    }

    /// [`choose_node`] among `first(routing)`, then the reachable nodes,
    /// the seeds and the nodes the map listed as unreachable.
    fn choose(&self, attempt: usize, first: impl FnOnce(&Routing) -> Vec<String>) -> String {
        let now = labrpc::runtime::now();
        let candidates = {
            let routing = self.routing();
            let mut candidates = first(&routing);
            candidates.extend(routing.nodes.iter().cloned());
            candidates.extend(self.seeds.iter().cloned());
            candidates.extend(routing.unreachable.iter().cloned());
            candidates
        };
        choose_node(&candidates, attempt, |url| self.is_suspect(url, now))
    }

    /// Whom a refresh asks, in order: the seeds (the nodes the user named,
    /// usually the nearest), then the other known nodes; suspects last.
    pub(crate) fn refresh_candidates(&self) -> Vec<String> {
        let now = labrpc::runtime::now();
        let mut candidates = self.seeds.clone();
        let routing = self.routing();
        for node in routing.nodes.iter().chain(&routing.unreachable) {
            if !candidates.contains(node) {
                candidates.push(node.clone());
            }
        }
        drop(routing);
        // A stable sort: the order within each part stays.
        candidates.sort_by_key(|url| self.is_suspect(url, now));
        candidates
    }

    /// Marks a refresh as running; whether this call did (false: one was
    /// already running, and the caller shares it).
    pub(crate) fn begin_refresh(&self) -> bool {
        self.refresh.send_if_modified(|state| {
            let began = !state.in_flight;
            state.in_flight = true;
            began
        })
    }

    /// Ends the refresh [`Router::begin_refresh`] began, waking its waiters.
    ///
    /// # Panics
    ///
    /// If no refresh was running.
    pub(crate) fn end_refresh(&self, outcome: Result<(), ClientError>) {
        self.refresh.send_if_modified(|state| {
            assert!(
                state.in_flight,
                "a refresh ended that never began (refresh {})",
                state.finished + 1
            );
            state.in_flight = false;
            state.finished += 1;
            state.last_outcome = outcome;
            true
        });
    }

    /// Something that waits for the end of the refresh running now (or of
    /// the next one, when none is): call before `begin_refresh`.
    pub(crate) fn refresh_waiter(&self) -> RefreshWaiter {
        let receiver = self.refresh.subscribe();
        let target = receiver.borrow().finished + 1;
        RefreshWaiter { receiver, target }
    }
}

/// Waits for one refresh's outcome.
pub(crate) struct RefreshWaiter {
    receiver: watch::Receiver<RefreshState>,
    /// The refresh (by its count) whose end this waits for.
    target: u64,
}

impl RefreshWaiter {
    pub(crate) async fn outcome(mut self) -> Result<(), ClientError> {
        loop {
            {
                let state = self.receiver.borrow_and_update();
                if state.finished >= self.target {
                    return state.last_outcome.clone();
                }
            }
            if self.receiver.changed().await.is_err() {
                // The router (and its client) is gone.
                return Err(ClientError::NoSeeds);
            }
        }
    }
}

/// `candidates[attempt]`, counting in turn among the distinct candidates
/// that are not suspect, or among all of them when every one is.
///
/// # Panics
///
/// If `candidates` is empty (the seeds are always among them).
pub(crate) fn choose_node(
    candidates: &[String],
    attempt: usize,
    is_suspect: impl Fn(&str) -> bool,
) -> String {
    let mut distinct: Vec<&String> = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        if !distinct.contains(&candidate) {
            distinct.push(candidate);
        }
    }
    assert!(!distinct.is_empty(), "no node to try (not even a seed)");
    let healthy: Vec<&String> = distinct
        .iter()
        .copied()
        .filter(|url| !is_suspect(url))
        .collect();
    let pool = if healthy.is_empty() {
        &distinct
    } else {
        &healthy
    };
    pool[attempt % pool.len()].clone()
}

/// Asks `candidates` in order with `ask`, starting the next one
/// [`REFRESH_STAGGER`] after the last (or at once when one fails), at
/// most [`REFRESH_FAN_OUT`] at a time; the first good answer, or the last
/// failure when all failed. `ask` must bound its own time (the client's
/// RPC timeout), so the whole takes at most
/// `ceil(candidates / REFRESH_FAN_OUT)` of those plus the staggers.
pub(crate) async fn first_answer<T, F, Fut>(
    candidates: &[String],
    mut ask: F,
) -> Result<T, ClientError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut asking = FuturesUnordered::new();
    let mut next = 0;
    let mut last_error = ClientError::NoSeeds;
    loop {
        if next < candidates.len() && asking.len() < REFRESH_FAN_OUT {
            asking.push(ask(candidates[next].clone()));
            next += 1;
        }
        if asking.is_empty() {
            return Err(last_error);
        }
        let may_start_another = next < candidates.len() && asking.len() < REFRESH_FAN_OUT;
        let stagger = async {
            if may_start_another {
                tokio::time::sleep(REFRESH_STAGGER).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        // `biased`: an unbiased select draws from tokio's own RNG, which
        // the simulation's seed does not drive.
        tokio::select! {
            biased;
            answer = asking.next() => match answer {
                Some(Ok(answer)) => return Ok(answer),
                Some(Err(error)) => last_error = error,
                None => unreachable!("`asking` is not empty"),
            },
            () = stagger => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn the_leader_first_then_each_other_node_once_in_turn() {
        let candidates = urls(&["b", "a", "b", "c", "a"]);
        let chosen: Vec<String> = (0..4)
            .map(|attempt| choose_node(&candidates, attempt, |_| false))
            .collect();
        assert_eq!(chosen, urls(&["b", "a", "c", "b"]));
    }

    #[test]
    fn a_suspect_is_skipped_while_another_node_is_left() {
        // The leader "a" and the first fallback "a" again (the old
        // routing repeated it): neither attempt goes there.
        let candidates = urls(&["a", "a", "b", "c"]);
        let chosen: Vec<String> = (0..3)
            .map(|attempt| choose_node(&candidates, attempt, |url| url == "a"))
            .collect();
        assert_eq!(chosen, urls(&["b", "c", "b"]));
    }

    #[test]
    fn every_node_suspect_tries_them_all_in_turn() {
        let candidates = urls(&["a", "b"]);
        let chosen: Vec<String> = (0..3)
            .map(|attempt| choose_node(&candidates, attempt, |_| true))
            .collect();
        assert_eq!(chosen, urls(&["a", "b", "a"]));
    }
}
