//! The controller's errors, each with a stable label for the `rollout_reconcile_error` metric.

/// What can go wrong while reconciling one Rollout.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("{verb} {what}: {source}")]
    Kube {
        verb: &'static str,
        what: String,
        #[source]
        source: kube::Error,
    },
    /// The plan created a ReplicaSet that exists already: the cache has not seen it yet. The rest of the
    /// plan, and its events, were made without it, so they are dropped and the Rollout is planned again.
    #[error(
        "ReplicaSet {0} already exists but is not in the controller's cache yet: planning again once the watch delivers it"
    )]
    CreatedElsewhere(String),
    /// The plan's ReplicaSet name is taken by another object (a pod-template hash collision): the
    /// collision count was raised, and the next plan picks another name.
    #[error(
        "ReplicaSet {name} exists and is not this Rollout's: counted as hash collision {count}, planning again under another name"
    )]
    NameTaken { name: String, count: i32 },
    /// Another controller instance holds the lease; this one must not write.
    #[error("not the leader: writes are left to the lease holder")]
    NotLeader,
    /// The plan asked for a traffic router weight, and Ramp has no traffic router integration yet.
    #[error(
        "trafficRouting is not supported yet: remove spec.strategy.canary.trafficRouting to shift traffic by replica counts"
    )]
    TrafficRoutingUnsupported,
    /// An object could not be turned into JSON (a bug, reported rather than hidden).
    #[error("cannot encode {0}: {1}")]
    Encode(&'static str, serde_json::Error),
}

impl Error {
    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube {
                source: kube::Error::Api(status),
                ..
            } if status.is_conflict() => "conflict",
            Error::Kube {
                source: kube::Error::Api(_),
                ..
            } => "api",
            Error::Kube { .. } => "transport",
            Error::CreatedElsewhere(_) | Error::NameTaken { .. } => "conflict",
            Error::NotLeader => "not_leader",
            Error::TrafficRoutingUnsupported => "traffic_routing_unsupported",
            Error::Encode(..) => "encode",
        }
    }

    /// A conflict means our cache is behind: try again as soon as the watch catches up.
    pub fn is_conflict(&self) -> bool {
        match self {
            Error::Kube {
                source: kube::Error::Api(status),
                ..
            } => status.is_conflict(),
            Error::CreatedElsewhere(_) | Error::NameTaken { .. } => true,
            _ => false,
        }
    }
}

/// Wraps a kube error with the request that failed.
pub fn kube(verb: &'static str, what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { verb, what, source }
}
