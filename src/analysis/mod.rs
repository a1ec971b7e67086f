//! Analysis: an AnalysisRun's metrics measured until a verdict.
//!
//! - [`args`]: `{{args.x}}` substituted into metrics (pure).
//! - [`condition`]: success and failure conditions in Go `expr` (pure).
//! - [`judge`]: what to measure when, and what the measurements mean for each metric and the run (pure).
//! - [`provider`]: Prometheus, Web and Job measurements; the room's only I/O.
//! - [`ttl`]: when a finished run is deleted (pure).

pub mod args;
pub mod condition;
pub mod judge;
pub mod provider;
pub mod ttl;
