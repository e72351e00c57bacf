//! The harness must be able to fail: against a deliberately broken build
//! (`unsafe_ack_before_commit = true`: distcache acknowledges puts and
//! appends before they commit) a short run must report a finding, and
//! the report must name a linearizability violation or lost appends.

use std::path::PathBuf;
use std::process::Command;

/// The `distcache` binary next to this crate's binary; built if missing.
fn distcache_binary() -> PathBuf {
    let chaos = PathBuf::from(env!("CARGO_BIN_EXE_distcache-chaos"));
    let binary = chaos.with_file_name("distcache");
    if !binary.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "distcache", "--bin", "distcache"])
            .status()
            .expect("run cargo build -p distcache");
        assert!(status.success(), "cargo build -p distcache failed");
    }
    assert!(
        binary.is_file(),
        "no distcache binary at {}",
        binary.display()
    );
    binary
}

#[test]
fn the_harness_reports_a_violation_against_a_build_that_acks_before_commit() {
    let out = tempfile::tempdir().expect("temporary directory");
    let run_dir = out.path().join("broken");
    let output = Command::new(env!("CARGO_BIN_EXE_distcache-chaos"))
        .args(["--seed", "3", "--seconds", "20", "--heal-seconds", "6"])
        .args(["--faults", "kill-leader,pause-leader"])
        .args(["--extra-config", "unsafe_ack_before_commit = true"])
        .arg("--distcache-bin")
        .arg(distcache_binary())
        .arg("--out")
        .arg(&run_dir)
        .output()
        .expect("run distcache-chaos");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected a finding (exit 1)\nstdout: {stdout}\nstderr: {stderr}"
    );
    let verdict = stdout.lines().last().unwrap_or_default();
    assert!(
        verdict.contains("seed=3 FAIL"),
        "verdict line: {verdict}\nstderr: {stderr}"
    );
    let report = std::fs::read_to_string(run_dir.join("report.md")).expect("report.md");
    assert!(
        report.contains("not linearizable") || report.contains("acknowledged appends lost"),
        "the report names neither a violation nor a lost write:\n{report}"
    );
    if report.contains("not linearizable") {
        assert!(
            run_dir.join("violation.html").is_file(),
            "a violation without its picture"
        );
    }
}
