//! The checks on a finished run: linearizability per key, the appends, and
//! the outcome counts.

use std::collections::BTreeMap;
use std::time::Duration;

use linearizability::{
    CheckResult, DeadlineBudget, History, KvInput, KvModel, KvOutput, MemoryBudget, Operation,
    Outcome, Verdict, check,
};

use crate::workload::{Ending, OpRecord, TOKEN_END};

/// The history the checker reads: every operation except definite failures
/// (they changed nothing); unknown outcomes stay unknown.
pub fn history(records: &[OpRecord]) -> History<KvInput, KvOutput> {
    history_with_puts_unknown_within(records, &[])
}

/// Whether an asynchronous group may answer `input` before it commits (a
/// plain put: gRPC `Put`, RESP `SET` without a condition or `GET`).
pub fn answered_early_if_async(input: &KvInput) -> bool {
    matches!(
        input,
        KvInput::Put { .. }
            | KvInput::Set {
                condition: linearizability::SetIf::Always,
                get: false,
                ..
            }
    )
}

/// [`history`], with every plain put acknowledged inside one of `windows`
/// (`(from_us, to_us)`) taken as an unknown outcome: what asynchronous
/// replication promises (docs/design.md), since such a put is answered
/// before it commits and lost if its leader fails first, while no read
/// sees a put before its commit nor misses one answered before it began.
pub fn history_with_puts_unknown_within(
    records: &[OpRecord],
    windows: &[(u64, u64)],
) -> History<KvInput, KvOutput> {
    let in_window = |time: u64| {
        windows
            .iter()
            .any(|&(from, to)| (from..=to).contains(&time))
    };
    let operations = records
        .iter()
        .filter_map(|record| {
            let outcome = match &record.ending {
                Ending::Ok(_)
                    if answered_early_if_async(&record.input)
                        && in_window(record.end_us.max(record.call_us)) =>
                {
                    Outcome::Unknown {
                        gave_up_at: Some(record.end_us),
                    }
                }
                Ending::Ok(output) => Outcome::Returned {
                    time: record.end_us.max(record.call_us),
                    output: output.clone(),
                },
                Ending::Unknown(_) => Outcome::Unknown {
                    gave_up_at: Some(record.end_us),
                },
                Ending::Failed(_) => return None,
            };
            Some(Operation {
                client: record.client,
                call_time: record.call_us,
                input: record.input.clone(),
                outcome,
            })
        })
        .collect();
    History::new(operations).expect("returns are clamped to their calls")
}

/// Checks `history` within `time_limit` and 1 GiB of memo.
pub fn linearizability(history: &History<KvInput, KvOutput>, time_limit: Duration) -> CheckResult {
    let deadline = tokio::time::Instant::now() + time_limit;
    let budget = (
        DeadlineBudget::new(move || tokio::time::Instant::now() >= deadline),
        MemoryBudget::bytes(1 << 30),
    );
    check(&KvModel::new(), history, budget)
}

/// What the final read of an append key shows against what was sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendAudit {
    pub keys: usize,
    pub acknowledged: usize,
    /// Acknowledged appends missing from the final value.
    pub lost: Vec<String>,
    /// Tokens present more than once.
    pub duplicated: Vec<String>,
    /// Tokens present that no append sent (or only one that failed for
    /// sure).
    pub phantom: Vec<String>,
    /// Keys with no successful final read.
    pub unread: Vec<String>,
}

impl AppendAudit {
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.phantom.is_empty()
            && self.unread.is_empty()
    }
}

/// Audits the appends: `final_values` are the values read after the
/// workload stopped (key -> value, `None`: absent; a key missing from the
/// map could not be read).
pub fn audit_appends(
    records: &[OpRecord],
    final_values: &BTreeMap<String, Option<String>>,
) -> AppendAudit {
    // key -> token -> acknowledged?
    let mut sent: BTreeMap<&str, BTreeMap<&str, bool>> = BTreeMap::new();
    for record in records {
        let KvInput::Append { key, value } = &record.input else {
            continue;
        };
        let token = value.trim_end_matches(TOKEN_END);
        match record.ending {
            Ending::Ok(_) => {
                sent.entry(key).or_default().insert(token, true);
            }
            Ending::Unknown(_) => {
                sent.entry(key).or_default().entry(token).or_insert(false);
            }
            Ending::Failed(_) => {}
        }
    }
    let mut audit = AppendAudit {
        keys: sent.len(),
        ..AppendAudit::default()
    };
    for (key, tokens) in &sent {
        audit.acknowledged += tokens.values().filter(|&&acked| acked).count();
        let Some(value) = final_values.get(*key) else {
            audit.unread.push((*key).to_string());
            continue;
        };
        let mut present: BTreeMap<&str, usize> = BTreeMap::new();
        for token in value
            .as_deref()
            .unwrap_or("")
            .split(TOKEN_END)
            .filter(|token| !token.is_empty())
        {
            *present.entry(token).or_default() += 1;
        }
        for (token, &acked) in tokens {
            if acked && !present.contains_key(token) {
                audit.lost.push(format!("{key}: {token}"));
            }
        }
        for (token, &count) in &present {
            if count > 1 {
                audit.duplicated.push(format!("{key}: {token} x{count}"));
            }
            if !tokens.contains_key(token) {
                audit.phantom.push(format!("{key}: {token}"));
            }
        }
    }
    audit
}

/// Counts of outcomes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
}

pub fn counts(records: &[OpRecord]) -> Counts {
    let mut counts = Counts {
        total: records.len(),
        ..Counts::default()
    };
    for record in records {
        match record.ending {
            Ending::Ok(_) => counts.ok += 1,
            Ending::Failed(_) => counts.failed += 1,
            Ending::Unknown(_) => counts.unknown += 1,
        }
    }
    counts
}

/// The verdict's words for a checker result.
pub fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "NOT linearizable",
        Verdict::Unknown => "unknown (checker budget ran out)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Front;

    fn append(client: u64, key: &str, token: &str, ending: Ending) -> OpRecord {
        OpRecord {
            client,
            front: Front::Grpc,
            input: KvInput::Append {
                key: key.into(),
                value: format!("{token}{TOKEN_END}"),
            },
            call_us: 0,
            end_us: 1,
            ending,
        }
    }

    #[test]
    fn the_append_audit_finds_lost_duplicated_and_phantom_tokens() {
        let records = vec![
            append(1, "a", "c1.1", Ending::Ok(KvOutput::Done)),
            append(1, "a", "c1.2", Ending::Ok(KvOutput::Done)),
            append(2, "a", "c2.1", Ending::Unknown("timeout".into())),
            append(2, "a", "c2.2", Ending::Failed("refused".into())),
            append(3, "b", "c3.1", Ending::Ok(KvOutput::Done)),
        ];
        let mut finals = BTreeMap::new();
        finals.insert("a".to_string(), Some("c1.1;c2.2;c1.1;".to_string()));
        let audit = audit_appends(&records, &finals);
        assert_eq!(audit.keys, 2);
        assert_eq!(audit.acknowledged, 3);
        assert_eq!(audit.lost, vec!["a: c1.2".to_string()]);
        assert_eq!(audit.duplicated, vec!["a: c1.1 x2".to_string()]);
        assert_eq!(audit.phantom, vec!["a: c2.2".to_string()]);
        assert_eq!(audit.unread, vec!["b".to_string()]);
        assert!(!audit.is_clean());

        finals.insert("a".to_string(), Some("c2.1;c1.2;c1.1;".to_string()));
        finals.insert("b".to_string(), Some("c3.1;".to_string()));
        assert!(audit_appends(&records, &finals).is_clean());
    }

    #[test]
    fn failed_operations_are_left_out_and_unknown_ones_stay_unknown() {
        let records = vec![
            append(1, "a", "c1.1", Ending::Ok(KvOutput::Done)),
            append(2, "a", "c2.1", Ending::Unknown("timeout".into())),
            append(2, "a", "c2.2", Ending::Failed("refused".into())),
        ];
        let history = history(&records);
        assert_eq!(history.len(), 2);
        assert_eq!(history.unknown_outcome_count(), 1);
    }
}
