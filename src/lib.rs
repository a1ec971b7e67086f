//! Ramp: progressive delivery for Kubernetes, compatible with the Argo Rollouts API.
//!
//! - [`api`]: the CRD types, defaults and validation.
//! - [`plan`]: the pure planner: `plan(rollout, observed, now) -> Plan`.
//! - [`sim`]: a pure model of a cluster that performs plans, for tests and offline simulation.

pub mod analysis;
pub mod api;
pub mod cli;
pub mod controller;
pub mod plan;
pub mod sim;
