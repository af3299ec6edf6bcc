//! The connection to the cluster, made when the first Kubernetes app needs it, and the errors
//! of its API in words.

use std::path::PathBuf;

use tokio::sync::OnceCell;

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

/// An error and its sources, each once.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

impl Cluster {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            client: OnceCell::new(),
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
                kube::Client::try_from(config).map_err(|e| ClusterError::Config(chain(&e)))
            })
            .await
            .cloned()
    }
}
