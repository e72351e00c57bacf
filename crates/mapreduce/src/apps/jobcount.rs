//! `jobcount`: counts map calls through marker files, so a test can see
//! whether any map task ran more than once.

use std::time::Duration;

use rand::Rng;

use super::{AppContext, AppError};
use crate::KeyValue;

const MARKER_PREFIX: &str = "mr-worker-jobcount";

pub(super) async fn map(context: &mut AppContext<'_>) -> Result<Vec<KeyValue>, AppError> {
    let marker = format!(
        "{MARKER_PREFIX}-{}-{}",
        context.worker_id, context.map_calls
    );
    *context.map_calls += 1;
    context.dir.write_atomic(&marker, b"x")?;
    let busy_ms = 2_000 + context.rng.gen_range(0..3_000u64);
    tokio::time::sleep(Duration::from_millis(busy_ms)).await;
    Ok(vec![KeyValue::new("a", "x")])
}

pub(super) fn reduce(context: &mut AppContext<'_>) -> Result<String, AppError> {
    Ok(context.dir.list(MARKER_PREFIX)?.len().to_string())
}
