//! Leader election on a `coordination.k8s.io/v1` Lease. Only the holder writes: `is_leader` turns false the
//! moment another holder is seen, or when renewals have failed for the renew deadline, and every write
//! checks it first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

/// Lease name and timings (Argo's defaults: 15 s lease, 10 s renew deadline, 2 s retry).
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Whether this process may write.
#[derive(Debug)]
pub struct Leader {
    leading: AtomicBool,
    changes: watch::Sender<bool>,
}

impl Leader {
    /// A process that elects itself (leader election switched off).
    pub fn always() -> Arc<Leader> {
        let (changes, _) = watch::channel(true);
        Arc::new(Leader {
            leading: AtomicBool::new(true),
            changes,
        })
    }

    pub fn standby() -> Arc<Leader> {
        let (changes, _) = watch::channel(false);
        Arc::new(Leader {
            leading: AtomicBool::new(false),
            changes,
        })
    }

    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Notified on every change of leadership.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.changes.subscribe()
    }

    fn set(&self, leading: bool) {
        if self.leading.swap(leading, Ordering::AcqRel) != leading {
            if leading {
                tracing::info!("became the leader");
            } else {
                tracing::warn!("lost the lease: writes stop now");
            }
            let _ = self.changes.send(leading);
        }
    }
}

/// What the holder fields of a Lease say, as of `now`.
#[derive(Debug, PartialEq)]
pub enum LeaseState {
    Absent,
    HeldByUs,
    HeldByOther { expired: bool },
}

/// Reads a Lease: who holds it and whether the holder let it expire.
pub fn lease_state(lease: Option<&Lease>, identity: &str, now: Timestamp) -> LeaseState {
    let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
        return LeaseState::Absent;
    };
    match spec.holder_identity.as_deref() {
        None | Some("") => LeaseState::HeldByOther { expired: true },
        Some(holder) if holder == identity => LeaseState::HeldByUs,
        Some(_) => {
            let duration =
                SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
            let renewed = spec
                .renew_time
                .as_ref()
                .map(|t| t.0)
                .unwrap_or(Timestamp::UNIX_EPOCH);
            LeaseState::HeldByOther {
                expired: renewed
                    .saturating_add(duration)
                    .is_ok_and(|until| until < now),
            }
        }
    }
}

/// Keeps trying to acquire and renew the lease until the process ends.
pub async fn run(client: Client, settings: LeaseSettings, leader: Arc<Leader>) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut last_renewal: Option<tokio::time::Instant> = None;
    loop {
        match try_acquire_or_renew(&api, &settings).await {
            Ok(true) => {
                last_renewal = Some(tokio::time::Instant::now());
                leader.set(true);
            }
            Ok(false) => {
                last_renewal = None;
                leader.set(false);
            }
            Err(e) => {
                tracing::warn!(error = %e, lease = %settings.name, "cannot renew the lease");
                if last_renewal.is_none_or(|at| at.elapsed() > settings.renew_deadline) {
                    leader.set(false);
                }
            }
        }
        tokio::time::sleep(settings.retry_period).await;
    }
}

/// One round: true when we hold the lease afterwards.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    settings: &LeaseSettings,
) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let existing = match api.get(&settings.name).await {
        Ok(lease) => Some(lease),
        Err(kube::Error::Api(status)) if status.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let duration = settings.lease_duration.as_secs() as i32;
    match lease_state(existing.as_ref(), &settings.identity, now) {
        LeaseState::Absent => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(settings.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(settings.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
                Err(e) => Err(e),
            }
        }
        LeaseState::HeldByUs => {
            let rv = existing.as_ref().and_then(|l| l.resource_version());
            let patch = json!({"metadata": {"resourceVersion": rv}, "spec": {"renewTime": MicroTime(now), "leaseDurationSeconds": duration}});
            conditional_patch(api, &settings.name, &patch).await
        }
        LeaseState::HeldByOther { expired: false } => Ok(false),
        LeaseState::HeldByOther { expired: true } => {
            let lease = existing.as_ref();
            let transitions = lease
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.lease_transitions)
                .unwrap_or(0);
            let patch = json!({"metadata": {"resourceVersion": lease.and_then(|l| l.resource_version())}, "spec": {
                "holderIdentity": settings.identity, "leaseDurationSeconds": duration,
                "acquireTime": MicroTime(now), "renewTime": MicroTime(now), "leaseTransitions": transitions + 1}});
            conditional_patch(api, &settings.name, &patch).await
        }
    }
}

/// A patch conditioned on the resourceVersion it carries: a conflict means someone else wrote first.
async fn conditional_patch(
    api: &Api<Lease>,
    name: &str,
    patch: &serde_json::Value,
) -> Result<bool, kube::Error> {
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed_secs_ago: i64, now: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(now - SignedDuration::from_secs(renewed_secs_ago))),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_lease_is_ours_theirs_or_up_for_grabs() {
        let now = Timestamp::now();
        assert_eq!(lease_state(None, "me", now), LeaseState::Absent);
        assert_eq!(
            lease_state(Some(&lease("me", 1, now)), "me", now),
            LeaseState::HeldByUs
        );
        assert_eq!(
            lease_state(Some(&lease("other", 5, now)), "me", now),
            LeaseState::HeldByOther { expired: false }
        );
        assert_eq!(
            lease_state(Some(&lease("other", 16, now)), "me", now),
            LeaseState::HeldByOther { expired: true }
        );
    }
}
