//! Every bad-configuration example in `docs/user-guide.md` gets the error
//! the guide says it gets; the committed example configurations are valid.

#![cfg(not(madsim))]

use std::path::{Path, PathBuf};
use std::process::Command;

use distcache::NodeConfig;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ```toml blocks of the guide whose first line is `# expect: ...`:
/// (expected error, whole block).
fn documented_bad_configs() -> Vec<(String, String)> {
    let guide = std::fs::read_to_string(repository().join("docs/user-guide.md"))
        .expect("read docs/user-guide.md");
    let mut examples = Vec::new();
    let mut block: Option<Vec<&str>> = None;
    for line in guide.lines() {
        match (&mut block, line.trim_end()) {
            (None, "```toml") => block = Some(Vec::new()),
            (Some(lines), "```") => {
                if let Some(expected) = lines
                    .first()
                    .and_then(|first| first.strip_prefix("# expect: "))
                {
                    examples.push((expected.to_string(), lines.join("\n")));
                }
                block = None;
            }
            (Some(lines), _) => lines.push(line),
            (None, _) => {}
        }
    }
    examples
}

fn load(text: &str) -> Result<(), String> {
    let config = NodeConfig::from_toml(text, "example.toml").map_err(|error| error.to_string())?;
    config
        .validate()
        .map(|_| ())
        .map_err(|error| error.to_string())
}

#[test]
fn every_documented_bad_config_gets_its_error() {
    let examples = documented_bad_configs();
    assert!(
        examples.len() >= 10,
        "found only {} examples",
        examples.len()
    );
    for (expected, text) in examples {
        let error = load(&text).expect_err(&format!("accepted a bad config:\n{text}"));
        assert!(
            error.starts_with(&expected),
            "expected the error\n  {expected}\ngot\n  {error}"
        );
    }
}

#[test]
fn committed_example_configs_are_valid() {
    for node in 1..=3 {
        let path = repository().join(format!("examples/cluster/node{node}.toml"));
        let text = std::fs::read_to_string(&path).expect("read an example config");
        load(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    }
}

/// The binary refuses a bad file before it starts anything: exit code 2,
/// the error on stderr, no data directory created.
#[test]
fn the_node_refuses_a_bad_config_before_starting() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data_dir = dir.path().join("data");
    let (_, text) = documented_bad_configs()
        .into_iter()
        .find(|(expected, _)| expected.contains("already used"))
        .expect("the port clash example");
    let text = text.replace("/var/lib/distcache/node1", &data_dir.display().to_string());
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).expect("write the config");
    let output = Command::new(env!("CARGO_BIN_EXE_distcache"))
        .args(["node", "--config"])
        .arg(&path)
        .output()
        .expect("run distcache");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("configuration error in `nodes[0].controller_port`"),
        "{stderr}"
    );
    assert!(
        !data_dir.exists(),
        "a refused node created its data directory"
    );
}
