//! Clean-up after a harness that crashed: the node processes it started
//! (and, with partitions, its firewall rules) must not outlive it.
//!
//! Each harness keeps the pids of its nodes in
//! `/tmp/distcache-chaos/<harness pid>.pids`. At start, a harness reads the
//! other files there: when the harness that wrote one is gone, it kills
//! the listed processes that are still `distcache node` processes (a pid
//! may have been reused) and removes the file.

use std::path::PathBuf;
use std::process::Command;

fn registry_dir() -> PathBuf {
    std::env::temp_dir().join("distcache-chaos")
}

fn alive(pid: &str) -> bool {
    std::path::Path::new("/proc").join(pid).exists()
}

fn is_distcache_node(pid: &str) -> bool {
    let cmdline =
        std::fs::read(std::path::Path::new("/proc").join(pid).join("cmdline")).unwrap_or_default();
    let words: Vec<&[u8]> = cmdline.split(|&byte| byte == 0).collect();
    words
        .first()
        .is_some_and(|program| program.ends_with(b"distcache"))
        && words.get(1) == Some(&&b"node"[..])
}

/// Records this harness's node pids (replacing the previous list).
pub fn register_pids(pids: &[String]) -> std::io::Result<()> {
    let dir = registry_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join(format!("{}.pids", std::process::id())),
        pids.join("\n"),
    )
}

/// Forgets this harness's list (its nodes are stopped).
pub fn unregister() {
    let _ = std::fs::remove_file(registry_dir().join(format!("{}.pids", std::process::id())));
}

/// Kills the nodes of harnesses that died without stopping them.
pub fn stale_processes() {
    let Ok(entries) = std::fs::read_dir(registry_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(harness) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".pids"))
            .map(str::to_string)
        else {
            continue;
        };
        if harness == std::process::id().to_string() || alive(&harness) {
            continue;
        }
        let pids = std::fs::read_to_string(&path).unwrap_or_default();
        for pid in pids.lines().filter(|pid| !pid.is_empty()) {
            if alive(pid) && is_distcache_node(pid) {
                eprintln!("chaos: killing node process {pid} left by dead harness {harness}");
                let _ = Command::new("kill").args(["-CONT", pid]).status();
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}
