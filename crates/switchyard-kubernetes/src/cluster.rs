//! The connection to the cluster, made when the first Kubernetes app needs it, and the errors
//! of its API in words.

use std::path::PathBuf;

use switchyard_control::controller::chain;
use tokio::sync::OnceCell;

/// How long connecting to the API server may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long one call may wait for the API server's answer.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Where the cluster's credentials come from.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// `$KUBECONFIG`, `~/.kube/config`, or the pod's service account in a cluster (as kubectl).
    #[default]
    Infer,
    /// This kubeconfig file, its current context.
    Kubeconfig(PathBuf),
}

/// A client of one cluster, connected on first use.
pub struct Cluster {
    credentials: Credentials,
    client: OnceCell<kube::Client>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("credentials", &self.credentials)
            .field("connected", &self.client.initialized())
            .finish()
    }
}

/// The cluster cannot be reached or refused a call.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no Kubernetes cluster to talk to: {0}")]
    Config(String),
    /// The API server answered with an error; the message names the verb, resource and
    /// namespace (as the API server words it).
    #[error("{action}: the API server answered {code} {reason}: {message}")]
    Api {
        action: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error("{action}: the API server cannot be reached: {message}")]
    Unreachable { action: String, message: String },
}

impl ClusterError {
    /// `error` of the call described by `action` ("creating ReplicaSet shop-1a2b in namespace
    /// shop").
    pub fn of(action: impl Into<String>, error: kube::Error) -> Self {
        let action = action.into();
        match error {
            kube::Error::Api(status) => ClusterError::Api {
                action,
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => ClusterError::Unreachable {
                action,
                message: chain(&other),
            },
        }
    }

    /// The HTTP status the API server answered, if it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl Cluster {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            client: OnceCell::new(),
        }
    }

    /// A cluster reached through `client` (a test's stand-in for the API server).
    pub fn with_client(client: kube::Client) -> Self {
        Self {
            credentials: Credentials::Infer,
            client: OnceCell::new_with(Some(client)),
        }
    }

    /// The client, connecting on the first call.
    ///
    /// # Errors
    /// No kubeconfig (or service account) is found, or it cannot be read.
    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        self.client
            .get_or_try_init(|| async {
                let config = match &self.credentials {
                    Credentials::Infer => kube::Config::infer()
                        .await
                        .map_err(|e| ClusterError::Config(chain(&e)))?,
                    Credentials::Kubeconfig(path) => {
                        let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                            ClusterError::Config(format!("{}: {}", path.display(), chain(&e)))
                        })?;
                        kube::Config::from_custom_kubeconfig(
                            file,
                            &kube::config::KubeConfigOptions::default(),
                        )
                        .await
                        .map_err(|e| {
                            ClusterError::Config(format!("{}: {}", path.display(), chain(&e)))
                        })?
                    }
                };
                let mut config = config;
                // A call that hangs (an API server that stopped answering) fails and is retried
                // rather than holding a rollout for good.
                config.connect_timeout = Some(CONNECT_TIMEOUT);
                config.read_timeout = Some(CALL_TIMEOUT);
                config.write_timeout = Some(CALL_TIMEOUT);
                kube::Client::try_from(config).map_err(|e| ClusterError::Config(chain(&e)))
            })
            .await
            .cloned()
    }
}
