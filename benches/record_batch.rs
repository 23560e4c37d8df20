//! Placeholder replaced by the record batch benchmark.
fn main() {}
