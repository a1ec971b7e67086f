//! `status NAME [--watch] [--timeout D]`: the rollout's client-side phase, one line per change, ending
//! with success on Healthy and an error on Degraded or when the timeout passes, so a CI job can wait on
//! a release (reference §7).

use std::time::{Duration, Instant};

use super::cluster::{CliError, Cluster};
use super::info::client_phase;
use crate::api::constants::phase;

/// The line printed for a phase while watching: `<Status> - <Message>`, or `<Status>` alone.
pub fn watch_line(phase: &str, message: &str) -> String {
    if message.is_empty() {
        phase.to_string()
    } else {
        format!("{phase} - {message}")
    }
}

/// The line printed without `--watch`: Healthy and Degraded alone, the rest with their message.
pub fn once_line(status: &str, message: &str) -> String {
    if status == phase::HEALTHY || status == phase::DEGRADED {
        status.to_string()
    } else {
        watch_line(status, message)
    }
}

/// How a watch ends at this phase: `Some(Ok)` on Healthy, `Some(Err)` on Degraded, `None` to go on.
pub fn outcome(status: &str, message: &str) -> Option<Result<(), CliError>> {
    match status {
        phase::HEALTHY => Some(Ok(())),
        phase::DEGRADED => Some(Err(CliError::Failed(format!(
            "The rollout is in a degraded state with message: {message}"
        )))),
        _ => None,
    }
}

pub async fn run(
    cluster: &Cluster,
    name: &str,
    watch: bool,
    timeout: Option<Duration>,
) -> Result<(), CliError> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let rollout = match cluster.rollouts().get(name).await {
            Ok(rollout) => rollout,
            Err(error) => {
                return Err(cluster
                    .rollout_error(name, "cannot read the rollout", error)
                    .await);
            }
        };
        let (status, message) = client_phase(&rollout);
        if !watch {
            println!("{}", once_line(&status, &message));
            return outcome(&status, &message).unwrap_or(Ok(()));
        }
        let line = watch_line(&status, &message);
        if line != last {
            println!("{line}");
            last = line;
        }
        if let Some(done) = outcome(&status, &message) {
            return done;
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            return Err(CliError::Failed(
                "Rollout status watch exceeded timeout".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_outcomes_follow_argo() {
        assert_eq!(
            watch_line("Paused", "CanaryPauseStep"),
            "Paused - CanaryPauseStep"
        );
        assert_eq!(watch_line("Healthy", ""), "Healthy");
        assert_eq!(once_line("Degraded", "RolloutAborted: x"), "Degraded");
        assert_eq!(
            once_line("Progressing", "more replicas need to be updated"),
            "Progressing - more replicas need to be updated"
        );
        assert!(matches!(outcome("Healthy", ""), Some(Ok(()))));
        assert!(outcome("Paused", "CanaryPauseStep").is_none());
        let Some(Err(error)) = outcome(
            "Degraded",
            "RolloutAborted: Rollout aborted update to revision 2",
        ) else {
            panic!("Degraded ends the watch with an error");
        };
        assert_eq!(
            error.to_string(),
            "The rollout is in a degraded state with message: RolloutAborted: Rollout aborted update to revision 2"
        );
    }
}
