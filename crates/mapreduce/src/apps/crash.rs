//! `crash` and `nocrash`: a trivial job whose `crash` variant kills or
//! stalls the worker at random, to test the coordinator's re-issuing.

use std::time::Duration;

use rand::Rng;

use super::{AppContext, AppError};
use crate::KeyValue;

/// The lab's `maybeCrash`: with probability 0.33 the worker dies, with
/// probability 0.33 it stalls for up to 10 s, otherwise it carries on.
pub(super) async fn maybe_crash(context: &mut AppContext<'_>) -> Result<(), AppError> {
    let roll = context.rng.gen_range(0..1000u32);
    if roll < 330 {
        return Err(AppError::Crash);
    }
    if roll < 660 {
        let stall_ms = context.rng.gen_range(0..10_000u64);
        tokio::time::sleep(Duration::from_millis(stall_ms)).await;
    }
    Ok(())
}

pub(super) fn map(filename: &str, contents: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("a", filename),
        KeyValue::new("b", filename.len().to_string()),
        KeyValue::new("c", contents.len().to_string()),
        KeyValue::new("d", "xyzzy"),
    ]
}
