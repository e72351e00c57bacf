//! The applications, compiled in and chosen by name (6.5840 loads them as
//! Go plugins; here they are an enum).
//!
//! | name | map | reduce | what a test checks with it |
//! |---|---|---|---|
//! | `wc` | `(word, n)` per distinct word (combined; see [`wc`]) | the sum | word counts |
//! | `indexer` | one `(word, document)` per distinct word | `count doc1,doc2,...` | an inverted index |
//! | `crash` | like `nocrash`, but 33% of calls crash the worker and 33% stall it up to 10 s | | fault tolerance |
//! | `nocrash` | `a`: file name, `b`: its length, `c`: contents length, `d`: `xyzzy` | sorted values joined by spaces | the crash test's reference |
//! | `mtiming` | records how many workers are mapping at once | sorted values | map parallelism |
//! | `rtiming` | ten keys `a`..`j` | how many workers are reducing at once | reduce parallelism |
//! | `jobcount` | leaves a marker file per map call, sleeps 2-5 s | the number of markers | each map task runs once |
//! | `early_exit` | `(file name, "1")` | the count; keys with `sherlock` or `tom` sleep 3 s | no worker exits early |
//!
//! Applications are async because the lab's test applications sleep and
//! touch the shared directory; [`AppContext`] gives them the directory, the
//! worker's identity (the lab uses the process id) and the worker's seeded
//! random number generator.

mod crash;
mod early_exit;
mod indexer;
mod jobcount;
mod timing;
pub mod wc;

use std::fmt;
use std::str::FromStr;

use rand_chacha::ChaCha8Rng;

use crate::KeyValue;
use crate::storage::{JobDir, StorageError};

/// One of the compiled-in applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum App {
    Wc,
    Indexer,
    Crash,
    NoCrash,
    MapTiming,
    ReduceTiming,
    JobCount,
    EarlyExit,
}

impl App {
    /// Every application, in the order of the table above.
    pub const ALL: [App; 8] = [
        App::Wc,
        App::Indexer,
        App::Crash,
        App::NoCrash,
        App::MapTiming,
        App::ReduceTiming,
        App::JobCount,
        App::EarlyExit,
    ];

    /// The name on the command line (the lab's plugin name).
    pub fn name(self) -> &'static str {
        match self {
            App::Wc => "wc",
            App::Indexer => "indexer",
            App::Crash => "crash",
            App::NoCrash => "nocrash",
            App::MapTiming => "mtiming",
            App::ReduceTiming => "rtiming",
            App::JobCount => "jobcount",
            App::EarlyExit => "early_exit",
        }
    }

    /// Map: `filename` is the input's name as the coordinator was given it,
    /// `contents` its text (invalid UTF-8 replaced by U+FFFD, which is not a
    /// letter, as Go's runes would be).
    pub async fn map(
        self,
        context: &mut AppContext<'_>,
        filename: &str,
        contents: &str,
    ) -> Result<Vec<KeyValue>, AppError> {
        match self {
            App::Wc => Ok(wc::map(contents)),
            App::Indexer => Ok(indexer::map(filename, contents)),
            App::Crash => {
                crash::maybe_crash(context).await?;
                Ok(crash::map(filename, contents))
            }
            App::NoCrash => Ok(crash::map(filename, contents)),
            App::MapTiming => timing::map(context).await,
            App::ReduceTiming => Ok(timing::reduce_timing_map()),
            App::JobCount => jobcount::map(context).await,
            App::EarlyExit => Ok(early_exit::map(filename)),
        }
    }

    /// Reduce: all values emitted for `key`, in the order the intermediate
    /// files hold them (map task order, then emission order).
    pub async fn reduce(
        self,
        context: &mut AppContext<'_>,
        key: &str,
        values: &[String],
    ) -> Result<String, AppError> {
        match self {
            App::Wc => wc::reduce(key, values),
            App::Indexer => Ok(indexer::reduce(values)),
            App::Crash => {
                crash::maybe_crash(context).await?;
                Ok(sorted_and_joined(values))
            }
            App::NoCrash | App::MapTiming => Ok(sorted_and_joined(values)),
            App::ReduceTiming => timing::reduce(context).await,
            App::JobCount => jobcount::reduce(context),
            App::EarlyExit => Ok(early_exit::reduce(key, values).await),
        }
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An application name that is not compiled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown application {name:?}; known: wc, indexer, crash, nocrash, mtiming, rtiming, jobcount, early_exit"
)]
pub struct UnknownApp {
    pub name: String,
}

impl FromStr for App {
    type Err = UnknownApp;

    fn from_str(name: &str) -> Result<App, UnknownApp> {
        App::ALL
            .into_iter()
            .find(|app| app.name() == name)
            .ok_or_else(|| UnknownApp {
                name: name.to_string(),
            })
    }
}

/// What an application call may use besides its arguments: the state a Go
/// plugin would find in its process.
pub struct AppContext<'a> {
    /// The shared job directory (the lab's current directory).
    pub dir: &'a dyn JobDir,
    /// This worker's identity, unique among the job's workers (the lab's
    /// process id).
    pub worker_id: u64,
    /// The worker's seeded generator (the lab's `crypto/rand` and
    /// `math/rand`).
    pub rng: &'a mut ChaCha8Rng,
    /// Map calls this worker has made so far (`jobcount`'s package counter).
    pub map_calls: &'a mut u64,
    /// When this worker started, for `mtiming`'s timestamps.
    pub started: tokio::time::Instant,
}

/// Why an application call did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The `crash` application decided to crash this worker (the lab's
    /// `os.Exit(1)`). The worker stops at once, writing nothing more.
    #[error("the crash application crashed this worker on purpose")]
    Crash,
    /// A value that this application's map cannot have produced (a bug, or
    /// an intermediate file from another application).
    #[error("key {key:?}: malformed value {value:?}")]
    Malformed { key: String, value: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Values sorted and joined with single spaces (several test applications'
/// reduce, sorted so the output is deterministic).
fn sorted_and_joined(values: &[String]) -> String {
    let mut sorted: Vec<&str> = values.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for app in App::ALL {
            assert_eq!(app.name().parse::<App>(), Ok(app));
        }
        let error = "wordcount".parse::<App>().unwrap_err();
        assert!(error.to_string().contains("wordcount"), "{error}");
    }
}
