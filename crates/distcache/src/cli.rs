//! The command line: `distcache node | demo | status | admin | get | set |
//! delete`. Every node setting is a flag and a `DISTCACHE_*` environment
//! variable; flags win over the environment, which wins over the file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use distcache_client::proto;
use distcache_client::proto::admin_client::AdminClient;

use crate::config::{NodeConfig, Overrides};
use crate::demo::{Demo, DemoOptions};
use crate::node::Node;

/// distcache: a distributed in-memory cache (Raft-replicated shards).
#[derive(Debug, Parser)]
#[command(name = "distcache", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one node of a cluster from a configuration file.
    Node(NodeArgs),
    /// Run a whole cluster in this process on loopback (until Ctrl-C).
    Demo(DemoArgs),
    /// Show the cluster: groups, replicas, leaders, terms, shard map.
    Status(ConnectArgs),
    /// Change the shard controller's configuration.
    Admin {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(subcommand)]
        change: AdminCommand,
    },
    /// Read a key.
    Get {
        #[command(flatten)]
        connect: ConnectArgs,
        key: String,
    },
    /// Set a key.
    Set {
        #[command(flatten)]
        connect: ConnectArgs,
        key: String,
        value: String,
        /// Expire the key after this many milliseconds.
        #[arg(long)]
        ttl_ms: Option<u64>,
    },
    /// Delete a key.
    Delete {
        #[command(flatten)]
        connect: ConnectArgs,
        key: String,
    },
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's TOML configuration file.
    #[arg(long, env = "DISTCACHE_CONFIG")]
    pub config: PathBuf,
    /// Print the effective configuration (file, environment, flags) and exit;
    /// passwords and password hashes are shown as `***`.
    #[arg(long)]
    pub print_config: bool,
    /// Override `cluster_id`.
    #[arg(long, env = "DISTCACHE_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Override `node_id`.
    #[arg(long, env = "DISTCACHE_NODE_ID")]
    pub node_id: Option<u64>,
    /// Override `data_dir`.
    #[arg(long, env = "DISTCACHE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Override `shard_count`.
    #[arg(long, env = "DISTCACHE_SHARD_COUNT")]
    pub shard_count: Option<usize>,
    /// Override `request_timeout_ms`.
    #[arg(long, env = "DISTCACHE_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Override `max_raft_state_bytes`.
    #[arg(long, env = "DISTCACHE_MAX_RAFT_STATE_BYTES")]
    pub max_raft_state_bytes: Option<u64>,
    /// Override this node's `host` in `[[nodes]]`.
    #[arg(long, env = "DISTCACHE_HOST")]
    pub host: Option<String>,
    /// Override `listen_host`: the IP address every listener binds
    /// (e.g. 0.0.0.0) when `host` is not a local interface.
    #[arg(long, env = "DISTCACHE_LISTEN_HOST")]
    pub listen_host: Option<String>,
    /// Override this node's `grpc_port`.
    #[arg(long, env = "DISTCACHE_GRPC_PORT")]
    pub grpc_port: Option<u16>,
    /// Override this node's `resp_port` (the Redis protocol listener).
    #[arg(long, env = "DISTCACHE_RESP_PORT")]
    pub resp_port: Option<u16>,
    /// Override this node's `http_port` (the HTTP gateway).
    #[arg(long, env = "DISTCACHE_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// Override this node's `controller_port`.
    #[arg(long, env = "DISTCACHE_CONTROLLER_PORT")]
    pub controller_port: Option<u16>,
    /// Override this node's `data_port`.
    #[arg(long, env = "DISTCACHE_DATA_PORT")]
    pub data_port: Option<u16>,
    /// Override this node's `group`.
    #[arg(long, env = "DISTCACHE_GROUP")]
    pub group: Option<u64>,
    /// Override `requirepass`, the default user's password on every front
    /// end (an empty value is refused).
    #[arg(long, env = "DISTCACHE_REQUIREPASS", hide_env_values = true)]
    pub requirepass: Option<String>,
    /// Override `protected_mode` (`false`: client listeners bind
    /// `listen_host` or `host` even without a password).
    #[arg(long, env = "DISTCACHE_PROTECTED_MODE")]
    pub protected_mode: Option<bool>,
    /// Override `balance_load`: `--balance-load` turns the load balancer
    /// on (`--balance-load false` off); it acts while this node's
    /// controller replica leads.
    #[arg(
        long,
        env = "DISTCACHE_BALANCE_LOAD",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub balance_load: Option<bool>,
    /// Override `balance_interval_ms`.
    #[arg(long, env = "DISTCACHE_BALANCE_INTERVAL_MS")]
    pub balance_interval_ms: Option<u64>,
}

impl NodeArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            cluster_id: self.cluster_id.clone(),
            node_id: self.node_id,
            data_dir: self.data_dir.clone(),
            shard_count: self.shard_count,
            request_timeout_ms: self.request_timeout_ms,
            max_raft_state_bytes: self.max_raft_state_bytes,
            host: self.host.clone(),
            grpc_port: self.grpc_port,
            resp_port: self.resp_port,
            http_port: self.http_port,
            controller_port: self.controller_port,
            data_port: self.data_port,
            group: self.group,
            listen_host: self.listen_host.clone(),
            requirepass: self.requirepass.clone().map(crate::config::Secret),
            protected_mode: self.protected_mode,
            balance_load: self.balance_load,
            balance_interval_ms: self.balance_interval_ms,
        }
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the cluster's files here (default: a temporary directory,
    /// removed at exit).
    #[arg(long, env = "DISTCACHE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC port of the first node; the others take the ports after it.
    #[arg(long, default_value_t = 50051)]
    pub grpc_port: u16,
    /// RESP port of the first node; the others take the ports after it.
    #[arg(long, default_value_t = 6379)]
    pub resp_port: u16,
    /// HTTP port of the first node (REST, probes, dashboard); the others
    /// take the ports after it.
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    /// Data groups.
    #[arg(long, default_value_t = 3)]
    pub groups: usize,
    /// Replicas per data group.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// The default user's password on every front end (RESP `AUTH`, HTTP
    /// basic/bearer, gRPC metadata). Without it the demo needs none.
    #[arg(long, env = "DISTCACHE_REQUIREPASS", hide_env_values = true)]
    pub requirepass: Option<String>,
    /// A user of every front end, as a Redis ACL-file line (repeatable):
    /// `--acl "user app on >app-password ~app:* +@all -@dangerous"`.
    #[arg(long = "acl", value_name = "USER_LINE")]
    pub acl: Vec<String>,
    /// Redis Cluster mode on the RESP ports: CLUSTER SLOTS/SHARDS/NODES
    /// describe the groups and keys of other groups get -MOVED, so
    /// `redis-cli -c` and cluster clients route directly.
    #[arg(long)]
    pub cluster_mode: bool,
    /// Serve RESP, HTTP and gRPC over TLS only, with a throwaway CA and
    /// certificates generated now; clients trust `<data-dir>/tls/ca.pem`.
    #[arg(long)]
    pub tls: bool,
    /// Every read takes a ReadIndex heartbeat round instead of being
    /// answered under the leader's lease (`lease_reads = false`).
    #[arg(long)]
    pub no_lease_reads: bool,
    /// Every group replicates asynchronously: a leader answers a plain SET
    /// before a majority has it, and may lose it if it fails first
    /// (`[replication] async_groups`; docs/design.md).
    #[arg(long)]
    pub async_replication: bool,
    /// Every group's shards keep what memory evicts in files under the
    /// data directory instead of dropping it, and bring it back on access
    /// (`[disk_tier]` with its defaults: 1 GiB of disk per shard).
    #[arg(long)]
    pub disk_tier: bool,
    /// Every node keeps answers to plain GETs of keys it forwards (64 MiB)
    /// until their group says they changed: faster hot keys, but reads
    /// promise client-side caching's guarantee, not linearizability
    /// (`[clients] near_cache_bytes`; docs/user-guide.md).
    #[arg(long)]
    pub near_cache: bool,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Any node's gRPC address. (Global: `distcache admin --addr A leave`
    /// and `distcache admin leave --addr A` both work.)
    #[arg(
        long,
        global = true,
        env = "DISTCACHE_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub addr: String,
    /// The user to authenticate as (with `--password`).
    #[arg(long, global = true, env = "DISTCACHE_USER", default_value = "default")]
    pub user: String,
    /// The user's password (the cluster's `requirepass` for `default`).
    #[arg(
        long,
        global = true,
        env = "DISTCACHE_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
}

impl ConnectArgs {
    /// The `authorization` metadata value, when a password is given.
    fn authorization(&self) -> Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
        let password = self.password.as_deref()?;
        crate::auth::basic(&self.user, password).parse().ok()
    }

    /// `message` as a request carrying the credentials.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = self.authorization() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }
}

#[derive(Clone, Debug, Subcommand)]
pub enum AdminCommand {
    /// Add a data group: `--group 4 --peers 10.0.0.1:7101,10.0.0.2:7101`.
    /// (Every admin command names a group with `--group`; `--gid` is
    /// accepted too.)
    Join {
        #[arg(long = "group", visible_alias = "gid")]
        gid: u64,
        /// The group's replicas' data peer addresses, in Raft id order.
        #[arg(long, value_delimiter = ',', required = true)]
        peers: Vec<String>,
    },
    /// Remove data groups; their shards move to the others.
    Leave {
        #[arg(
            long = "group",
            visible_alias = "gid",
            value_delimiter = ',',
            required = true
        )]
        gid: Vec<u64>,
    },
    /// Give one shard to one group.
    Move {
        #[arg(long)]
        shard: u64,
        #[arg(long = "group", visible_alias = "gid")]
        gid: u64,
    },
    /// Declare a data group lost for good (every replica gone with its
    /// disks): it is removed, and the shards it should hand over come back
    /// EMPTY on their new owners. Its data, acknowledged writes included,
    /// is given up; the gid may never join again.
    DeclareLost {
        /// The lost group's id.
        gid: u64,
        /// Confirms that the group's data is given up for good (required).
        #[arg(long)]
        yes_data_is_lost: bool,
    },
    /// Hand the leadership of a group to its replica on one node:
    /// `--group 2 --to 5` (`--group 0`: the controller group). Any node
    /// takes the request; it answers once that replica leads.
    TransferLeader {
        /// The data group; 0 for the controller group.
        #[arg(long, visible_alias = "gid")]
        group: u64,
        /// The node whose replica is to lead.
        #[arg(long)]
        to: u64,
    },
    /// Add a replica to a group: `--group 1 --node 7` (`--group 0`: the
    /// controller group). Node 7 runs already, started empty with
    /// `joining = true` in its own table; it joins as a learner, catches up
    /// and becomes a voter. Any node takes the request (it is passed on to
    /// the group's leader).
    AddReplica {
        #[arg(long, visible_alias = "gid")]
        group: u64,
        /// The node to add.
        #[arg(long)]
        node: u64,
        /// Its replica's peer address (`host:data_port`, or
        /// `host:controller_port` for group 0), if the node that takes the
        /// request does not list it in its table.
        #[arg(long)]
        peer_addr: Option<String>,
        /// How long it may take to catch up (if it does not, it is removed
        /// again and nothing changes).
        #[arg(long, default_value_t = 30_000)]
        catch_up_timeout_ms: u64,
    },
    /// Remove a replica from a group: `--group 1 --node 3` (`--group 0`:
    /// the controller group; refused for the group's last voter).
    RemoveReplica {
        #[arg(long, visible_alias = "gid")]
        group: u64,
        #[arg(long)]
        node: u64,
    },
    /// Replace a group's replica by a new node: `--group 1 --remove 3 --add
    /// 7` (add-replica of 7, then remove-replica of 3; `--group 0`: the
    /// controller group). For a machine that lost its disk: it comes back
    /// as a new node with a new id.
    ReplaceReplica {
        #[arg(long, visible_alias = "gid")]
        group: u64,
        /// The node whose replica leaves.
        #[arg(long)]
        remove: u64,
        /// The node that joins (as in add-replica).
        #[arg(long)]
        add: u64,
        #[arg(long)]
        peer_addr: Option<String>,
        #[arg(long, default_value_t = 30_000)]
        catch_up_timeout_ms: u64,
    },
}

/// Reads the file, applies the environment and flags, validates.
pub fn load_node_config(args: &NodeArgs) -> Result<NodeConfig, String> {
    let source = args.config.display().to_string();
    let text = std::fs::read_to_string(&args.config)
        .map_err(|error| format!("cannot read the configuration file {source}: {error}"))?;
    let mut config = NodeConfig::from_toml(&text, &source).map_err(|error| error.to_string())?;
    config
        .apply(&args.overrides())
        .map_err(|error| error.to_string())?;
    config.validate().map_err(|error| error.to_string())?;
    Ok(config)
}

/// Resolves on Ctrl-C or (production) SIGTERM.
async fn stop_signal() {
    #[cfg(not(madsim))]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
    }
    #[cfg(madsim)]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the parsed command; the process's exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Node(args) => run_node(&args).await,
        Command::Demo(args) => run_demo(args).await,
        Command::Status(connect) => report(status(&connect).await),
        Command::Admin { connect, change } => report(admin(&connect, change).await),
        Command::Get { connect, key } => report(get(&connect, &key).await),
        Command::Set {
            connect,
            key,
            value,
            ttl_ms,
        } => report(set(&connect, &key, &value, ttl_ms).await),
        Command::Delete { connect, key } => report(delete(&connect, &key).await),
    }
}

fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("distcache: error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run_node(args: &NodeArgs) -> ExitCode {
    let config = match load_node_config(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("distcache: {error}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        print!("{}", config.to_toml_redacted());
        return ExitCode::SUCCESS;
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    #[cfg(not(madsim))]
    let exporter = match &config.tracing.otlp_endpoint {
        Some(endpoint) => match crate::otlp::start(endpoint, config.node_id) {
            Ok(exporter) => Some(exporter),
            Err(error) => {
                eprintln!("distcache: {error}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let node = match Node::start(config).await {
        Ok(node) => node,
        Err(error) => {
            eprintln!("distcache: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("distcache node: serving gRPC on {}", node.grpc_addr());
    if let Some(resp) = node.resp_addr() {
        println!("distcache node: serving RESP on {resp}");
    }
    if let Some(http) = node.http_addr() {
        println!(
            "distcache node: serving HTTP on {scheme}://{http}/ (REST under /v1, /metrics, /livez, /readyz)"
        );
    }
    stop_signal().await;
    node.shutdown().await;
    #[cfg(not(madsim))]
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    ExitCode::SUCCESS
}

async fn run_demo(args: DemoArgs) -> ExitCode {
    let options = DemoOptions {
        data_dir: args.data_dir,
        grpc_port: args.grpc_port,
        resp_port: args.resp_port,
        http_port: args.http_port,
        groups: args.groups,
        replicas: args.replicas,
        requirepass: args.requirepass,
        users: args.acl,
        cluster_mode: args.cluster_mode,
        tls: args.tls,
        lease_reads: !args.no_lease_reads,
        async_replication: args.async_replication,
        disk_tier: args.disk_tier,
        near_cache: args.near_cache,
        ..DemoOptions::default()
    };
    let demo = match Demo::start(&options, Duration::from_secs(60)).await {
        Ok(demo) => demo,
        Err(error) => {
            eprintln!("distcache demo: {error}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", demo.describe());
    println!(
        "distcache demo: ready (gRPC on {}; Ctrl-C stops)",
        demo.grpc_addr()
    );
    stop_signal().await;
    println!("distcache demo: stopping");
    demo.shutdown().await;
    println!("distcache demo: stopped");
    ExitCode::SUCCESS
}

async fn admin_client(
    connect: &ConnectArgs,
) -> Result<AdminClient<tonic::transport::Channel>, String> {
    admin_client_with_timeout(connect, Duration::from_secs(10)).await
}

/// [`admin_client`] whose calls may take `timeout` (a membership change
/// waits for a new replica to catch up).
async fn admin_client_with_timeout(
    connect: &ConnectArgs,
    timeout: Duration,
) -> Result<AdminClient<tonic::transport::Channel>, String> {
    let url = distcache_client::grpc_url(&connect.addr).map_err(|error| error.to_string())?;
    let endpoint = tonic::transport::Endpoint::from_shared(url)
        .map_err(|error| error.to_string())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(timeout);
    let channel = endpoint
        .connect()
        .await
        .map_err(|error| format!("cannot reach {}: {error}", connect.addr))?;
    Ok(AdminClient::new(channel))
}

fn status_text(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

async fn status(connect: &ConnectArgs) -> Result<String, String> {
    let mut client = admin_client(connect).await?;
    let reply = client
        .status(connect.request(proto::StatusRequest {}))
        .await
        .map_err(|status| status_text(&status))?
        .into_inner();
    Ok(format_status(&reply))
}

/// `distcache status` output.
pub fn format_status(reply: &proto::StatusReply) -> String {
    let mut text = format!(
        "cluster {}  configuration {}  shards {}\n",
        reply.cluster_id,
        reply.config_num,
        reply.shard_owners.len()
    );
    text.push_str("shard map (shard:group):");
    for (shard, gid) in reply.shard_owners.iter().enumerate() {
        text.push_str(&format!(" {shard}:{gid}"));
    }
    text.push('\n');
    for lost in &reply.lost_groups {
        text.push_str(&format!(
            "group {}  LOST (declared in configuration {}; its data is gone)\n",
            lost.gid, lost.declared_in_config
        ));
    }
    for group in &reply.groups {
        text.push_str(&format!(
            "group {}  replicas {}  leader at {}\n",
            group.gid,
            group.peer_addrs.join(","),
            if group.leader_grpc_addr.is_empty() {
                "(unknown)"
            } else {
                &group.leader_grpc_addr
            }
        ));
    }
    for node in &reply.nodes {
        if !node.reachable {
            text.push_str(&format!(
                "node {}  {}  UNREACHABLE\n",
                node.node_id, node.grpc_addr
            ));
            continue;
        }
        for replica in &node.replicas {
            text.push_str(&format!(
                "node {}  {}  {} {}  {}  term {}  commit {}  applied {}  config {}\n",
                node.node_id,
                node.grpc_addr,
                replica.role,
                if replica.role == "data" {
                    format!("group {}", replica.gid)
                } else {
                    String::new()
                },
                if replica.is_leader {
                    "LEADER"
                } else {
                    "follower"
                },
                replica.term,
                replica.commit_index,
                replica.applied_index,
                replica.config_num,
            ));
            if replica.follower_reads > 0 {
                text.push_str(&format!(
                    "    {} reads answered as a follower (READONLY, read_from = any replica)\n",
                    replica.follower_reads
                ));
            }
            if replica.async_acks > 0 {
                text.push_str(&format!(
                    "    {} writes answered before a majority had them (asynchronous replication), {} seen lost\n",
                    replica.async_acks, replica.async_acks_lost
                ));
            }
            if replica.role == "data" && replica.is_leader {
                text.push_str(&format_store(replica));
            }
            text.push_str(&format_shard_notes(replica));
        }
    }
    text
}

/// The refusal of a `declare-lost` without its confirmation (checked
/// before connecting: nothing is sent).
pub fn check_declare_lost_confirmed(gid: u64, confirmed: bool) -> Result<(), String> {
    if confirmed {
        return Ok(());
    }
    Err(format!(
        "declaring group {gid} lost gives up its data for good (its shards come back empty, \
         acknowledged writes included) and the gid may never join again; add \
         --yes-data-is-lost to confirm"
    ))
}

/// A group's stores as its leader reports them (the figures are replicated,
/// so the followers' are the same and not printed): memory, the disk tier
/// if the group has one, and where reads were served from. The read counts
/// are the replicated ones: reads that went through the log. Reads answered
/// by ReadIndex or a lease change no replicated state and are not counted,
/// which the label says.
fn format_store(replica: &proto::ReplicaStatus) -> String {
    let memory = format!(
        "    store: {} keys, {} in memory",
        replica.store_keys,
        human_bytes(replica.store_bytes)
    );
    if !replica.disk_tier {
        return format!(
            "{memory}; reads through the log: {} hits, {} misses\n",
            replica.store_hits, replica.store_misses
        );
    }
    format!(
        "{memory}; disk tier: {} keys, {}; reads through the log: {} from memory, \
         {} from disk, {} misses\n",
        replica.disk_keys,
        human_bytes(replica.disk_bytes),
        replica.store_hits.saturating_sub(replica.disk_hits),
        replica.disk_hits,
        replica.store_misses
    )
}

/// `bytes` in the largest binary unit that keeps it at least 1, one decimal.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A data replica's waiting and lost shards, one line each (empty if none).
fn format_shard_notes(replica: &proto::ReplicaStatus) -> String {
    let mut text = String::new();
    if replica.declared_lost {
        text.push_str("    this group was DECLARED LOST: it serves nothing\n");
    }
    for wait in &replica.waiting {
        text.push_str(&format!(
            "    shard {} WAITING on group {} since configuration {} ({} ms)\n",
            wait.shard, wait.waiting_on_group, wait.waiting_since_config, wait.waiting_for_ms
        ));
    }
    for lost in &replica.lost_shards {
        text.push_str(&format!(
            "    shard {} LOST at configuration {}, previous owner {} (installed empty)\n",
            lost.shard, lost.lost_at_config, lost.previous_owner
        ));
    }
    text
}

/// `add-replica`, `remove-replica` and `replace-replica`; None for any
/// other command.
async fn change_replicas(
    connect: &ConnectArgs,
    change: &AdminCommand,
) -> Option<Result<String, String>> {
    // The call waits for the new replica to catch up, then for the
    // controller: its deadline is the catch-up bound and a margin.
    let margin = Duration::from_secs(30);
    let (group, timeout) = match *change {
        AdminCommand::AddReplica {
            group,
            catch_up_timeout_ms,
            ..
        }
        | AdminCommand::ReplaceReplica {
            group,
            catch_up_timeout_ms,
            ..
        } => (group, Duration::from_millis(catch_up_timeout_ms) + margin),
        AdminCommand::RemoveReplica { group, .. } => (group, margin),
        _ => return None,
    };
    let answer = async {
        let mut client = admin_client_with_timeout(connect, timeout).await?;
        let reply = match change.clone() {
            AdminCommand::AddReplica {
                group,
                node,
                peer_addr,
                catch_up_timeout_ms,
            } => {
                client
                    .add_replica(connect.request(proto::AddReplicaRequest {
                        gid: group,
                        node_id: node,
                        peer_addr: peer_addr.unwrap_or_default(),
                        catch_up_timeout_ms,
                        forwarded: false,
                    }))
                    .await
            }
            AdminCommand::RemoveReplica { group, node } => {
                client
                    .remove_replica(connect.request(proto::RemoveReplicaRequest {
                        gid: group,
                        node_id: node,
                        forwarded: false,
                    }))
                    .await
            }
            AdminCommand::ReplaceReplica {
                group,
                remove,
                add,
                peer_addr,
                catch_up_timeout_ms,
            } => {
                client
                    .replace_replica(connect.request(proto::ReplaceReplicaRequest {
                        gid: group,
                        remove_node_id: remove,
                        add_node_id: add,
                        peer_addr: peer_addr.unwrap_or_default(),
                        catch_up_timeout_ms,
                        forwarded: false,
                    }))
                    .await
            }
            _ => unreachable!("matched above"),
        };
        let reply = reply.map_err(|status| status_text(&status))?.into_inner();
        let nodes: Vec<String> = reply
            .voters
            .iter()
            .map(|voter| format!("node {} ({})", voter.node_id, voter.peer_addr))
            .collect();
        Ok(format!(
            "group {group} replicas: {}; configuration {}\n",
            nodes.join(", "),
            reply.config_num
        ))
    };
    Some(answer.await)
}

async fn admin(connect: &ConnectArgs, change: AdminCommand) -> Result<String, String> {
    if let AdminCommand::DeclareLost {
        gid,
        yes_data_is_lost,
    } = change
    {
        check_declare_lost_confirmed(gid, yes_data_is_lost)?;
    }
    if let Some(answer) = change_replicas(connect, &change).await {
        return answer;
    }
    let mut client = admin_client(connect).await?;
    if let AdminCommand::TransferLeader { group, to } = change {
        let reply = client
            .transfer_leader(connect.request(proto::TransferLeaderRequest {
                gid: group,
                to_node_id: to,
                forwarded: false,
            }))
            .await
            .map_err(|status| status_text(&status))?
            .into_inner();
        return Ok(format!(
            "{} led by node {}\n",
            if group == 0 {
                "controller group".to_string()
            } else {
                format!("group {group}")
            },
            reply.leader_node_id
        ));
    }
    let reply = match change {
        AdminCommand::Join { gid, peers } => {
            client
                .join(connect.request(proto::JoinRequest {
                    groups: vec![proto::GroupMembers {
                        gid,
                        peer_addrs: peers,
                    }],
                }))
                .await
        }
        AdminCommand::Leave { gid } => {
            client
                .leave(connect.request(proto::LeaveRequest { gids: gid }))
                .await
        }
        AdminCommand::Move { shard, gid } => {
            client
                .r#move(connect.request(proto::MoveRequest { shard, gid }))
                .await
        }
        AdminCommand::DeclareLost {
            gid,
            yes_data_is_lost,
        } => {
            client
                .declare_lost(connect.request(proto::DeclareLostRequest {
                    gid,
                    confirm_data_is_lost: yes_data_is_lost,
                }))
                .await
        }
        AdminCommand::TransferLeader { .. }
        | AdminCommand::AddReplica { .. }
        | AdminCommand::RemoveReplica { .. }
        | AdminCommand::ReplaceReplica { .. } => unreachable!("answered above"),
    };
    let reply = reply.map_err(|status| status_text(&status))?.into_inner();
    Ok(format!("configuration {}\n", reply.config_num))
}

fn data_client(connect: &ConnectArgs) -> Result<distcache_client::Client, String> {
    match &connect.password {
        Some(password) => distcache_client::Client::with_credentials(
            &[&connect.addr],
            distcache_client::ClientConfig::default(),
            &connect.user,
            password,
        ),
        None => distcache_client::Client::connect(&connect.addr),
    }
    .map_err(|error| error.to_string())
}

async fn get(connect: &ConnectArgs, key: &str) -> Result<String, String> {
    let client = data_client(connect)?;
    match client.get(key.as_bytes()).await {
        Ok(Some(value)) => Ok(format!("{}\n", String::from_utf8_lossy(&value))),
        Ok(None) => Ok("(not found)\n".into()),
        Err(error) => Err(error.to_string()),
    }
}

async fn set(
    connect: &ConnectArgs,
    key: &str,
    value: &str,
    ttl_ms: Option<u64>,
) -> Result<String, String> {
    let client = data_client(connect)?;
    let options = distcache_client::SetOptions {
        ttl_ms,
        ..distcache_client::SetOptions::default()
    };
    client
        .set_with(key.as_bytes(), value.as_bytes(), options)
        .await
        .map(|_| "OK\n".to_string())
        .map_err(|error| error.to_string())
}

async fn delete(connect: &ConnectArgs, key: &str) -> Result<String, String> {
    let client = data_client(connect)?;
    client
        .delete(key.as_bytes())
        .await
        .map(|existed| {
            if existed {
                "deleted\n"
            } else {
                "(not found)\n"
            }
            .to_string()
        })
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_load_is_a_flag_with_an_optional_value() {
        let overrides = |args: &[&str]| {
            let mut argv = vec!["distcache", "node", "--config", "node.toml"];
            argv.extend_from_slice(args);
            match Cli::try_parse_from(argv).expect("parses").command {
                Command::Node(node) => node.overrides(),
                other => panic!("parsed as {other:?}"),
            }
        };
        assert_eq!(overrides(&[]).balance_load, None);
        assert_eq!(overrides(&["--balance-load"]).balance_load, Some(true));
        assert_eq!(
            overrides(&["--balance-load", "false"]).balance_load,
            Some(false)
        );
        let interval = overrides(&["--balance-load", "--balance-interval-ms", "5000"]);
        assert_eq!(
            (interval.balance_load, interval.balance_interval_ms),
            (Some(true), Some(5000))
        );
    }

    #[test]
    fn status_names_each_replica_and_the_reads_it_answered_as_a_follower() {
        let replica = |gid, is_leader, follower_reads| proto::ReplicaStatus {
            role: "data".into(),
            gid,
            is_leader,
            term: 3,
            commit_index: 9,
            applied_index: 9,
            config_num: 2,
            follower_reads,
            ..proto::ReplicaStatus::default()
        };
        let reply = proto::StatusReply {
            cluster_id: "demo".into(),
            config_num: 2,
            nodes: vec![
                proto::NodeStatusReply {
                    node_id: 1,
                    grpc_addr: "127.0.0.1:50051".into(),
                    reachable: true,
                    replicas: vec![replica(1, true, 0)],
                    ..proto::NodeStatusReply::default()
                },
                proto::NodeStatusReply {
                    node_id: 2,
                    grpc_addr: "127.0.0.1:50052".into(),
                    reachable: true,
                    replicas: vec![replica(1, false, 41)],
                    ..proto::NodeStatusReply::default()
                },
            ],
            ..proto::StatusReply::default()
        };
        let text = format_status(&reply);
        assert!(
            text.contains("node 1  127.0.0.1:50051  data group 1  LEADER  term 3  commit 9"),
            "{text}"
        );
        assert!(
            text.contains(
                "node 2  127.0.0.1:50052  data group 1  follower  term 3  commit 9  applied 9  \
                 config 2\n    41 reads answered as a follower"
            ),
            "{text}"
        );
        assert_eq!(
            text.matches("answered as a follower").count(),
            1,
            "a replica that answered none says nothing: {text}"
        );
    }

    #[test]
    fn status_shows_each_groups_store_once_with_its_disk_tier() {
        let replica = |gid, is_leader, disk_tier| proto::ReplicaStatus {
            role: "data".into(),
            gid,
            is_leader,
            store_keys: 1200,
            store_bytes: 3 << 20,
            store_hits: 900,
            store_misses: 40,
            disk_tier,
            disk_keys: if disk_tier { 5000 } else { 0 },
            disk_bytes: if disk_tier { 1536 } else { 0 },
            disk_hits: if disk_tier { 300 } else { 0 },
            ..proto::ReplicaStatus::default()
        };
        let node = |node_id, replicas| proto::NodeStatusReply {
            node_id,
            reachable: true,
            replicas,
            ..proto::NodeStatusReply::default()
        };
        let reply = proto::StatusReply {
            nodes: vec![
                node(1, vec![replica(1, true, false)]),
                node(2, vec![replica(1, false, false)]),
                node(3, vec![replica(2, true, true)]),
            ],
            ..proto::StatusReply::default()
        };
        let text = format_status(&reply);
        assert!(
            text.contains(
                "    store: 1200 keys, 3.0 MiB in memory; reads through the log: 900 hits, \
                 40 misses\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "    store: 1200 keys, 3.0 MiB in memory; disk tier: 5000 keys, 1.5 KiB; \
                 reads through the log: 600 from memory, 300 from disk, 40 misses\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("store:").count(), 2, "leaders only: {text}");
    }

    #[test]
    fn byte_counts_read_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16777216.0 TiB");
    }
}
