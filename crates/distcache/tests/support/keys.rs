//! Writes that record what was acknowledged, reading it all back, and
//! waiting on a condition with a bound.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Writes `w-<i>` = `v<i>` one after the other until `stop`, recording
/// each acknowledged write; failed writes (a group electing) are counted,
/// not recorded.
pub async fn write_until(
    client: distcache_client::Client,
    stop: Arc<AtomicBool>,
) -> (BTreeMap<String, String>, u64) {
    let mut acknowledged = BTreeMap::new();
    let mut failed = 0;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (key, value) = (format!("w-{i}"), format!("v{i}"));
        match client.set(key.as_bytes(), value.as_bytes()).await {
            Ok(()) => {
                acknowledged.insert(key, value);
            }
            Err(_) => failed += 1,
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (acknowledged, failed)
}
