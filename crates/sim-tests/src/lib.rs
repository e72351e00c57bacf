//! # sim-tests
