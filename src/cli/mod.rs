//! The `kubectl ramp` plugin's commands, one module per family: steering a release (`control`:
//! promote, abort, retry, pause, resume, restart, terminate; `set_image`; `undo`), reading it (`get`,
//! `list`, `status`, with `info` for what they compute), checking YAML offline (`lint`), and the no-cluster
//! commands `simulate` and `demo`. `cluster` turns kubectl's connection flags into a client.

pub mod cluster;
pub mod control;
pub mod demo;
pub mod get;
pub mod info;
pub mod lint;
pub mod list;
pub mod set_image;
pub mod simulate;
pub mod status;
pub mod undo;
