//! [`render_html`]: one self-contained HTML page that draws a checked history.
//!
//! Each drawn partition gets an SVG: one row per client, one bar per operation
//! from its call to its return. The time axis is ordinal (every distinct call
//! or return time gets one column, in order), so short operations stay visible
//! next to long ones; exact times are in each bar's tooltip. Bars are coloured
//! by their part in the verdict:
//!
//! - green, numbered: in the linearization (or longest linearizable prefix),
//!   the number being its position;
//! - red: the operation where linearization got stuck, with a red line at its
//!   return ("stuck here");
//! - grey: not linearized;
//! - dashed, running to the right edge: outcome unknown.
//!
//! The page loads nothing from the network: the styles are inline, the SVG is
//! inline (HTML5 needs no namespace URL for it), and there is no script.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::History;
use crate::model::Model;
use crate::report::{CheckResult, PartitionResult, Verdict};

/// At most this many partitions are drawn when the history is linearizable (a
/// failing history draws only its failing partition).
pub const DRAWN_PARTITIONS_MAX: usize = 20;

/// At most this many operations of one partition are drawn (a window around
/// the stuck operation), so pictures of huge histories stay usable.
pub const DRAWN_OPERATIONS_MAX: usize = 300;

/// Columns are between these widths: wide enough for labels in small pictures,
/// narrow enough that big ones stay drawable (labels are then shortened; the
/// tooltip always has the full text).
const COLUMN_WIDTH_MIN_PX: usize = 36;
const COLUMN_WIDTH_MAX_PX: usize = 160;
const ROW_HEIGHT_PX: usize = 28;
const BAR_HEIGHT_PX: usize = 20;
const LABEL_WIDTH_PX: usize = 90;
/// Minimum distance between two time labels on the axis.
const TIME_LABEL_SPACING_PX: usize = 80;
const AXIS_HEIGHT_PX: usize = 24;
/// Roughly how wide one character of the bar labels is, to shorten labels that
/// would overflow their bar.
const CHARACTER_WIDTH_PX: usize = 7;

const STYLE: &str = "
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1.linearizable { color: #1b7a2e; } h1.not-linearizable { color: #b3261e; } h1.unknown { color: #8a6d00; }
section { margin-bottom: 2em; }
.scroll { overflow-x: auto; border: 1px solid #ddd; }
svg text { font-family: monospace; font-size: 12px; }
rect.linearized { fill: #cdeccf; stroke: #1b7a2e; }
rect.stuck { fill: #f6c9c5; stroke: #b3261e; stroke-width: 2; }
rect.pending { fill: #e6e6e6; stroke: #777; }
rect.unknown { stroke-dasharray: 4 3; fill-opacity: 0.5; }
g.operation:hover rect { stroke-width: 3; }
line.stuck { stroke: #b3261e; stroke-width: 2; }
text.stuck { fill: #b3261e; font-weight: bold; }
line.grid { stroke: #f0f0f0; }
text.time { fill: #777; font-size: 10px; text-anchor: middle; }
.legend span { display: inline-block; padding: 0 0.5em; margin-right: 0.5em; border: 1px solid #777; }
";

/// Renders `result` (the outcome of checking `history` against `model`) as an
/// HTML page.
pub fn render_html<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    result: &CheckResult,
) -> String {
    let drawn: Vec<&PartitionResult> = match result.failing_partition() {
        Some(failing) => vec![failing],
        None => result
            .partitions
            .iter()
            .take(DRAWN_PARTITIONS_MAX)
            .collect(),
    };
    let verdict_class = result.verdict.to_string().replace(' ', "-");
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    push_line(
        &mut page,
        format!("<title>linearizability: {}</title>", result.verdict),
    );
    push_line(
        &mut page,
        format!("<style>{STYLE}</style>\n</head>\n<body>"),
    );
    push_line(
        &mut page,
        format!("<h1 class=\"{verdict_class}\">{}</h1>", result.verdict),
    );
    push_line(&mut page, format!("<p>{}</p>", escape(&result.summary())));
    push_line(
        &mut page,
        "<p class=\"legend\"><span style=\"background:#cdeccf\">linearized (#order)</span>\
         <span style=\"background:#f6c9c5\">stuck here</span>\
         <span style=\"background:#e6e6e6\">not linearized</span>\
         <span style=\"border-style:dashed\">outcome unknown</span></p>",
    );
    if result.failing_partition().is_none() && result.partitions.len() > drawn.len() {
        push_line(
            &mut page,
            format!(
                "<p>Showing {} of {} partitions.</p>",
                drawn.len(),
                result.partitions.len()
            ),
        );
    }
    for partition in drawn {
        render_partition(&mut page, model, history, partition);
    }
    if result.failing_partition().is_some() {
        push_line(
            &mut page,
            format!(
                "<h2>Explanation</h2>\n<pre>{}</pre>",
                escape(&result.explain(model, history))
            ),
        );
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn render_partition<M: Model>(
    page: &mut String,
    model: &M,
    history: &History<M::Input, M::Output>,
    partition: &PartitionResult,
) {
    let operations = history.operations();
    let drawn = drawn_operations(history, partition);
    // Ordinal time axis: the column of each distinct known time.
    let times: BTreeSet<u64> = drawn
        .iter()
        .flat_map(|&index| {
            [
                Some(operations[index].call_time),
                operations[index].return_time(),
            ]
        })
        .flatten()
        .collect();
    let column_of: BTreeMap<u64, usize> = times
        .iter()
        .enumerate()
        .map(|(column, &time)| (time, column))
        .collect();
    let column_width = column_width(model, history, &drawn, &column_of);
    let x_of = |time: u64| LABEL_WIDTH_PX + column_of[&time] * column_width + column_width / 2;
    let clients: BTreeSet<u64> = drawn
        .iter()
        .map(|&index| operations[index].client)
        .collect();
    let row_of: BTreeMap<u64, usize> = clients
        .iter()
        .enumerate()
        .map(|(row, &client)| (client, row))
        .collect();
    let position_in_linearization: BTreeMap<usize, usize> = partition
        .linearization
        .iter()
        .enumerate()
        .map(|(position, &index)| (index, position + 1))
        .collect();

    let width = LABEL_WIDTH_PX + (times.len() + 1) * column_width;
    let height = AXIS_HEIGHT_PX + clients.len() * ROW_HEIGHT_PX + AXIS_HEIGHT_PX;
    push_line(page, "<section>");
    push_line(
        page,
        format!(
            "<h2>{}: {}</h2>",
            escape(&partition.name()),
            partition.verdict
        ),
    );
    push_line(
        page,
        format!(
            "<p>{} operations; {} in the {}.</p>",
            partition.operations.len(),
            partition.linearization.len(),
            if partition.verdict == Verdict::Linearizable {
                "linearization"
            } else {
                "longest linearizable prefix"
            }
        ),
    );
    if drawn.len() < partition.operations.len() {
        push_line(
            page,
            format!(
                "<p>Showing {} of {} operations: those called nearest to {}.</p>",
                drawn.len(),
                partition.operations.len(),
                if partition.stuck_at.is_some() {
                    "the operation where linearization got stuck"
                } else {
                    "the start"
                }
            ),
        );
    }
    push_line(page, "<div class=\"scroll\">");
    push_line(page, format!("<svg width=\"{width}\" height=\"{height}\">"));
    for (&client, &row) in &row_of {
        let y = AXIS_HEIGHT_PX + row * ROW_HEIGHT_PX;
        push_line(
            page,
            format!(
                "<line class=\"grid\" x1=\"0\" y1=\"{y}\" x2=\"{width}\" y2=\"{y}\"/>\
                 <text x=\"4\" y=\"{}\">client {client}</text>",
                y + BAR_HEIGHT_PX - 5
            ),
        );
    }
    for &index in &drawn {
        let operation = &operations[index];
        let x_start = x_of(operation.call_time);
        let (x_end, unknown) = match operation.return_time() {
            Some(time) => (x_of(time), false),
            None => (width - column_width / 4, true),
        };
        let bar_width = (x_end - x_start).max(column_width / 3);
        let y = AXIS_HEIGHT_PX + row_of[&operation.client] * ROW_HEIGHT_PX + 2;
        let position = position_in_linearization.get(&index);
        let role = if partition.stuck_at == Some(index) {
            "stuck"
        } else if position.is_some() {
            "linearized"
        } else {
            "pending"
        };
        let description = model.describe_operation(&operation.input, operation.output());
        let label = match position {
            Some(position) => format!("#{position} {description}"),
            None => description.clone(),
        };
        let tooltip = format!(
            "operation {index} (client {}): {description}\ncall {}, return {}{}",
            operation.client,
            operation.call_time,
            operation
                .return_time()
                .map_or_else(|| "unknown".to_string(), |time| time.to_string()),
            position.map_or_else(String::new, |position| format!("\nlinearized #{position}")),
        );
        push_line(
            page,
            format!(
                "<g class=\"operation\"><title>{}</title>\
                 <rect class=\"{role}{}\" x=\"{x_start}\" y=\"{y}\" width=\"{bar_width}\" \
                 height=\"{BAR_HEIGHT_PX}\" rx=\"3\"/>\
                 <text x=\"{}\" y=\"{}\">{}</text></g>",
                escape(&tooltip),
                if unknown { " unknown" } else { "" },
                x_start + 3,
                y + BAR_HEIGHT_PX - 6,
                escape(&shorten(
                    &label,
                    bar_width.saturating_sub(6) / CHARACTER_WIDTH_PX
                )),
            ),
        );
    }
    // Time labels along the bottom, spaced so they do not overlap.
    let label_every_columns = TIME_LABEL_SPACING_PX.div_ceil(column_width);
    for time in times.iter().step_by(label_every_columns) {
        push_line(
            page,
            format!(
                "<text class=\"time\" x=\"{}\" y=\"{}\">{time}</text>",
                x_of(*time),
                height - 8
            ),
        );
    }
    let stuck_return = partition
        .stuck_at
        .filter(|index| drawn.contains(index))
        .and_then(|index| operations[index].return_time());
    if let Some(stuck_return) = stuck_return {
        let x = x_of(stuck_return);
        let bottom = height - AXIS_HEIGHT_PX;
        push_line(
            page,
            format!(
                "<line class=\"stuck\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{bottom}\"/>\
                 <text class=\"stuck\" x=\"{}\" y=\"{}\">stuck here</text>",
                AXIS_HEIGHT_PX / 2,
                x + 4,
                AXIS_HEIGHT_PX - 8
            ),
        );
    }
    push_line(page, "</svg>\n</div>\n</section>");
}

/// The operations to draw: all of them if there are at most
/// [`DRAWN_OPERATIONS_MAX`]; otherwise a window of that many in call order,
/// mostly before the stuck operation (the history that led there), or the first
/// ones if nothing got stuck.
fn drawn_operations<I, O>(history: &History<I, O>, partition: &PartitionResult) -> Vec<usize> {
    if partition.operations.len() <= DRAWN_OPERATIONS_MAX {
        return partition.operations.clone();
    }
    let operations = history.operations();
    let mut by_call_time = partition.operations.clone();
    by_call_time.sort_by_key(|&index| (operations[index].call_time, index));
    let stuck_position = partition
        .stuck_at
        .and_then(|stuck| by_call_time.iter().position(|&index| index == stuck))
        .unwrap_or(0);
    let start = stuck_position
        .saturating_sub(DRAWN_OPERATIONS_MAX * 4 / 5)
        .min(by_call_time.len() - DRAWN_OPERATIONS_MAX);
    by_call_time[start..start + DRAWN_OPERATIONS_MAX].to_vec()
}

/// A column width that lets the longest label fit in the narrowest bar, within
/// the bounds.
fn column_width<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    drawn: &[usize],
    column_of: &BTreeMap<u64, usize>,
) -> usize {
    let operations = history.operations();
    let label_px_max = drawn
        .iter()
        .map(|&index| {
            let operation = &operations[index];
            // "#123 " prefix plus the description.
            (5 + model
                .describe_operation(&operation.input, operation.output())
                .chars()
                .count())
                * CHARACTER_WIDTH_PX
        })
        .max()
        .unwrap_or(0);
    let span_columns_min = drawn
        .iter()
        .filter_map(|&index| {
            let operation = &operations[index];
            let returned = operation.return_time()?;
            Some((column_of[&returned] - column_of[&operation.call_time]).max(1))
        })
        .min()
        .unwrap_or(1);
    (label_px_max / span_columns_min).clamp(COLUMN_WIDTH_MIN_PX, COLUMN_WIDTH_MAX_PX)
}

/// Shortens `text` to at most `characters_max` characters, marking the cut.
fn shorten(text: &str, characters_max: usize) -> String {
    if text.chars().count() <= characters_max {
        return text.to_string();
    }
    let mut shortened: String = text
        .chars()
        .take(characters_max.saturating_sub(1))
        .collect();
    shortened.push('…');
    shortened
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn push_line(page: &mut String, line: impl AsRef<str>) {
    page.push_str(line.as_ref());
    page.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn shortens_long_labels_only() {
        assert_eq!(shorten("get(k)", 10), "get(k)");
        assert_eq!(shorten("append(k, \"long\")", 6), "appen…");
    }
}
