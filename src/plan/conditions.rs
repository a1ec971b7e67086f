//! Rollout conditions (reference 2.3): computed from the old conditions and what this plan decided.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::constants::{condition, reason};
use crate::api::rollout::RolloutCondition;

/// `True`, `False` or `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn as_str(self) -> &'static str {
        match self {
            Truth::True => "True",
            Truth::False => "False",
            Truth::Unknown => "Unknown",
        }
    }

    /// `True` for true, `False` for false.
    pub fn of(value: bool) -> Self {
        if value { Truth::True } else { Truth::False }
    }
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [RolloutCondition], type_: &str) -> Option<&'a RolloutCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Sets a condition the way Argo's `SetRolloutCondition` does: an unchanged status and reason leaves the
/// condition as it was (times and message included); a changed reason or message with the same status
/// keeps `lastTransitionTime`. With `refresh`, an unchanged condition still gets `lastUpdateTime = now`
/// (progress was made).
pub fn set(
    conditions: &mut Vec<RolloutCondition>,
    type_: &str,
    status: Truth,
    reason: &str,
    message: &str,
    now: Timestamp,
    refresh: bool,
) {
    let status = status.as_str();
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if existing.status == status && existing.reason == reason {
            if refresh {
                existing.last_update_time = Time(now);
                existing.message = message.to_string();
            }
            return;
        }
        let transition = if existing.status == status {
            existing.last_transition_time.clone()
        } else {
            Time(now)
        };
        *existing = RolloutCondition {
            type_: type_.to_string(),
            status: status.to_string(),
            last_update_time: Time(now),
            last_transition_time: transition,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        return;
    }
    conditions.push(RolloutCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        last_update_time: Time(now),
        last_transition_time: Time(now),
        reason: reason.to_string(),
        message: message.to_string(),
    });
}

/// Removes a condition by type.
pub fn remove(conditions: &mut Vec<RolloutCondition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// The Progressing condition's reason, if any.
pub fn progressing_reason(conditions: &[RolloutCondition]) -> Option<&str> {
    find(conditions, condition::PROGRESSING).map(|c| c.reason.as_str())
}

/// True when the Progressing condition says the rollout was aborted.
pub fn is_aborted_condition(conditions: &[RolloutCondition]) -> bool {
    progressing_reason(conditions) == Some(reason::ROLLOUT_ABORTED)
}
