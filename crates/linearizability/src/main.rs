//! The `linearizability` command: checks a JSON history file.
//!
//! ```text
//! linearizability check FILE [--format json|porcupine-kv|jepsen-etcd]
//!                             [--timeout-ms N] [--max-steps N] [--max-memo-mib N]
//!                             [--html OUT]
//! ```
//!
//! The verdict line is printed as soon as the verdict is known; the
//! explanation of a violation (stderr) and the HTML picture come after it,
//! with a search budget of their own.
//!
//! Exit status: 0 linearizable, 1 not linearizable, 2 unknown (budget ran out),
//! 3 bad input (or bad arguments, or the HTML file could not be written).
//! See the library docs for the JSON format.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use linearizability::{
    CheckOptions, CheckResult, DeadlineBudget, History, JsonHistory, JsonModel, KvModel,
    MemoryBudget, Model, RegisterModel, StepBudget, Unlimited, Verdict, check_with_options,
    formats, improve_explanation, render_html,
};

const EXIT_LINEARIZABLE: u8 = 0;
const EXIT_NOT_LINEARIZABLE: u8 = 1;
const EXIT_UNKNOWN: u8 = 2;
const EXIT_BAD_INPUT: u8 = 3;

#[derive(Parser)]
#[command(
    name = "linearizability",
    version,
    about = "Checks concurrent histories for linearizability"
)]
struct Arguments {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a JSON history. Exit status: 0 linearizable, 1 not, 2 unknown
    /// (budget ran out), 3 bad input.
    Check {
        /// The history file (JSON by default; see the crate docs for the format).
        file: PathBuf,
        /// The file's format: our JSON, or one of the logs in porcupine's
        /// test data (read with the kv and register models respectively).
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Wall-clock budget for the search, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        timeout_ms: u64,
        /// Also stop after this many search steps (deterministic, unlike the timeout).
        #[arg(long)]
        max_steps: Option<u64>,
        /// Also stop when the search's memo of one partition holds more than
        /// this many MiB (estimated; the process needs somewhat more).
        #[arg(long, default_value_t = 4096)]
        max_memo_mib: u64,
        /// Write a self-contained HTML picture of the history and verdict here.
        #[arg(long, value_name = "OUT")]
        html: Option<PathBuf>,
    },
}

/// The formats the command reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Our JSON history format (any model).
    Json,
    /// porcupine's 6.824 key/value logs (`test_data/kv/*.txt`).
    PorcupineKv,
    /// Jepsen's etcd register logs (`test_data/jepsen/etcd_*.log`).
    JepsenEtcd,
}

/// Everything a check needs besides the history.
struct CheckRequest {
    timeout: Duration,
    steps_max: Option<u64>,
    memo_bytes_max: u64,
    html: Option<PathBuf>,
    started: Instant,
}

fn main() -> ExitCode {
    let arguments = match Arguments::try_parse() {
        Ok(arguments) => arguments,
        Err(error) => {
            // clap exits with 2 on bad usage, but 2 means "unknown" here.
            let status = if error.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_LINEARIZABLE
            };
            // If even the usage message cannot be printed there is nothing left to report to.
            error.print().ok();
            return ExitCode::from(status);
        }
    };
    let Command::Check {
        file,
        format,
        timeout_ms,
        max_steps,
        max_memo_mib,
        html,
    } = arguments.command;
    let request = CheckRequest {
        timeout: Duration::from_millis(timeout_ms),
        steps_max: max_steps,
        memo_bytes_max: max_memo_mib.saturating_mul(1 << 20),
        html,
        started: wall_clock_now(),
    };
    match run_check(&file, format, &request) {
        Ok(verdict) => ExitCode::from(match verdict {
            Verdict::Linearizable => EXIT_LINEARIZABLE,
            Verdict::NotLinearizable => EXIT_NOT_LINEARIZABLE,
            Verdict::Unknown => EXIT_UNKNOWN,
        }),
        Err(message) => {
            eprintln!("bad input: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Reads, checks and reports one history. `Err` carries a bad-input message.
fn run_check(file: &PathBuf, format: Format, request: &CheckRequest) -> Result<Verdict, String> {
    let text = fs::read_to_string(file)
        .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    match format {
        Format::Json => run_json_check(&text, request),
        Format::PorcupineKv => {
            let history = formats::porcupine_kv::parse(&text).map_err(|error| error.to_string())?;
            check_and_report(&KvModel::new(), KvModel::NAME, &history, request)
        }
        Format::JepsenEtcd => {
            let history = formats::jepsen_etcd::parse(&text).map_err(|error| error.to_string())?;
            check_and_report(&RegisterModel, RegisterModel::NAME, &history, request)
        }
    }
}

fn run_json_check(text: &str, request: &CheckRequest) -> Result<Verdict, String> {
    let document = JsonHistory::parse(text).map_err(|error| error.to_string())?;
    match document.model.as_str() {
        KvModel::NAME => check_document(&KvModel::new(), &document, request),
        RegisterModel::NAME => check_document(&RegisterModel, &document, request),
        other => Err(format!(
            "field \"model\": unknown model {other:?} (expected {:?} or {:?})",
            KvModel::NAME,
            RegisterModel::NAME
        )),
    }
}

fn check_document<M: JsonModel>(
    model: &M,
    document: &JsonHistory,
    request: &CheckRequest,
) -> Result<Verdict, String> {
    let history = document.decode(model).map_err(|error| error.to_string())?;
    check_and_report(model, M::NAME, &history, request)
}

/// Checks, prints the verdict line at once, then explains (see the module docs).
fn check_and_report<M: Model>(
    model: &M,
    model_name: &str,
    history: &History<M::Input, M::Output>,
    request: &CheckRequest,
) -> Result<Verdict, String> {
    let deadline = request.started + request.timeout;
    let deadline_budget = DeadlineBudget::new(move || wall_clock_now() >= deadline);
    let memory_budget = MemoryBudget::bytes(request.memo_bytes_max);
    // The explanation is improved after the verdict line, not before it.
    let options = CheckOptions {
        improve_explanation: false,
        ..CheckOptions::default()
    };
    let mut result = match request.steps_max {
        Some(steps_max) => check_with_options(
            model,
            history,
            (StepBudget::new(steps_max), memory_budget, deadline_budget),
            options,
        ),
        None => check_with_options(
            model,
            history,
            (Unlimited, memory_budget, deadline_budget),
            options,
        ),
    };
    let elapsed = wall_clock_now().duration_since(request.started);
    println!(
        "{}; {model_name} model, {} operations ({} of unknown outcome); {:.3} ms",
        result.summary(),
        history.len(),
        history.unknown_outcome_count(),
        elapsed.as_secs_f64() * 1000.0
    );
    improve_explanation(model, history, &mut result);
    report_details(model, history, &result, request)?;
    Ok(result.verdict)
}

/// The explanation (stderr) and the optional HTML picture.
fn report_details<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    result: &CheckResult,
    request: &CheckRequest,
) -> Result<(), String> {
    if result.verdict == Verdict::NotLinearizable {
        eprintln!("{}", result.explain(model, history));
    }
    if let Some(path) = &request.html {
        fs::write(path, render_html(model, history, result))
            .map_err(|error| format!("cannot write HTML to {}: {error}", path.display()))?;
    }
    Ok(())
}

/// The wall clock, for the `--timeout-ms` budget and the timing line.
///
/// The project bans `Instant::now` so simulated code reads simulated time; this
/// binary is a production-only entry point that never runs in simulation, and
/// the search core itself still never reads a clock (it only calls the deadline
/// closure built from this).
#[allow(clippy::disallowed_methods)]
fn wall_clock_now() -> Instant {
    Instant::now()
}
