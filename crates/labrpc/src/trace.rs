//! Trace context across a labrpc hop, in the W3C `traceparent` form
//! (`00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`).
//!
//! A caller that wants its request traced across nodes runs the call
//! inside [`scope`] with the context of its own span (its `span_id` names
//! that span); the production transport then sends it as the gRPC metadata
//! `traceparent`, and the server runs the handler inside a `labrpc.server`
//! span with the same `trace_id`, a new `span_id` and the caller's as
//! `parent_span_id`, and inside a scope of that span, so a further hop
//! (none today: a replica never forwards) would carry it on. Calls outside
//! any scope (Raft's traffic, the controller's) carry nothing and get no
//! span.
//!
//! ```text
//!  node A: scope(ctx) ─ client.call ─► metadata traceparent: 00-<trace>-<span>-01
//!  node B: parse (a malformed header is ignored, never trusted) ─►
//!          span "labrpc.server" {method, trace_id, span_id, parent_span_id}
//!          ─► scope(ctx') ─► handler
//! ```
//!
//! The simulated transport does not carry the context (its frames hold
//! only the method and payload): under madsim a hop starts no remote span.
//!
//! Ids are cheap (no system call per request): a per-process counter
//! scrambled by splitmix64 (a bijection, so ids never repeat within a
//! process) from a random seed drawn once. Under madsim the seed is fixed,
//! the counter is per thread (per simulation) and nothing is drawn from the
//! seeded RNG: ids feed no behaviour, so tracing leaves a simulation's
//! course unchanged, and two runs of one seed log the same ids.

use std::fmt;
use std::future::Future;

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// One position in a trace: the trace and the span a hop starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// Never zero (W3C: all-zero ids are invalid).
    pub trace_id: u128,
    /// Never zero.
    pub span_id: u64,
}

impl TraceContext {
    /// A new trace (a request entering the cluster).
    pub fn new_root() -> TraceContext {
        let high = u128::from(next_id());
        let low = u128::from(next_id());
        TraceContext {
            trace_id: ((high << 64) | low).max(1),
            span_id: next_id().max(1),
        }
    }

    /// The same trace, from a new span (the next hop's parent).
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: next_id().max(1),
        }
    }

    /// The trace id as 32 lowercase hex digits (what a span's `trace_id`
    /// field holds).
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The span id as 16 lowercase hex digits (a span's `span_id` or
    /// `parent_span_id` field).
    pub fn span_id_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }

    /// The `traceparent` header value (version 00, sampled).
    pub fn to_traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }

    /// Parses a `traceparent` value; None for anything malformed (wrong
    /// length, version ff, non-hex, zero ids). Input from a peer: never
    /// trusted beyond this check.
    pub fn parse_traceparent(value: &str) -> Option<TraceContext> {
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        // Version 00 has exactly four parts; a later version may add some.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let is_hex = |text: &str, len: usize| {
            text.len() == len
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !is_hex(version, 2) || !is_hex(trace, 32) || !is_hex(span, 16) || !is_hex(flags, 2) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        if trace_id == 0 || span_id == 0 {
            return None;
        }
        Some(TraceContext { trace_id, span_id })
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_traceparent())
    }
}

/// A new id: see the module docs.
#[cfg(not(madsim))]
fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    splitmix64(process_seed() ^ COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A new id: see the module docs. Counted per thread, as madsim runs a
/// simulation on a thread of its own: a second run of a seed in the same
/// process (madsim's determinism check) logs the same ids.
#[cfg(madsim)]
fn next_id() -> u64 {
    thread_local! {
        static COUNTER: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    splitmix64(process_seed() ^ COUNTER.replace(COUNTER.get() + 1))
}

#[cfg(not(madsim))]
fn process_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(crate::runtime::random_u64)
}

#[cfg(madsim)]
fn process_seed() -> u64 {
    0x7472_6163_6520_6964
}

/// splitmix64's finaliser: a bijection on u64 that scatters neighbours.
fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The context of the current task, if it runs inside [`scope`].
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|context| *context).ok()
}

/// Runs `future` with `context` as the current trace context: labrpc calls
/// it makes carry it.
pub fn scope<F: Future>(context: TraceContext, future: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(context, future)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let context = TraceContext {
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            span_id: 0x00f0_67aa_0ba9_02b7,
        };
        let header = context.to_traceparent();
        assert_eq!(
            header,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(TraceContext::parse_traceparent(&header), Some(context));
    }

    #[test]
    fn new_ids_differ() {
        let ids: std::collections::BTreeSet<u128> = (0..1000)
            .map(|_| TraceContext::new_root().trace_id)
            .collect();
        assert_eq!(ids.len(), 1000);
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.span_id, root.span_id);
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse_traceparent(bad), None, "{bad:?}");
        }
    }
}
