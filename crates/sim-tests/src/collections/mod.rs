//! A workload of Redis's collection commands (hashes, lists, sets, sorted
//! sets, a plain string beside them) for the simulation tests and the
//! swarm, recorded for the linearizability checker's
//! [`CollectionsModel`](linearizability::CollectionsModel).
//!
//! Each command is drawn as the model's [`CollectionsInput`] over the keys
//! of one hash tag, turned into the `api::Op` the servers run
//! ([`to_op`]), and its answer turned back into the model's
//! [`CollectionsOutput`] ([`to_output`]). Keys and members come from
//! small pools, so that commands meet on the same keys and members, types
//! clash (`WRONGTYPE`), `STORE` forms overwrite keys of other types, and
//! an `SPOP` whose outcome is unknown leaves only a few possibilities for
//! the model to track.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | running a command through a clerk, recorded ([`run_one`], [`run_input`]) |
//! | `draw.rs` | the random draw ([`random_command`]) and the keys of a tag ([`tag_keys`]) |
//! | `translate.rs` | the model's command to an `api::Op` ([`to_op`]) and the answer back ([`to_output`]) |
//! | `replica.rs` | one replica's contents, key by key ([`replica_contents`]), for the swarm's comparison |

mod draw;
mod replica;
mod translate;

use api::KvClient;
use linearizability::{CollectionsInput, CollectionsOutput, Recorder};
use madsim::rand::{Rng, thread_rng};

pub use draw::{random_command, tag_keys};
pub use replica::replica_contents;
pub use translate::{to_op, to_output};

/// The recorder of a collections history.
pub type CollectionsRecorder = Recorder<CollectionsInput, CollectionsOutput>;

/// Runs one random command on a key of `tag` through `clerk`, recorded in
/// `recorder` (times in µs since `start`). Returns whether its outcome is
/// known.
///
/// # Panics
///
/// On an answer no collection command gives (see [`to_output`]).
pub async fn run_one(
    clerk: &impl KvClient,
    recorder: &CollectionsRecorder,
    start: tokio::time::Instant,
    client: u64,
    tag: &str,
) -> bool {
    let (input, seed) = {
        let mut rng = thread_rng();
        (random_command(&mut rng, tag), rng.r#gen::<u64>())
    };
    run_input(clerk, recorder, start, client, input, seed).await
}

/// Runs `input` (with `seed` for a random command) through `clerk`,
/// recorded as [`run_one`] does. Returns whether its outcome is known.
///
/// # Panics
///
/// On an answer no collection command gives (see [`to_output`]).
pub async fn run_input(
    clerk: &impl KvClient,
    recorder: &CollectionsRecorder,
    start: tokio::time::Instant,
    client: u64,
    input: CollectionsInput,
    seed: u64,
) -> bool {
    let now_us = || elapsed_us(start);
    let op = to_op(&input, seed);
    let pending = recorder.call(client, input.clone(), now_us());
    let answer = clerk.run(op).await;
    match to_output(&input, answer) {
        Ok(Some(output)) => {
            recorder.returned(pending, output, now_us());
            true
        }
        Ok(None) => {
            recorder.timed_out(pending, now_us());
            false
        }
        Err(problem) => panic!("client {client}: {problem}"),
    }
}
fn elapsed_us(start: tokio::time::Instant) -> u64 {
    u64::try_from(labrpc::runtime::now().duration_since(start).as_micros()).unwrap_or(u64::MAX)
}
