//! End-to-end tests, the control-plane harness, the quickstart and benchmarks of capmaas-rs.

pub mod harness;
