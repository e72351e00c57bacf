//! The [`Model`] trait: the sequential specification a history is checked against.

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification: what a single copy of the object would do if
/// operations reached it one at a time.
///
/// The checker asks the model one question, again and again: "if the object is
/// in `state` and this operation takes effect now, is the recorded output
/// possible, and what is the next state?"
///
/// # Contract
///
/// - [`step`](Model::step) is a pure function: the same arguments always give the
///   same answer. The search memoizes on `(linearized operations, state)`, so a
///   step that looked at anything else would make the memo unsound.
/// - Every operation of one partition (see [`partition`](Model::partition)) is
///   stepped from [`initial_state`](Model::initial_state); operations of
///   different partitions never see each other's state. This is what lets the
///   `kv` model keep one key's value as its whole state.
/// - `State` equality must mean "behaves the same from here on": two states that
///   compare equal are merged by the memo.
///
/// # Nondeterministic objects
///
/// `step` returns at most one next state. An object that may legitimately end in
/// one of several states can still be modelled: make `State` the (sorted, deduplicated)
/// set of states it might be in, and let `step` keep the members for which the
/// output is possible, returning `None` when none remain.
pub trait Model {
    /// The object's state (for `kv`: the value of one key).
    type State: Clone + Eq + Hash + Debug;
    /// What a client asked for.
    type Input: Clone + Debug;
    /// What the client was told.
    type Output: Clone + Debug;

    /// The state before any operation took effect.
    fn initial_state(&self) -> Self::State;

    /// Applies `input` to `state`.
    ///
    /// `output` is `None` when the outcome is unknown (the client gave up): then
    /// any output is acceptable and only the effect on the state matters.
    ///
    /// Returns the next state, or `None` if `output` is impossible from `state`.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// The partition an operation belongs to. Operations in different partitions
    /// must touch disjoint parts of the state (P-compositionality): the history is
    /// then linearizable exactly when every partition is, and each partition is
    /// searched alone, which is what keeps the search small.
    ///
    /// The default puts every operation in one partition named `""`.
    fn partition(&self, input: &Self::Input) -> String {
        let _ = input;
        String::new()
    }

    /// Whether `input` only observes: stepping it with an unknown output returns
    /// the state unchanged, from every state.
    ///
    /// Operations of unknown outcome with such inputs are left out of the search:
    /// they can neither fail nor change anything, and each one left in would
    /// double the configurations the memo must tell apart. The default, `false`,
    /// is always safe.
    fn is_read_only(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }

    /// Whether `input` never changes the state: stepping it, with any output
    /// (known or not), from any state, either fails or returns that same
    /// state (a plain read). Stronger than
    /// [`is_read_only`](Model::is_read_only), which says nothing about known
    /// outputs; a read that may also change what the model believes (for
    /// example a get that sees an eviction) must answer `false`.
    ///
    /// The search then linearizes such an operation as soon as it is a
    /// candidate and legal, without trying the other candidates in its
    /// place: in any linearization from there it can be moved to the front
    /// (it is legal now, it changes nothing, and every operation that must
    /// precede it in real time already has), so if none exists after it
    /// none exists at all. The default, `false`, is always safe.
    fn never_changes_state(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }

    /// Whether `input` can only move the state *forward* in the order that
    /// [`may_still_observe`](Model::may_still_observe) reasons about (for
    /// `kv`: an append only extends the value, a get leaves it). Used only for
    /// the search's lookahead pruning; the default, `false`, turns it off.
    fn is_monotone(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }

    /// Lookahead pruning: could some sequence of monotone operations (see
    /// [`is_monotone`](Model::is_monotone)) lead from `state` to a state in
    /// which the read-only operation `read` answers `output`?
    ///
    /// The search asks this about a state it is about to enter and a
    /// known-outcome read that must take effect later, when only monotone
    /// operations can take effect in between (every non-monotone operation
    /// still pending was called after the read returned). Answering `false`
    /// prunes the state, so it must mean "impossible"; `true` is always safe
    /// (the default). For `kv`, where every value is built by appending, this
    /// is "the state is a prefix of the value the read saw", which fixes the
    /// order of concurrent appends as soon as any later read is in view.
    fn may_still_observe(
        &self,
        state: &Self::State,
        read: &Self::Input,
        output: &Self::Output,
    ) -> bool {
        let _ = (state, read, output);
        true
    }

    /// Bytes a state owns on the heap beyond `size_of::<State>()` (for `kv`:
    /// the value's string). Used to estimate the memo's size for a
    /// [`MemoryBudget`](crate::MemoryBudget); the default, 0, suits states
    /// that own nothing.
    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        let _ = state;
        0
    }

    /// A short human-readable form of an operation, for reports and HTML
    /// (for example `put(k1, "x")` or `get(k1) -> "x"`). `None` means the outcome
    /// is unknown.
    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        match output {
            Some(output) => format!("{input:?} -> {output:?}"),
            None => format!("{input:?} -> ?"),
        }
    }

    /// A short human-readable form of a state, for reports and HTML.
    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}

/// Quotes an optional string value the way reports show it: `"x"` or `null`.
pub(crate) fn describe_value(value: Option<&str>) -> String {
    match value {
        Some(value) => format!("{value:?}"),
        None => "null".to_string(),
    }
}
