//! [`StateTable`]: the distinct model states one partition's search has met,
//! each named by a small number, and the steps between them already taken.
//!
//! The search meets the same few states again and again (a register holds
//! one of a handful of values; a key's value is one of the orders of its
//! appends) and takes the same step from the same state many times over as
//! it backtracks. [`Model::step`](crate::Model::step) is a pure function, so
//! each `(state, operation)` step is computed once and remembered. The memo
//! and the backtracking stack then hold a [`StateId`] (four bytes, hashed
//! and compared in one instruction) instead of the state itself; the model's
//! step, which may allocate (a written value, a longer appended string), runs
//! once per distinct step.

use std::hash::{BuildHasher, Hash};

use hashbrown::{HashMap, HashTable};
use rustc_hash::FxBuildHasher;

/// A state's number within one partition's [`StateTable`].
pub(crate) type StateId = u32;

/// A remembered step that the model refused (the output was impossible).
const REFUSED: StateId = StateId::MAX;

pub(crate) struct StateTable<S> {
    states: Vec<S>,
    /// Ids of `states`, found by the state's hash.
    ids: HashTable<StateId>,
    /// `(state, operation)` -> the state after the step, or [`REFUSED`].
    steps: HashMap<(StateId, u32), StateId, FxBuildHasher>,
    /// What the states own on the heap (the model's estimate).
    heap_bytes: u64,
    hasher: FxBuildHasher,
}

impl<S: Clone + Eq + Hash> StateTable<S> {
    /// A table holding `initial` (its id is returned) whose heap is
    /// `initial_heap_bytes`.
    pub(crate) fn new(initial: S, initial_heap_bytes: usize) -> (Self, StateId) {
        let mut table = Self {
            states: Vec::new(),
            ids: HashTable::new(),
            steps: HashMap::default(),
            heap_bytes: 0,
            hasher: FxBuildHasher,
        };
        let id = table.intern(initial, initial_heap_bytes);
        (table, id)
    }

    pub(crate) fn state(&self, id: StateId) -> &S {
        &self.states[id as usize]
    }

    /// The state after `operation` takes effect in state `from`, or `None`
    /// if the model refuses it. `take_step` computes it (the model's step) the
    /// first time this `(from, operation)` is asked; `heap_bytes` estimates a
    /// new state's heap.
    pub(crate) fn step(
        &mut self,
        from: StateId,
        operation: usize,
        take_step: impl FnOnce(&S) -> Option<S>,
        heap_bytes: impl FnOnce(&S) -> usize,
    ) -> Option<StateId> {
        let operation =
            u32::try_from(operation).expect("a partition has fewer than 2^32 operations");
        if let Some(&to) = self.steps.get(&(from, operation)) {
            return (to != REFUSED).then_some(to);
        }
        let to = match take_step(&self.states[from as usize]) {
            Some(next) => {
                let bytes = heap_bytes(&next);
                self.intern(next, bytes)
            }
            None => REFUSED,
        };
        self.steps.insert((from, operation), to);
        (to != REFUSED).then_some(to)
    }

    /// Estimated bytes: the states and what they own, and both tables.
    pub(crate) fn bytes(&self) -> u64 {
        let state_bytes = std::mem::size_of::<S>() as u64;
        let id_bytes = std::mem::size_of::<StateId>() as u64 + 1;
        let step_bytes = std::mem::size_of::<((StateId, u32), StateId)>() as u64 + 1;
        self.states.capacity() as u64 * state_bytes
            + self.heap_bytes
            + self.ids.capacity() as u64 * id_bytes
            + self.steps.capacity() as u64 * step_bytes
    }

    fn intern(&mut self, state: S, heap_bytes: usize) -> StateId {
        let hash = self.hasher.hash_one(&state);
        let states = &self.states;
        if let Some(&id) = self.ids.find(hash, |&id| states[id as usize] == state) {
            return id;
        }
        let id = StateId::try_from(self.states.len())
            .ok()
            .filter(|&id| id != REFUSED)
            .expect("a partition's search meets fewer than 2^32 - 1 distinct states");
        self.states.push(state);
        self.heap_bytes += heap_bytes as u64;
        let states = &self.states;
        let hasher = self.hasher;
        self.ids
            .insert_unique(hash, id, |&id| hasher.hash_one(&states[id as usize]));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_states_share_an_id_and_steps_are_taken_once() {
        let (mut table, zero) = StateTable::new(0u64, 0);
        let calls = std::cell::Cell::new(0);
        let add = |table: &mut StateTable<u64>, from, operation, amount: u64| {
            table.step(
                from,
                operation,
                |state| {
                    calls.set(calls.get() + 1);
                    Some(state + amount)
                },
                |_| 0,
            )
        };
        let one = add(&mut table, zero, 0, 1).expect("legal");
        assert_eq!(add(&mut table, zero, 0, 1), Some(one));
        let also_one = add(&mut table, zero, 1, 1).expect("legal");
        assert_eq!(one, also_one, "the same state reached by another step");
        assert_eq!(*table.state(one), 1);
        assert_eq!(calls.get(), 2, "the repeated step was remembered");
    }

    #[test]
    fn refused_steps_are_remembered_too() {
        let (mut table, zero) = StateTable::new(0u64, 0);
        let mut calls = 0;
        for _ in 0..3 {
            let next = table.step(
                zero,
                7,
                |_| {
                    calls += 1;
                    None
                },
                |_| 0,
            );
            assert_eq!(next, None);
        }
        assert_eq!(calls, 1);
    }
}
