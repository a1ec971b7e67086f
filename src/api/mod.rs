//! The Argo Rollouts API (`argoproj.io/v1alpha1`) as Rust types: the CRDs, their defaults, and the
//! validation that decides whether a Rollout can be acted on. No I/O here.

pub mod analysis;
pub mod constants;
pub mod crd;
pub mod defaults;
pub mod duration;
pub mod rollout;
mod schema;
pub mod validation;

pub use analysis::{
    AnalysisPhase, AnalysisRun, AnalysisRunSpec, AnalysisRunStatus, AnalysisTemplate,
    AnalysisTemplateSpec, ClusterAnalysisTemplate, ClusterAnalysisTemplateSpec,
};
pub use rollout::{Rollout, RolloutSpec, RolloutStatus};
