//! The run's report: the fault timeline, unavailability per fault, and a
//! plot of throughput and latency over time (an SVG written by hand).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::workload::{Ending, OpRecord};

/// One fault as it happened.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FaultEvent {
    pub kind: String,
    /// What it hit ("node 3 (leader of group 1)").
    pub target: String,
    pub start_us: u64,
    pub end_us: u64,
}

/// How long after a fault started no operation on some key succeeded.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Unavailability {
    pub kind: String,
    pub target: String,
    /// The longest stretch, in the window from the fault's start to
    /// [`AFTER_FAULT_US`] after its end, during which a key had no
    /// successful operation although the workload kept trying it.
    pub longest_us: u64,
    pub key: String,
}

/// How long after a fault ends it is still blamed for a gap.
pub const AFTER_FAULT_US: u64 = 5_000_000;

/// Per fault: the longest gap between successful completions on one key
/// (only keys with at least one attempt in the window count).
pub fn unavailability(records: &[OpRecord], faults: &[FaultEvent]) -> Vec<Unavailability> {
    let mut by_key: BTreeMap<&str, Vec<(u64, u64, bool)>> = BTreeMap::new();
    for record in records {
        by_key.entry(record.input.key()).or_default().push((
            record.call_us,
            record.end_us,
            matches!(record.ending, Ending::Ok(_)),
        ));
    }
    faults
        .iter()
        .map(|fault| {
            let window_end = fault.end_us + AFTER_FAULT_US;
            let mut longest = (0, String::new());
            for (key, ops) in &by_key {
                // A key's gap starts at its first attempt after the fault
                // started (append keys are renamed every window, and a key
                // not yet in use is not unavailable).
                let Some(first_attempt) = ops
                    .iter()
                    .map(|&(call, _, _)| call)
                    .filter(|&call| call >= fault.start_us && call < window_end)
                    .min()
                else {
                    continue;
                };
                let mut successes: Vec<u64> = ops
                    .iter()
                    .filter(|&&(_, end, ok)| ok && end > first_attempt && end < window_end)
                    .map(|&(_, end, _)| end)
                    .collect();
                successes.sort_unstable();
                // Keys that are rarely touched (fresh append windows) would
                // blame the fault for the workload's own pauses; a gap counts
                // only up to the last attempt in the window.
                let last_attempt = ops
                    .iter()
                    .filter(|&&(call, _, _)| call < window_end)
                    .map(|&(call, _, _)| call)
                    .max()
                    .unwrap_or(first_attempt);
                let mut previous = first_attempt;
                let mut gap = 0;
                for &end in &successes {
                    gap = gap.max(end - previous);
                    previous = end;
                }
                if last_attempt > previous {
                    gap = gap.max(last_attempt - previous);
                }
                if gap > longest.0 {
                    longest = (gap, (*key).to_string());
                }
            }
            Unavailability {
                kind: fault.kind.clone(),
                target: fault.target.clone(),
                longest_us: longest.0,
                key: longest.1,
            }
        })
        .collect()
}

/// Width of one plot bucket.
const BUCKET_US: u64 = 500_000;

/// Throughput (successful operations per second) and latency (the slowest
/// successful operation) per half second, failures and unknown outcomes per
/// half second, with the faults drawn as shaded spans.
pub fn plot_svg(records: &[OpRecord], faults: &[FaultEvent]) -> String {
    let end_us = records
        .iter()
        .map(|record| record.end_us)
        .max()
        .unwrap_or(0)
        + BUCKET_US;
    let buckets = usize::try_from(end_us / BUCKET_US)
        .unwrap_or(0)
        .clamp(1, 20_000);
    let mut ok = vec![0u64; buckets];
    let mut bad = vec![0u64; buckets];
    let mut latency = vec![0u64; buckets];
    for record in records {
        let bucket = usize::try_from(record.end_us / BUCKET_US)
            .unwrap_or(usize::MAX)
            .min(buckets - 1);
        match record.ending {
            Ending::Ok(_) => {
                ok[bucket] += 1;
                latency[bucket] = latency[bucket].max(record.end_us - record.call_us);
            }
            _ => bad[bucket] += 1,
        }
    }
    let (width, panel, margin) = (1000.0_f64, 180.0_f64, 50.0_f64);
    let height = margin * 3.0 + panel * 2.0;
    let x_of = |us: u64| margin + (us as f64 / end_us as f64) * (width - 2.0 * margin);
    let rate = |count: u64| count as f64 * 1_000_000.0 / BUCKET_US as f64;
    let ok_max = ok.iter().chain(&bad).map(|&c| rate(c)).fold(1.0, f64::max);
    let latency_max = latency
        .iter()
        .map(|&l| l as f64 / 1000.0)
        .fold(1.0, f64::max);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (index, fault) in faults.iter().enumerate() {
        let (x0, x1) = (x_of(fault.start_us), x_of(fault.end_us));
        let _ = writeln!(
            svg,
            r##"<rect x="{x0:.1}" y="{margin}" width="{:.1}" height="{:.1}" fill="#f5c6c6" opacity="0.6"><title>{} {}</title></rect>"##,
            (x1 - x0).max(1.0),
            height - 2.0 * margin,
            fault.kind,
            escape(&fault.target)
        );
        let y = margin - 4.0 - (index % 3) as f64 * 11.0;
        let _ = writeln!(
            svg,
            r##"<text x="{x0:.1}" y="{y:.1}" fill="#b3261e">{}</text>"##,
            fault.kind
        );
    }
    let panels = [
        (
            margin,
            "successful ops/s (blue), failed or unknown ops/s (red)",
        ),
        (margin * 2.0 + panel, "slowest successful op per 0.5 s (ms)"),
    ];
    for (top, title) in panels {
        let _ = writeln!(
            svg,
            r##"<rect x="{margin}" y="{top}" width="{}" height="{panel}" fill="none" stroke="#999"/><text x="{}" y="{}">{title}</text>"##,
            width - 2.0 * margin,
            margin + 4.0,
            top + 12.0
        );
    }
    let polyline = |values: &[f64], max: f64, top: f64, colour: &str| -> String {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let x = x_of(index as u64 * BUCKET_US + BUCKET_US / 2);
                let y = top + panel - (value / max) * (panel - 16.0);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        format!(
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        )
    };
    let ok_rates: Vec<f64> = ok.iter().map(|&count| rate(count)).collect();
    let bad_rates: Vec<f64> = bad.iter().map(|&count| rate(count)).collect();
    let latencies: Vec<f64> = latency.iter().map(|&l| l as f64 / 1000.0).collect();
    let _ = writeln!(svg, "{}", polyline(&ok_rates, ok_max, margin, "#1f5fbf"));
    let _ = writeln!(svg, "{}", polyline(&bad_rates, ok_max, margin, "#c62828"));
    let second = margin * 2.0 + panel;
    let _ = writeln!(
        svg,
        "{}",
        polyline(&latencies, latency_max, second, "#2e7d32")
    );
    let _ = writeln!(
        svg,
        r#"<text x="4" y="{}">{ok_max:.0}</text><text x="4" y="{}">{latency_max:.0}</text>"#,
        margin + 14.0,
        second + 14.0
    );
    let seconds = end_us / 1_000_000;
    let step = (seconds / 10).max(1);
    for second_mark in (0..=seconds).step_by(usize::try_from(step).unwrap_or(1)) {
        let x = x_of(second_mark * 1_000_000);
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{second_mark}s</text>"#,
            height - margin + 14.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Front;
    use linearizability::{KvInput, KvOutput};

    fn get(call_us: u64, end_us: u64, ok: bool) -> OpRecord {
        OpRecord {
            client: 1,
            front: Front::Grpc,
            input: KvInput::Get { key: "r0".into() },
            call_us,
            end_us,
            ending: if ok {
                Ending::Ok(KvOutput::Value(None))
            } else {
                Ending::Failed("timeout".into())
            },
        }
    }

    #[test]
    fn the_longest_gap_runs_from_the_fault_to_the_next_success() {
        let records = vec![
            get(0, 100, true),
            get(1_000_000, 4_000_000, false),
            get(4_000_000, 4_500_000, true),
            get(4_600_000, 4_700_000, true),
        ];
        let fault = FaultEvent {
            kind: "kill-leader".into(),
            target: "node 1".into(),
            start_us: 1_000_000,
            end_us: 3_000_000,
        };
        let gaps = unavailability(&records, std::slice::from_ref(&fault));
        assert_eq!(gaps[0].longest_us, 3_500_000);
        assert_eq!(gaps[0].key, "r0");
        let svg = plot_svg(&records, &[fault]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("kill-leader"));
    }
}
