//! `mtiming` and `rtiming`: measure how many workers run a phase at once.

use std::time::Duration;

use super::{AppContext, AppError};
use crate::KeyValue;

/// The lab's `nparallel`: announce ourselves with a marker file, count the
/// markers of workers in the same phase, stay busy for a second so that
/// concurrent workers overlap, then withdraw the marker.
///
/// The lab also asks the kernel whether each marker's process is still
/// alive; we have no such question to ask of a simulated node, so a worker
/// killed inside this second would be counted forever. The parallelism
/// tests crash nobody.
async fn workers_in_phase(context: &mut AppContext<'_>, phase: &str) -> Result<usize, AppError> {
    let marker = format!("mr-worker-{phase}-{}", context.worker_id);
    context.dir.write_atomic(&marker, b"x")?;
    let running = context.dir.list(&format!("mr-worker-{phase}-"))?.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    context.dir.remove(&marker)?;
    Ok(running)
}

pub(super) async fn map(context: &mut AppContext<'_>) -> Result<Vec<KeyValue>, AppError> {
    // Seconds since this worker started, where the lab prints seconds since
    // the epoch: only the lines' existence is checked, not the values.
    let seconds = context.started.elapsed().as_secs_f64();
    let running = workers_in_phase(context, "map").await?;
    let worker = context.worker_id;
    Ok(vec![
        KeyValue::new(format!("times-{worker}"), format!("{seconds:.1}")),
        KeyValue::new(format!("parallel-{worker}"), running.to_string()),
    ])
}

pub(super) fn reduce_timing_map() -> Vec<KeyValue> {
    ('a'..='j')
        .map(|letter| KeyValue::new(letter.to_string(), "1"))
        .collect()
}

pub(super) async fn reduce(context: &mut AppContext<'_>) -> Result<String, AppError> {
    Ok(workers_in_phase(context, "reduce").await?.to_string())
}
