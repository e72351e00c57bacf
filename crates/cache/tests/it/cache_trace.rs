//! The `cache-trace` binary: output format, policies, sizes, bad input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(arguments: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cache-trace"))
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cache-trace starts");
    if let Some(mut stdin) = child.stdin.take() {
        // The tool may exit before reading everything on bad arguments.
        let _ignored_broken_pipe = stdin.write_all(input.as_bytes());
    }
    child.wait_with_output().expect("cache-trace finishes")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

#[test]
fn lru_by_entry_count_gives_exact_hits() {
    // Capacity 2: a b a c b a -> hits: a(3rd). c evicts b; b misses and
    // evicts a; a misses. Hits = 1 of 6.
    let output = run(
        &["--policy", "lru", "--capacity", "2"],
        "a\nb\na\nc\nb\na\n",
    );
    assert_eq!(
        stdout_of(&output),
        "policy=lru capacity=2 requests=6 hits=1 hit_ratio=0.166667\n"
    );
}

#[test]
fn all_prints_one_line_per_policy_and_best_is_the_default() {
    let trace: String = (0..1_000)
        .map(|index| format!("k{}\n", index % 50))
        .collect();
    let all = stdout_of(&run(&["--policy", "all", "--capacity", "100"], &trace));
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), cache::PolicyKind::ALL.len());
    for (line, kind) in lines.iter().zip(cache::PolicyKind::ALL) {
        assert_eq!(
            *line,
            format!("policy={kind} capacity=100 requests=1000 hits=950 hit_ratio=0.950000")
        );
    }
    let best = stdout_of(&run(&["--policy", "best", "--capacity", "100"], &trace));
    assert!(
        best.starts_with("policy=best capacity=100 requests=1000 hits=950"),
        "{best}"
    );
}

#[test]
fn sizes_count_bytes() {
    // Capacity 100 bytes: "big" (80) and "small" (30) cannot both stay.
    let trace = "big 80\nsmall 30\nbig 80\nsmall 30\n";
    let output = stdout_of(&run(
        &["--policy", "lru", "--capacity", "100", "--sizes"],
        trace,
    ));
    assert_eq!(
        output,
        "policy=lru capacity=100 requests=4 hits=0 hit_ratio=0.000000\n"
    );
    let roomy = stdout_of(&run(
        &["--policy", "lru", "--capacity", "110", "--sizes"],
        trace,
    ));
    assert!(roomy.contains("hits=2"), "{roomy}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["--policy", "fifo", "--capacity", "10"],
            "a\n",
            "unknown policy",
        ),
        (
            &["--policy", "lru", "--capacity", "0"],
            "a\n",
            "--capacity must be positive",
        ),
        (
            &["--policy", "lru", "--capacity", "10", "--sizes"],
            "a x\n",
            "line 1: malformed size",
        ),
        (
            &["--policy", "lru", "--capacity", "10", "--sizes"],
            "a 1\nb\n",
            "line 2: missing size",
        ),
        (&["--policy", "lru", "--capacity", "-3"], "a\n", "error"),
    ];
    for (arguments, input, expected) in cases {
        let output = run(arguments, input);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{arguments:?} should fail");
        assert!(
            stderr.contains(expected),
            "{arguments:?}: stderr {stderr:?}"
        );
        assert!(
            output.stdout.is_empty(),
            "{arguments:?}: no report on error"
        );
    }
}
