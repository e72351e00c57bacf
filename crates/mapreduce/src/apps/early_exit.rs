//! `early_exit`: some reduces are slow, to catch workers or a coordinator
//! that exit before the job is complete.

use std::time::Duration;

use crate::KeyValue;

pub(super) fn map(filename: &str) -> Vec<KeyValue> {
    vec![KeyValue::new(filename, "1")]
}

pub(super) async fn reduce(key: &str, values: &[String]) -> String {
    if key.contains("sherlock") || key.contains("tom") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    values.len().to_string()
}
