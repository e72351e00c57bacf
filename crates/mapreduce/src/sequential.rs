//! The single-process reference (the lab's `mrsequential`): map every
//! input, sort all pairs, reduce, one output file `mr-out-0`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::apps::{App, AppContext, AppError};
use crate::storage::{JobDir, StorageError};
use crate::{output_name, reduce_sorted};

/// Why a sequential run wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SequentialError {
    #[error("input {name}: {source}")]
    Input { name: String, source: StorageError },
    #[error("application {app}: {source}")]
    App { app: App, source: AppError },
    #[error("writing the output: {0}")]
    Output(StorageError),
}

/// The output text (`key value` lines, sorted by key) of `app` over `inputs`.
///
/// Every input is read before any map runs, so a missing input fails the
/// run before it does any work.
pub async fn sequential_output(
    app: App,
    dir: &dyn JobDir,
    inputs: &[String],
    seed: u64,
) -> Result<String, SequentialError> {
    let mut contents = Vec::with_capacity(inputs.len());
    for name in inputs {
        let bytes = dir.read(name).map_err(|source| SequentialError::Input {
            name: name.clone(),
            source,
        })?;
        contents.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut map_calls = 0;
    let mut context = AppContext {
        dir,
        worker_id: 0,
        rng: &mut rng,
        map_calls: &mut map_calls,
        started: labrpc::runtime::now(),
    };
    let app_error = |source| SequentialError::App { app, source };
    let mut pairs = Vec::new();
    for (name, text) in inputs.iter().zip(&contents) {
        pairs.extend(app.map(&mut context, name, text).await.map_err(app_error)?);
    }
    reduce_sorted(app, &mut context, pairs)
        .await
        .map_err(app_error)
}

/// Runs [`sequential_output`] and publishes it atomically as `mr-out-0`.
pub async fn run_sequential(
    app: App,
    dir: &dyn JobDir,
    inputs: &[String],
    seed: u64,
) -> Result<(), SequentialError> {
    let output = sequential_output(app, dir, inputs, seed).await?;
    dir.write_atomic(&output_name(0), output.as_bytes())
        .map_err(SequentialError::Output)?;
    dir.sync().map_err(SequentialError::Output)
}
