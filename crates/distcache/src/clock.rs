//! The current time, through the runtime seam (`labrpc::runtime`).

pub use labrpc::runtime::now;
