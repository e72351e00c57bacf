//! Real `distcache node` processes, each from its configuration file in one
//! temporary directory, with its output in `node<id>.out` / `node<id>.err`
//! there. Every process still running is killed when the value drops.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output};
use std::time::Duration;

use tokio::time::Instant;

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_distcache");

pub struct NodeProcesses {
    pub dir: tempfile::TempDir,
    pub children: BTreeMap<u64, Child>,
}

impl NodeProcesses {
    pub fn new() -> NodeProcesses {
        NodeProcesses {
            dir: tempfile::tempdir().expect("temporary directory"),
            children: BTreeMap::new(),
        }
    }

    /// Where node `node_id`'s configuration file is.
    pub fn config_path(&self, node_id: u64) -> PathBuf {
        self.dir.path().join(format!("node{node_id}.toml"))
    }

    /// A data directory for node `node_id` (its configuration names it).
    pub fn data_dir(&self, node_id: u64) -> PathBuf {
        self.dir.path().join(format!("data{node_id}"))
    }

    /// Writes node `node_id`'s configuration file.
    pub fn write_config(&self, node_id: u64, text: &str) {
        std::fs::write(self.config_path(node_id), text).expect("write a config file");
    }

    /// Starts node `node_id` from its configuration file.
    pub fn start(&mut self, node_id: u64) {
        self.start_with_env(node_id, &[]);
    }

    /// [`NodeProcesses::start`] with environment variables set (the
    /// `DISTCACHE_*` overrides a container passes).
    pub fn start_with_env(&mut self, node_id: u64, environment: &[(&str, &str)]) {
        let log = |suffix: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join(format!("node{node_id}.{suffix}")))
                .expect("open a log file")
        };
        let child = Command::new(BINARY)
            .args(["node", "--config"])
            .arg(self.config_path(node_id))
            .env("RUST_LOG", "warn,distcache=info")
            .envs(environment.iter().copied())
            .stdout(log("out"))
            .stderr(log("err"))
            .spawn()
            .expect("start distcache node");
        assert!(
            self.children.insert(node_id, child).is_none(),
            "node {node_id} was already running"
        );
    }

    /// SIGKILL, and reaps the process.
    pub fn kill_hard(&mut self, node_id: u64) {
        let mut child = self.children.remove(&node_id).expect("node is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// SIGTERM, then waits at most `timeout` for the process to exit; its
    /// exit status.
    pub async fn terminate(&mut self, node_id: u64, timeout: Duration) -> ExitStatus {
        let mut child = self.children.remove(&node_id).expect("node is running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("send SIGTERM");
        assert!(status.success(), "kill -TERM node {node_id}");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exit) = child.try_wait().expect("poll child") {
                return exit;
            }
            assert!(
                Instant::now() < deadline,
                "node {node_id} did not stop within {timeout:?} of SIGTERM: {}",
                self.log_of(node_id)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What node `node_id` wrote to stderr so far.
    pub fn log_of(&self, node_id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{node_id}.err")))
            .unwrap_or_default()
    }

    /// The `distcache` command line against the node at `addr`.
    pub fn cli(addr: &str, args: &[&str]) -> Output {
        Command::new(BINARY)
            .env("DISTCACHE_ADDR", addr)
            .args(args)
            .output()
            .expect("run distcache")
    }
}

impl Drop for NodeProcesses {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            // Best effort: the process may have exited already.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
