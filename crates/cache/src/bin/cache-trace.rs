//! `cache-trace`: replays a key trace against the eviction policies and
//! prints hit ratios.
//!
//! ```text
//! cache-trace --policy NAME --capacity N [--sizes] < trace
//! ```
//!
//! Each line of the trace is one lookup; a miss inserts the key. The key is
//! the first whitespace-separated column. Without `--sizes` every entry
//! weighs 1 and the capacity counts entries (further columns are ignored);
//! with `--sizes` the second column is the entry's size in bytes and the
//! capacity is in bytes. `NAME` is a policy (`lru`, `lfu`, `sieve`,
//! `s3fifo`, `adaptive`), `best` (the store's default policy) or `all` (one line per
//! policy). Output, one line per policy:
//!
//! ```text
//! policy=NAME capacity=N requests=R hits=H hit_ratio=0.xxxxxx
//! ```

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use cache::hash::hash_of;
use cache::table::{Limits, Table};
use cache::{PolicyKind, PolicyRevision};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "cache-trace",
    about = "Replay a key trace and print hit ratios"
)]
struct Arguments {
    /// lru, lfu, sieve, s3fifo, adaptive, best (the default policy) or all.
    #[arg(long)]
    policy: String,
    /// Capacity in entries (or in bytes with --sizes); must be positive.
    #[arg(long)]
    capacity: u64,
    /// The second column of each line is the entry size in bytes.
    #[arg(long)]
    sizes: bool,
}

/// One policy being replayed.
struct Replay {
    label: String,
    table: Table<Vec<u8>, ()>,
    hits: u64,
}

impl Replay {
    fn lookup(&mut self, key: &[u8], key_hash: u64, weight: u64) {
        match self.table.find_hashed(key_hash, key) {
            Some(slot) => {
                self.table.record_hit(slot);
                self.hits += 1;
            }
            // An entry larger than the whole cache is a miss that cannot be
            // cached; counting it keeps the request total honest.
            None => {
                let _too_heavy_is_just_a_miss =
                    self.table.insert(key.to_vec(), key_hash, (), weight, None);
            }
        }
    }
}

fn parse_policies(name: &str) -> Result<Vec<(String, PolicyKind)>, String> {
    match name {
        "all" => Ok(PolicyKind::ALL
            .iter()
            .map(|kind| (kind.name().to_owned(), *kind))
            .collect()),
        "best" => Ok(vec![("best".to_owned(), PolicyKind::DEFAULT)]),
        other => other
            .parse::<PolicyKind>()
            .map(|kind| vec![(other.to_owned(), kind)])
            .map_err(|error| format!("{error}, best or all")),
    }
}

/// The key and weight of one trace line, or `None` for a blank line.
fn parse_line(
    line: &str,
    with_sizes: bool,
    line_number: u64,
) -> Result<Option<(&str, u64)>, String> {
    let mut columns = line.split_whitespace();
    let Some(key) = columns.next() else {
        return Ok(None);
    };
    if !with_sizes {
        return Ok(Some((key, 1)));
    }
    let size = columns
        .next()
        .ok_or_else(|| format!("line {line_number}: missing size column after key {key:?}"))?;
    let size_bytes = match size.parse::<u64>() {
        Ok(size_bytes) if size_bytes > 0 => size_bytes,
        _ => {
            return Err(format!(
                "line {line_number}: malformed size {size:?} (need a positive integer)"
            ));
        }
    };
    if let Some(extra) = columns.next() {
        return Err(format!(
            "line {line_number}: unexpected third column {extra:?}"
        ));
    }
    Ok(Some((key, size_bytes)))
}

fn run(arguments: &Arguments) -> Result<String, String> {
    if arguments.capacity == 0 {
        return Err("--capacity must be positive".to_owned());
    }
    let limits = Limits {
        capacity_weight: arguments.capacity,
        capacity_entries: None,
    };
    let mut replays: Vec<Replay> = parse_policies(&arguments.policy)?
        .into_iter()
        .map(|(label, kind)| {
            let mut table = Table::new(kind, limits);
            // What a cluster's stores run once their group has logged it.
            table.set_policy_revision(PolicyRevision::LATEST);
            Replay {
                label,
                table,
                hits: 0,
            }
        })
        .collect();
    let mut requests = 0u64;
    let stdin = io::stdin();
    for (index, line) in stdin.lock().lines().enumerate() {
        let line_number = index as u64 + 1;
        let line = line.map_err(|error| format!("line {line_number}: cannot read: {error}"))?;
        let Some((key, weight)) = parse_line(&line, arguments.sizes, line_number)? else {
            continue;
        };
        let key_hash = hash_of(key.as_bytes());
        for replay in &mut replays {
            replay.lookup(key.as_bytes(), key_hash, weight);
        }
        requests += 1;
    }
    let mut report = String::new();
    for replay in &replays {
        let hit_ratio = if requests == 0 {
            0.0
        } else {
            replay.hits as f64 / requests as f64
        };
        report.push_str(&format!(
            "policy={} capacity={} requests={requests} hits={} hit_ratio={hit_ratio:.6}\n",
            replay.label, arguments.capacity, replay.hits
        ));
    }
    Ok(report)
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    match run(&arguments) {
        Ok(report) => {
            let mut stdout = io::stdout();
            if stdout
                .write_all(report.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("cache-trace: error: {message}");
            ExitCode::FAILURE
        }
    }
}
