//! The `kubectl ramp` plugin's commands. Only the offline ones exist so far.

pub mod simulate;
