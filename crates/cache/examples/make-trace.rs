//! Writes a deterministic synthetic trace for `cache-trace`, one key per line.
//!
//! ```text
//! cargo run --release -p cache --example make-trace -- zipf  ITEMS EXPONENT LENGTH SEED
//! cargo run --release -p cache --example make-trace -- scans ITEMS EXPONENT LENGTH SEED SCAN_EVERY SCAN_LENGTH
//! cargo run --release -p cache --example make-trace -- shifting WORKING_SET EXPONENT LENGTH SEED SHIFT_EVERY
//! ```
//!
//! The hit-ratio table's shifting trace is `shifting 100000 0.8 2000000 4 4`.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use cache::workload::{shifting_trace, zipf_trace, zipf_with_scans_trace};

fn parse<T: std::str::FromStr>(
    arguments: &[String],
    index: usize,
    name: &str,
) -> Result<T, String> {
    let text = arguments
        .get(index)
        .ok_or_else(|| format!("missing {name}"))?;
    text.parse().map_err(|_| format!("bad {name}: {text:?}"))
}

fn run(arguments: &[String]) -> Result<Vec<u64>, String> {
    let kind = arguments.first().map(String::as_str);
    let items: u64 = parse(arguments, 1, "ITEMS")?;
    let exponent: f64 = parse(arguments, 2, "EXPONENT")?;
    let length: usize = parse(arguments, 3, "LENGTH")?;
    let seed: u64 = parse(arguments, 4, "SEED")?;
    if items == 0 || !(exponent.is_finite() && exponent >= 0.0) {
        return Err("ITEMS must be positive and EXPONENT a non-negative number".to_owned());
    }
    match kind {
        Some("zipf") => Ok(zipf_trace(items, exponent, length, seed)),
        Some("scans") => {
            let scan_every: usize = parse(arguments, 5, "SCAN_EVERY")?;
            let scan_length: usize = parse(arguments, 6, "SCAN_LENGTH")?;
            if scan_every == 0 {
                return Err("SCAN_EVERY must be positive".to_owned());
            }
            Ok(zipf_with_scans_trace(
                items,
                exponent,
                length,
                scan_every,
                scan_length,
                seed,
            ))
        }
        Some("shifting") => {
            let shift_every: usize = parse(arguments, 5, "SHIFT_EVERY")?;
            if shift_every == 0 {
                return Err("SHIFT_EVERY must be positive".to_owned());
            }
            Ok(shifting_trace(items, exponent, length, shift_every, seed))
        }
        _ => Err("first argument must be zipf, scans or shifting".to_owned()),
    }
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let trace = match run(&arguments) {
        Ok(trace) => trace,
        Err(message) => {
            eprintln!("make-trace: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut output = BufWriter::new(io::stdout().lock());
    for key in trace {
        if writeln!(output, "{key}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    if output.flush().is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
