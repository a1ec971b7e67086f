//! When a finished AnalysisRun is deleted (`spec.ttlStrategy`). Pure.

use jiff::{SignedDuration, Timestamp};

use crate::api::AnalysisPhase;
use crate::api::analysis::{AnalysisRunStatus, TtlStrategy};

/// When the finished run is due for deletion, or `None` when it is kept (not finished, no strategy, or
/// no rule for its phase). `secondsAfterFailure` applies to Failed runs and `secondsAfterSuccess` to
/// Successful ones; `secondsAfterCompletion` covers whatever they leave.
pub fn expires_at(strategy: Option<&TtlStrategy>, status: &AnalysisRunStatus) -> Option<Timestamp> {
    let strategy = strategy?;
    let phase = status.phase.filter(|p| p.is_completed())?;
    let completed = status.completed_at.as_ref()?.0;
    let seconds = match phase {
        AnalysisPhase::Failed if strategy.seconds_after_failure.is_some() => {
            strategy.seconds_after_failure
        }
        AnalysisPhase::Successful if strategy.seconds_after_success.is_some() => {
            strategy.seconds_after_success
        }
        _ => strategy.seconds_after_completion,
    }?;
    Some(completed + SignedDuration::from_secs(i64::from(seconds.max(0))))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn finished(phase: AnalysisPhase) -> AnalysisRunStatus {
        AnalysisRunStatus {
            phase: Some(phase),
            completed_at: Some(Time(Timestamp::from_second(1_000).unwrap())),
            ..Default::default()
        }
    }

    fn seconds(at: Option<Timestamp>) -> Option<i64> {
        at.map(|t| t.as_second() - 1_000)
    }

    #[test]
    fn each_phase_takes_its_own_rule_then_completion() {
        let strategy = TtlStrategy {
            seconds_after_completion: Some(300),
            seconds_after_failure: Some(60),
            seconds_after_success: Some(30),
        };
        let of = |phase| seconds(expires_at(Some(&strategy), &finished(phase)));
        assert_eq!(of(AnalysisPhase::Successful), Some(30));
        assert_eq!(of(AnalysisPhase::Failed), Some(60));
        assert_eq!(of(AnalysisPhase::Error), Some(300));
        assert_eq!(of(AnalysisPhase::Inconclusive), Some(300));
        let only_success = TtlStrategy {
            seconds_after_success: Some(30),
            ..Default::default()
        };
        assert_eq!(
            expires_at(Some(&only_success), &finished(AnalysisPhase::Failed)),
            None,
            "a failed run is kept when only successes expire"
        );
    }

    #[test]
    fn unfinished_runs_and_runs_without_a_strategy_are_kept() {
        let strategy = TtlStrategy {
            seconds_after_completion: Some(0),
            ..Default::default()
        };
        assert_eq!(expires_at(None, &finished(AnalysisPhase::Successful)), None);
        let running = AnalysisRunStatus {
            phase: Some(AnalysisPhase::Running),
            ..Default::default()
        };
        assert_eq!(expires_at(Some(&strategy), &running), None);
        assert_eq!(
            seconds(expires_at(
                Some(&strategy),
                &finished(AnalysisPhase::Successful)
            )),
            Some(0)
        );
    }
}
