//! Cluster mode: Redis Cluster's view of distcache, so `redis-cli -c` and
//! redis-py's `RedisCluster` route each key to its owner directly.
//!
//! ```text
//!   controller configuration ──► shard → group, group → replicas
//!   + [[nodes]] of the config ──► replica → node id, RESP address
//!   + known leaders           ──► each group: master (its leader), replicas
//!                                  and its slots (each shard owns one
//!                                  contiguous slot range, shardkv::shard_key)
//! ```
//!
//! - **Node ids**: Redis wants 40 hex characters; a node's is its `[[nodes]]`
//!   id in hex, zero-padded ([`node_name`]), stable across restarts.
//! - **Masters**: a group's leader as this node last saw it (the replica
//!   that answered its last forwarded request, or this node's own replica
//!   if it leads); the others are replicas. A stale guess costs one hop
//!   inside the group, never a wrong answer: every replica of the owning
//!   group answers (forwarding to its leader).
//! - **Redirects** ([`redirect`]): in cluster mode a command whose keys are
//!   in a slot that this node's group does not own gets
//!   `-MOVED <slot> <ip>:<port>`, the owning group's master's RESP address;
//!   keys of several slots get `-CROSSSLOT` (Redis Cluster's rule, stricter
//!   than proxy mode's one-shard rule). A slot whose owner is unknown here
//!   (no configuration yet, a group missing from `[[nodes]]`) is served by
//!   forwarding, as in proxy mode.
//! - Outside cluster mode the `CLUSTER` subcommands other than `KEYSLOT`
//!   answer as a standalone Redis does (`cluster support disabled`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ::resp::Frame;
use bytes::Bytes;
use shardctrler::{Config, Gid, UNASSIGNED};
use shardkv::shard_key::{SLOT_COUNT, key_slot, shard_slots, slot_to_shard};

/// What a node knows of the cluster from its own configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterMap {
    /// This node's `[[nodes]]` id.
    pub my_node: u64,
    /// This node's RESP address.
    pub my_addr: Option<SocketAddr>,
    /// The group this node's data replica belongs to, if it has one.
    pub my_gid: Option<Gid>,
    /// Every data replica's peer address → (node id, RESP address), for
    /// the nodes that have a RESP port.
    pub replicas: BTreeMap<SocketAddr, (u64, SocketAddr)>,
}

impl ClusterMap {
    /// The map of a node started from `config` (whose `[[nodes]]` gave
    /// `topology`), its RESP listener at `my_addr`; `None` unless the
    /// configuration asks for cluster mode.
    pub fn for_node(
        config: &crate::config::NodeConfig,
        topology: &crate::config::Topology,
        my_addr: SocketAddr,
    ) -> Option<ClusterMap> {
        if !config.cluster_mode {
            return None;
        }
        let entry = |id: u64| config.nodes.iter().find(|entry| entry.id == id);
        let mut replicas = BTreeMap::new();
        for members in topology.groups.values() {
            for &(id, peer) in members {
                let Some(port) = entry(id).and_then(|entry| entry.resp_port) else {
                    continue;
                };
                replicas.insert(peer, (id, SocketAddr::new(peer.ip(), port)));
            }
        }
        Some(ClusterMap {
            my_node: config.node_id,
            my_addr: Some(my_addr),
            my_gid: entry(config.node_id).and_then(|entry| entry.group),
            replicas,
        })
    }
}

/// What changes while the cluster runs: the controller's configuration
/// and the leaders this node knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterState {
    /// Shared with the forwarder's routing, not copied: every keyed
    /// command in cluster mode reads it.
    pub config: std::sync::Arc<Config>,
    /// A group's leader's peer address, as far as this node knows.
    pub leaders: BTreeMap<Gid, SocketAddr>,
    /// The group this node's own replica leads now, if any.
    pub local_leader: Option<Gid>,
}

/// One node as `CLUSTER` replies name it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Member {
    node: u64,
    addr: SocketAddr,
}

/// One group: its master, replicas and slot ranges (inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
struct GroupView {
    master: Member,
    replicas: Vec<Member>,
    slots: Vec<(usize, usize)>,
}

/// A node's 40-hex-character Redis Cluster id.
pub fn node_name(node: u64) -> String {
    format!("{node:040x}")
}

/// Every group with a known RESP address, by gid.
fn groups(state: &ClusterState, map: &ClusterMap) -> BTreeMap<Gid, GroupView> {
    let config = &state.config;
    let shard_count = config.shards.len();
    let mut views = BTreeMap::new();
    for (&gid, servers) in &config.groups {
        let members: Vec<(SocketAddr, Member)> = servers
            .iter()
            .filter_map(|server| {
                let (node, addr) = *map.replicas.get(server)?;
                Some((*server, Member { node, addr }))
            })
            .collect();
        if members.is_empty() {
            continue;
        }
        let master_index = master_index(state, map, gid, &members);
        let master = members[master_index].1.clone();
        let replicas = members
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != master_index)
            .map(|(_, (_, member))| member.clone())
            .collect();
        let mut slots: Vec<(usize, usize)> = Vec::new();
        for shard in (0..shard_count).filter(|&shard| config.shards[shard] == gid) {
            let range = shard_slots(shard, shard_count);
            if range.is_empty() {
                continue;
            }
            match slots.last_mut() {
                Some((_, end)) if *end + 1 == range.start => *end = range.end - 1,
                _ => slots.push((range.start, range.end - 1)),
            }
        }
        views.insert(
            gid,
            GroupView {
                master,
                replicas,
                slots,
            },
        );
    }
    views
}

/// Which of a group's `members` (peer address, member) is its master:
/// this node if its replica leads, else the leader this node last saw,
/// else the first.
fn master_index(
    state: &ClusterState,
    map: &ClusterMap,
    gid: Gid,
    members: &[(SocketAddr, Member)],
) -> usize {
    if state.local_leader == Some(gid) {
        members
            .iter()
            .position(|(_, member)| member.node == map.my_node)
    } else {
        state
            .leaders
            .get(&gid)
            .and_then(|leader| members.iter().position(|(server, _)| server == leader))
    }
    .unwrap_or(0)
}

fn ip(addr: SocketAddr) -> Frame {
    Frame::bulk(addr.ip().to_string())
}

fn node_entry(member: &Member) -> Frame {
    Frame::Array(vec![
        ip(member.addr),
        Frame::Integer(i64::from(member.addr.port())),
        Frame::bulk(node_name(member.node)),
    ])
}

/// `CLUSTER SLOTS`: `[start, end, master, replicas...]` per slot range.
pub fn slots_reply(state: &ClusterState, map: &ClusterMap) -> Frame {
    let mut ranges = Vec::new();
    for view in groups(state, map).values() {
        for &(start, end) in &view.slots {
            let mut entry = vec![Frame::Integer(start as i64), Frame::Integer(end as i64)];
            entry.push(node_entry(&view.master));
            entry.extend(view.replicas.iter().map(node_entry));
            ranges.push((start, Frame::Array(entry)));
        }
    }
    ranges.sort_by_key(|(start, _)| *start);
    Frame::Array(ranges.into_iter().map(|(_, frame)| frame).collect())
}

fn shard_node(member: &Member, role: &str) -> Frame {
    Frame::Map(vec![
        (Frame::bulk("id"), Frame::bulk(node_name(member.node))),
        (
            Frame::bulk("port"),
            Frame::Integer(i64::from(member.addr.port())),
        ),
        (Frame::bulk("ip"), ip(member.addr)),
        (Frame::bulk("endpoint"), ip(member.addr)),
        (Frame::bulk("role"), Frame::bulk(role)),
        (Frame::bulk("replication-offset"), Frame::Integer(0)),
        (Frame::bulk("health"), Frame::bulk("online")),
    ])
}

/// `CLUSTER SHARDS`: one entry per group (a Redis "shard" is a master and
/// its replicas), with its slot ranges and nodes.
pub fn shards_reply(state: &ClusterState, map: &ClusterMap) -> Frame {
    let entries = groups(state, map)
        .values()
        .map(|view| {
            let slots = view
                .slots
                .iter()
                .flat_map(|&(start, end)| {
                    [Frame::Integer(start as i64), Frame::Integer(end as i64)]
                })
                .collect();
            let mut nodes = vec![shard_node(&view.master, "master")];
            nodes.extend(
                view.replicas
                    .iter()
                    .map(|member| shard_node(member, "replica")),
            );
            Frame::Map(vec![
                (Frame::bulk("slots"), Frame::Array(slots)),
                (Frame::bulk("nodes"), Frame::Array(nodes)),
            ])
        })
        .collect();
    Frame::Array(entries)
}

/// `CLUSTER NODES`: Redis's one line per node.
pub fn nodes_reply(state: &ClusterState, map: &ClusterMap) -> Frame {
    let epoch = state.config.num;
    let mut text = String::new();
    for view in groups(state, map).values() {
        let myself = |member: &Member| {
            if member.node == map.my_node {
                "myself,"
            } else {
                ""
            }
        };
        let slots: Vec<String> = view
            .slots
            .iter()
            .map(|&(start, end)| {
                if start == end {
                    start.to_string()
                } else {
                    format!("{start}-{end}")
                }
            })
            .collect();
        let line = |member: &Member, flags: String, master: &str, slots: &str| {
            format!(
                "{} {}:{}@{} {flags} {master} 0 0 {epoch} connected{slots}\n",
                node_name(member.node),
                member.addr.ip(),
                member.addr.port(),
                u32::from(member.addr.port()) + 10_000,
            )
        };
        let slot_text: String = slots.iter().map(|range| format!(" {range}")).collect();
        text.push_str(&line(
            &view.master,
            format!("{}master", myself(&view.master)),
            "-",
            &slot_text,
        ));
        let master_name = node_name(view.master.node);
        for replica in &view.replicas {
            text.push_str(&line(
                replica,
                format!("{}slave", myself(replica)),
                &master_name,
                "",
            ));
        }
    }
    Frame::bulk(text)
}

/// `CLUSTER INFO`: Redis's `field:value` lines.
pub fn info_reply(state: &ClusterState, map: &ClusterMap) -> Frame {
    let views = groups(state, map);
    let assigned: usize = views
        .values()
        .flat_map(|view| view.slots.iter().map(|(start, end)| end - start + 1))
        .sum();
    let known_nodes: usize = views.values().map(|view| 1 + view.replicas.len()).sum();
    let epoch = state.config.num;
    let text = format!(
        "cluster_enabled:1\r\ncluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{assigned}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{known_nodes}\r\ncluster_size:{}\r\ncluster_current_epoch:{epoch}\r\ncluster_my_epoch:{epoch}\r\n",
        if assigned == SLOT_COUNT { "ok" } else { "fail" },
        views.len(),
    );
    Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    }
}

/// `CLUSTER MYID`.
pub fn myid_reply(map: &ClusterMap) -> Frame {
    Frame::bulk(node_name(map.my_node))
}

/// In cluster mode, the reply that sends a command on `keys` elsewhere
/// (`-MOVED`, `-CROSSSLOT`), or `None` if this node serves it.
pub fn redirect(state: &ClusterState, map: &ClusterMap, keys: &[Bytes]) -> Option<Frame> {
    let first = keys.first()?;
    let slot = key_slot(first);
    if keys.iter().any(|key| key_slot(key) != slot) {
        return Some(Frame::error(super::multikey::CROSSSLOT));
    }
    let config = &state.config;
    if config.shards.is_empty() {
        return None;
    }
    let owner = *config
        .shards
        .get(slot_to_shard(slot, config.shards.len()))?;
    if owner == UNASSIGNED || Some(owner) == map.my_gid {
        return None;
    }
    let members: Vec<(SocketAddr, Member)> = config
        .groups
        .get(&owner)?
        .iter()
        .filter_map(|server| {
            let (node, addr) = *map.replicas.get(server)?;
            Some((*server, Member { node, addr }))
        })
        .collect();
    if members.is_empty() {
        return None;
    }
    let master = &members[master_index(state, map, owner, &members)].1;
    Some(Frame::error(&format!(
        "MOVED {slot} {}:{}",
        master.addr.ip(),
        master.addr.port()
    )))
}

/// [`redirect`] for a listener: nothing outside cluster mode.
pub(super) fn redirect_for<B: super::Backend>(
    shared: &super::Shared<B>,
    keys: &[Bytes],
) -> Option<Frame> {
    let map = shared.config.cluster.as_ref()?;
    if keys.is_empty() {
        return None;
    }
    redirect(&shared.backend.cluster_state()?, map, keys)
}
