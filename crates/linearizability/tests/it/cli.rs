//! The `linearizability check` command: exit statuses, the one-line report,
//! bad-input messages and the HTML picture.

use std::path::PathBuf;
use std::process::{Command, Output};

const EXIT_LINEARIZABLE: i32 = 0;
const EXIT_NOT_LINEARIZABLE: i32 = 1;
const EXIT_UNKNOWN: i32 = 2;
const EXIT_BAD_INPUT: i32 = 3;

/// Writes `contents` to a file named after the test in the test scratch directory.
fn history_file(name: &str, contents: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}.json"));
    std::fs::write(&path, contents).expect("scratch directory is writable");
    path
}

fn run(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linearizability"))
        .args(arguments)
        .output()
        .expect("the binary runs")
}

fn check_file(name: &str, contents: &str, extra_arguments: &[&str]) -> Output {
    let path = history_file(name, contents);
    let path = path.to_str().expect("utf-8 path");
    let mut arguments = vec!["check", path];
    arguments.extend_from_slice(extra_arguments);
    run(&arguments)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_status(output: &Output, expected: i32) {
    assert_eq!(
        output.status.code(),
        Some(expected),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// Asserts exit 3 and that the message names `operation` and `field`.
fn assert_bad_input(output: &Output, operation: &str, field: &str) {
    assert_status(output, EXIT_BAD_INPUT);
    let message = stderr(output);
    assert!(
        message.contains(operation),
        "message should name {operation}: {message}"
    );
    assert!(
        message.contains(&format!("field \"{field}\"")),
        "message should name field {field}: {message}"
    );
}

const ISSUE_EXAMPLE: &str = r#"{ "model": "kv",
  "operations": [
    { "client": 3, "call": 1200, "return": 1450,
      "input": {"op": "append", "key": "k1", "value": "x"}, "output": {} },
    { "client": 4, "call": 1300, "return": null,
      "input": {"op": "put", "key": "k1", "value": "y"}, "output": null } ] }"#;

const STALE_READ: &str = r#"{ "model": "kv", "operations": [
    { "client": 1, "call": 0, "return": 10, "input": {"op": "put", "key": "k", "value": "x"}, "output": {} },
    { "client": 2, "call": 20, "return": 30, "input": {"op": "get", "key": "k"}, "output": {"value": null} } ] }"#;

/// Eight concurrent appends and a read nobody can explain: thousands of steps.
fn hard_history() -> String {
    let mut operations: Vec<String> = (0..8)
        .map(|client| {
            format!(
                r#"{{"client": {client}, "call": 0, "return": 100, "input": {{"op": "append", "key": "k", "value": "{client}"}}, "output": {{}}}}"#
            )
        })
        .collect();
    // A put of unknown outcome pending from the start keeps the lookahead
    // from pruning (it could reset the value before the read).
    operations.push(
        r#"{"client": 98, "call": 0, "return": null, "input": {"op": "put", "key": "k", "value": "p"}, "output": null}"#
            .to_string(),
    );
    operations.push(
        r#"{"client": 99, "call": 200, "return": 210, "input": {"op": "get", "key": "k"}, "output": {"value": "nope"}}"#
            .to_string(),
    );
    format!(
        r#"{{"model": "kv", "operations": [{}]}}"#,
        operations.join(",\n")
    )
}

#[test]
fn linearizable_history_exits_0_with_one_line() {
    let output = check_file("linearizable", ISSUE_EXAMPLE, &[]);
    assert_status(&output, EXIT_LINEARIZABLE);
    let report = stdout(&output);
    assert_eq!(report.lines().count(), 1, "{report}");
    assert!(report.starts_with("linearizable;"), "{report}");
    assert!(
        report.contains("2 operations (1 of unknown outcome)"),
        "{report}"
    );
    assert!(report.trim_end().ends_with(" ms"), "timing: {report}");
}

#[test]
fn register_history_is_read_too() {
    let register = r#"{"model": "register", "operations": [
        {"client": 1, "call": 0, "return": 10, "input": {"op": "write", "value": "a"}, "output": {}},
        {"client": 2, "call": 5, "return": 20, "input": {"op": "cas", "expected": "a", "value": "b"}, "output": {"ok": true}},
        {"client": 3, "call": 30, "return": 40, "input": {"op": "read"}, "output": {"value": "b"}} ]}"#;
    assert_status(&check_file("register", register, &[]), EXIT_LINEARIZABLE);
}

#[test]
fn violation_exits_1_and_explains_on_stderr() {
    let output = check_file("stale-read", STALE_READ, &[]);
    assert_status(&output, EXIT_NOT_LINEARIZABLE);
    let report = stdout(&output);
    assert_eq!(report.lines().count(), 1, "{report}");
    assert!(
        report.starts_with("not linearizable: key \"k\""),
        "{report}"
    );
    assert!(report.contains("stuck at operation 1"), "{report}");
    let explanation = stderr(&output);
    assert!(
        explanation.contains("Stuck at operation 1 (client 2"),
        "{explanation}"
    );
}

#[test]
fn exhausted_budget_exits_2() {
    let output = check_file("budget", &hard_history(), &["--max-steps", "10"]);
    assert_status(&output, EXIT_UNKNOWN);
    assert!(
        stdout(&output).starts_with("unknown:"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn exhausted_memo_memory_exits_2() {
    let output = check_file("memo", &hard_history(), &["--max-memo-mib", "0"]);
    assert_status(&output, EXIT_UNKNOWN);
    assert!(
        stdout(&output).starts_with("unknown:"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn ample_budget_decides_the_hard_history() {
    let output = check_file("hard", &hard_history(), &["--timeout-ms", "60000"]);
    assert_status(&output, EXIT_NOT_LINEARIZABLE);
}

#[test]
fn not_json_exits_3() {
    let output = check_file("not-json", "{ this is not json", &[]);
    assert_status(&output, EXIT_BAD_INPUT);
    assert!(
        stderr(&output).contains("not valid JSON"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn missing_operation_field_names_the_operation_and_field() {
    let missing_call = r#"{"model": "kv", "operations": [
        {"client": 1, "call": 0, "return": 10, "input": {"op": "get", "key": "k"}, "output": {"value": null}},
        {"client": 4, "return": 10, "input": {"op": "get", "key": "k"}, "output": {"value": null}} ]}"#;
    assert_bad_input(
        &check_file("missing-call", missing_call, &[]),
        "operation 1 (client 4)",
        "call",
    );
}

#[test]
fn missing_input_field_names_the_nested_field() {
    let missing_key = r#"{"model": "kv", "operations": [
        {"client": 2, "call": 0, "return": 10, "input": {"op": "put", "value": "v"}, "output": {}} ]}"#;
    assert_bad_input(
        &check_file("missing-key", missing_key, &[]),
        "operation 0 (client 2)",
        "input.key",
    );
}

#[test]
fn missing_output_field_names_the_nested_field() {
    let missing_ok = r#"{"model": "kv", "operations": [
        {"client": 2, "call": 0, "return": 10, "input": {"op": "cas", "key": "k", "expected": null, "value": "v"}, "output": {}} ]}"#;
    assert_bad_input(
        &check_file("missing-ok", missing_ok, &[]),
        "operation 0 (client 2)",
        "output.ok",
    );
}

#[test]
fn return_before_call_exits_3() {
    let backwards = r#"{"model": "kv", "operations": [
        {"client": 5, "call": 100, "return": 90, "input": {"op": "get", "key": "k"}, "output": {"value": null}} ]}"#;
    let output = check_file("backwards", backwards, &[]);
    assert_bad_input(&output, "operation 0 (client 5)", "return");
    assert!(
        stderr(&output).contains("before call time 100"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unknown_op_exits_3() {
    let push = r#"{"model": "kv", "operations": [
        {"client": 6, "call": 0, "return": 10, "input": {"op": "lpush", "key": "k"}, "output": {}} ]}"#;
    let output = check_file("unknown-op", push, &[]);
    assert_bad_input(&output, "operation 0 (client 6)", "input.op");
    assert!(stderr(&output).contains("\"lpush\""), "{}", stderr(&output));
}

#[test]
fn unknown_model_exits_3() {
    let output = check_file(
        "unknown-model",
        r#"{"model": "queue", "operations": []}"#,
        &[],
    );
    assert_status(&output, EXIT_BAD_INPUT);
    assert!(
        stderr(&output).contains("field \"model\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_operations_exits_3() {
    let output = check_file("no-operations", r#"{"model": "kv"}"#, &[]);
    assert_status(&output, EXIT_BAD_INPUT);
    assert!(
        stderr(&output).contains("field \"operations\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn output_without_return_exits_3() {
    let contradictory = r#"{"model": "kv", "operations": [
        {"client": 1, "call": 0, "return": null, "input": {"op": "put", "key": "k", "value": "v"}, "output": {}} ]}"#;
    assert_bad_input(
        &check_file("output-no-return", contradictory, &[]),
        "operation 0 (client 1)",
        "return",
    );
}

#[test]
fn negative_time_exits_3() {
    let negative = r#"{"model": "kv", "operations": [
        {"client": 1, "call": -5, "return": 10, "input": {"op": "delete", "key": "k"}, "output": {}} ]}"#;
    assert_bad_input(
        &check_file("negative", negative, &[]),
        "operation 0 (client 1)",
        "call",
    );
}

#[test]
fn unreadable_file_exits_3() {
    let output = run(&["check", "/nonexistent/history.json"]);
    assert_status(&output, EXIT_BAD_INPUT);
    assert!(
        stderr(&output).contains("cannot read"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_arguments_exit_3_not_2() {
    assert_status(&run(&["check"]), EXIT_BAD_INPUT);
    assert_status(&run(&["frobnicate"]), EXIT_BAD_INPUT);
    assert_status(
        &run(&["check", "x.json", "--timeout-ms", "soon"]),
        EXIT_BAD_INPUT,
    );
}

#[test]
fn help_exits_0() {
    let output = run(&["--help"]);
    assert_status(&output, EXIT_LINEARIZABLE);
    assert!(stdout(&output).contains("check"), "{}", stdout(&output));
}

#[test]
fn html_picture_is_self_contained_and_marks_the_stuck_operation() {
    let html_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-stale-read.html");
    let output = check_file(
        "html",
        STALE_READ,
        &["--html", html_path.to_str().expect("utf-8 path")],
    );
    assert_status(&output, EXIT_NOT_LINEARIZABLE);
    let page = std::fs::read_to_string(&html_path).expect("the HTML file was written");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<svg"), "draws an SVG");
    assert!(
        page.contains("stuck here"),
        "marks where linearization got stuck"
    );
    assert!(
        page.contains("class=\"stuck\""),
        "highlights the stuck operation"
    );
    assert!(
        page.contains("client 1") && page.contains("client 2"),
        "one row per client"
    );
    let lowercase = page.to_lowercase();
    for network_reference in ["http", "src=", "href=", "<script", "@import", "url("] {
        assert!(
            !lowercase.contains(network_reference),
            "page references {network_reference}"
        );
    }
}

#[test]
fn html_is_written_for_linearizable_histories_too() {
    let html_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-linearizable.html");
    let output = check_file(
        "html-ok",
        ISSUE_EXAMPLE,
        &["--html", html_path.to_str().expect("utf-8 path")],
    );
    assert_status(&output, EXIT_LINEARIZABLE);
    let page = std::fs::read_to_string(&html_path).expect("the HTML file was written");
    assert!(
        page.contains("#1 append(k1, &quot;x&quot;)"),
        "numbers the linearization: {page}"
    );
    assert!(
        page.contains("linearized #2"),
        "tooltips give the order: {page}"
    );
    assert!(
        page.contains("unknown"),
        "draws the unknown-outcome operation"
    );
}

// ---- Other formats ------------------------------------------------------------

const PORCUPINE_KV_STALE_READ: &str = "\
{:process 0, :type :invoke, :f :put, :key \"k\", :value \"x\"}
{:process 0, :type :ok, :f :put, :key \"k\", :value \"x\"}
{:process 1, :type :invoke, :f :get, :key \"k\", :value nil}
{:process 1, :type :ok, :f :get, :key \"k\", :value \"\"}
";

const JEPSEN_ETCD_FINE: &str = "\
INFO  jepsen.util - 0\t:invoke\t:write\t3
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:write\t3
INFO  jepsen.util - 1\t:ok\t:read\t3
INFO  jepsen.util - 2\t:invoke\t:cas\t[3 4]
INFO  jepsen.util - 2\t:info\t:cas\t:timed-out
";

#[test]
fn porcupine_kv_logs_are_read_with_the_kv_model() {
    let output = check_file(
        "porcupine-kv-stale",
        PORCUPINE_KV_STALE_READ,
        &["--format", "porcupine-kv"],
    );
    assert_status(&output, EXIT_NOT_LINEARIZABLE);
    assert!(
        stdout(&output).contains("kv model, 2 operations"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("get(k) -> null"),
        "{}",
        stderr(&output)
    );
    let fine = PORCUPINE_KV_STALE_READ.replace(":value \"\"}", ":value \"x\"}");
    let output = check_file("porcupine-kv-fine", &fine, &["--format", "porcupine-kv"]);
    assert_status(&output, EXIT_LINEARIZABLE);
}

#[test]
fn jepsen_etcd_logs_are_read_with_the_register_model() {
    let output = check_file(
        "jepsen-etcd-fine",
        JEPSEN_ETCD_FINE,
        &["--format", "jepsen-etcd"],
    );
    assert_status(&output, EXIT_LINEARIZABLE);
    assert!(
        stdout(&output).contains("register model, 3 operations (1 of unknown outcome)"),
        "{}",
        stdout(&output)
    );
    // The read starts after the write returned, and sees nothing.
    let stale = "INFO  jepsen.util - 0\t:invoke\t:write\t3\n\
                 INFO  jepsen.util - 0\t:ok\t:write\t3\n\
                 INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
                 INFO  jepsen.util - 1\t:ok\t:read\tnil\n";
    let output = check_file("jepsen-etcd-stale", stale, &["--format", "jepsen-etcd"]);
    assert_status(&output, EXIT_NOT_LINEARIZABLE);
}

#[test]
fn a_bad_log_line_exits_3_and_names_the_line() {
    let broken = PORCUPINE_KV_STALE_READ.replace(":f :get, :key \"k\", :value nil", ":f :get");
    let output = check_file(
        "porcupine-kv-broken",
        &broken,
        &["--format", "porcupine-kv"],
    );
    assert_status(&output, EXIT_BAD_INPUT);
    assert!(stderr(&output).contains("line 3"), "{}", stderr(&output));
    // A JSON history is not a log, for either reader.
    let output = check_file("jepsen-etcd-json", STALE_READ, &["--format", "jepsen-etcd"]);
    assert_status(&output, EXIT_BAD_INPUT);
    assert!(
        stderr(&output).contains("not a Jepsen log"),
        "{}",
        stderr(&output)
    );
    let output = check_file(
        "porcupine-kv-json",
        STALE_READ,
        &["--format", "porcupine-kv"],
    );
    assert_status(&output, EXIT_BAD_INPUT);
}
