//! Writes that record what was acknowledged, reading it all back, and
//! waiting on a condition with a bound.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use distcache_client::Client;
use tokio::time::Instant;

/// Writes `key-<i>` = `<round>-<i>` for every `i` in `keys`, recording
/// each acknowledged write in `acknowledged`; a failed write fails the test.
pub async fn write_keys(
    client: &Client,
    round: &str,
    keys: std::ops::Range<u32>,
    acknowledged: &mut BTreeMap<String, String>,
) {
    for i in keys {
        let key = format!("key-{i}");
        let value = format!("{round}-{i}");
        client
            .set(key.as_bytes(), value.as_bytes())
            .await
            .unwrap_or_else(|error| panic!("write {key} in round {round} failed: {error}"));
        acknowledged.insert(key, value);
    }
}

/// Reads every acknowledged key back: each must hold its last
/// acknowledged value.
pub async fn check_all(client: &Client, acknowledged: &BTreeMap<String, String>, phase: &str) {
    for (key, value) in acknowledged {
        let got = client
            .get(key.as_bytes())
            .await
            .unwrap_or_else(|error| panic!("{phase}: read of {key} failed: {error}"));
        assert_eq!(
            got.as_deref(),
            Some(value.as_bytes()),
            "{phase}: {key} lost its acknowledged value {value:?}"
        );
    }
}

/// Calls `check` every `poll` until it answers `Some`, for at most
/// `timeout`; fails the test naming `what` otherwise.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, poll: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(poll).await;
    }
}
