//! The `kubectl ramp` plugin's commands: `simulate` (offline) and `demo` (kubesim in process).

pub mod demo;
pub mod simulate;
