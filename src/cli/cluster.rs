//! How the plugin reaches a cluster: kubectl's connection flags (`-n`, `--kubeconfig`, `--context`) turned
//! into a kube client and a namespace, and API errors turned into one line that says what to do.

use std::path::PathBuf;

use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::api::Rollout;

/// kubectl's connection flags, shared by every command that talks to a cluster.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConnectArgs {
    /// The namespace; defaults to the kubeconfig context's namespace, else `default`.
    #[arg(short = 'n', long, global = true, env = "RAMP_NAMESPACE")]
    pub namespace: Option<String>,
    /// Path to the kubeconfig file; defaults to $KUBECONFIG, then ~/.kube/config, then in-cluster.
    #[arg(long, global = true, env = "RAMP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true, env = "RAMP_CONTEXT")]
    pub context: Option<String>,
}

/// A client and the namespace the command works in.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
}

/// What went wrong, in words that say what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The kubeconfig could not be read or used.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The named object does not exist.
    #[error("{kind} \"{name}\" not found in namespace \"{namespace}\"; {hint}")]
    NotFound {
        kind: &'static str,
        name: String,
        namespace: String,
        hint: String,
    },
    /// The API server refused or failed a request.
    #[error("{action}: {message}")]
    Api { action: String, message: String },
    /// The command cannot do what was asked on this object.
    #[error("{0}")]
    Invalid(String),
    /// The rollout ended Degraded, or a wait timed out (for `status`).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// A stable label per variant, e.g. for an exit code or a metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CliError::Connect(_) => "connect",
            CliError::NotFound { .. } => "not_found",
            CliError::Api { .. } => "api",
            CliError::Invalid(_) => "invalid",
            CliError::Failed(_) => "failed",
        }
    }
}

impl ConnectArgs {
    /// Builds the client the way kubectl picks its configuration.
    pub async fn connect(&self) -> Result<Cluster, CliError> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: None,
            user: None,
        };
        let hint = "pass --kubeconfig and --context, or set KUBECONFIG";
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                    CliError::Connect(format!(
                        "cannot read kubeconfig {}: {e}; check the --kubeconfig path",
                        path.display()
                    ))
                })?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| CliError::Connect(format!("{e}; {hint}")))?
            }
            (None, Some(_)) => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| CliError::Connect(format!("{e}; {hint}")))?,
            (None, None) => Config::infer()
                .await
                .map_err(|e| CliError::Connect(format!("{e}; {hint}")))?,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| CliError::Connect(e.to_string()))?;
        Ok(Cluster { client, namespace })
    }
}

impl Cluster {
    pub fn rollouts(&self) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Turns an API error about a rollout into a [`CliError`]; a 404 lists the rollouts that do exist.
    pub async fn rollout_error(&self, name: &str, action: &str, error: kube::Error) -> CliError {
        if is_not_found(&error) {
            let names = self
                .rollouts()
                .list_metadata(&ListParams::default())
                .await
                .map(|list| {
                    list.items
                        .into_iter()
                        .filter_map(|r| r.metadata.name)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            let hint = if names.is_empty() {
                "there are no rollouts there; pick the namespace with -n".to_string()
            } else {
                format!(
                    "rollouts there: {}; or pick another namespace with -n",
                    names.join(", ")
                )
            };
            return CliError::NotFound {
                kind: "rollout",
                name: name.to_string(),
                namespace: self.namespace.clone(),
                hint,
            };
        }
        api_error(action, error)
    }
}

pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// An API error other than "not found", with what the command was doing.
pub fn api_error(action: &str, error: kube::Error) -> CliError {
    let message = match &error {
        kube::Error::Api(status) if status.code == 403 => format!(
            "{}; ask for RBAC permission on rollouts.argoproj.io",
            status.message
        ),
        kube::Error::Api(status) => status.message.clone(),
        other => format!("{other}; check that the cluster is reachable"),
    };
    CliError::Api {
        action: action.to_string(),
        message,
    }
}
