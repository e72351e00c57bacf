//! # labrpc — in progress
