//! [`KubeRuntime`]: releases as ReplicaSets. One ReplicaSet per release, named from a hash of
//! its version and template so that a restarted daemon applies the same object again instead of
//! creating a second one; readiness is what the cluster reports in the pods' `Ready`
//! condition; a stopped release's ReplicaSet is marked with the time after which it may go
//! (`scaleDownDelay`) and deleted by a sweep, which a restart resumes.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use switchyard_core::ports::{RuntimeError, WorkloadRuntime};
use switchyard_core::{AppName, Release, Version, Workload};

use crate::cluster::{Cluster, ClusterError};
use crate::objects::{self, APP_LABEL, FIELD_MANAGER, TEMPLATE_HASH_LABEL};

/// The annotation that schedules a stopped release's ReplicaSet for deletion (RFC 3339).
pub const DELETE_AFTER_ANNOTATION: &str = "switchyard.dev/delete-after";
/// The field manager of that annotation, apart from the ReplicaSet's own fields.
const SCALE_DOWN_MANAGER: &str = "switchyard-scale-down";
/// How often pods are read while a release starts.
const READY_POLL: Duration = Duration::from_millis(500);

/// A release this runtime applied.
#[derive(Debug, Clone)]
struct Known {
    namespace: String,
    replica_set: String,
    scale_down_delay: Duration,
    endpoints: Vec<SocketAddr>,
}

/// Runs `kubernetes` releases as ReplicaSets.
#[derive(Debug)]
pub struct KubeRuntime {
    cluster: Arc<Cluster>,
    releases: Mutex<HashMap<(AppName, Version), Known>>,
    /// Namespaces whose stopped ReplicaSets the sweep looks for.
    namespaces: Mutex<BTreeSet<String>>,
}

impl KubeRuntime {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            releases: Mutex::new(HashMap::new()),
            namespaces: Mutex::new(BTreeSet::new()),
        }
    }

    fn releases(&self) -> MutexGuard<'_, HashMap<(AppName, Version), Known>> {
        self.releases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a namespace to those the sweep looks at (an applied app's).
    pub fn watch_namespace(&self, namespace: &str) {
        self.namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(namespace.to_string());
    }

    /// Deletes the ReplicaSets whose scale-down delay has passed, in every namespace watched.
    /// Returns how many were deleted.
    ///
    /// # Errors
    /// The cluster cannot be reached or refuses to list or delete ReplicaSets.
    pub async fn sweep(&self) -> Result<usize, ClusterError> {
        let namespaces: Vec<String> = self
            .namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        if namespaces.is_empty() {
            return Ok(0);
        }
        let client = self.cluster.client().await?;
        let now = SystemTime::now();
        let mut deleted = 0;
        for ns in namespaces {
            let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
            let list = api
                .list(&ListParams::default().labels(APP_LABEL))
                .await
                .map_err(|e| {
                    ClusterError::of(format!("listing ReplicaSets in namespace {ns}"), e)
                })?;
            for rs in list.items {
                let due = rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DELETE_AFTER_ANNOTATION))
                    .and_then(|t| humantime::parse_rfc3339(t).ok());
                let Some(due) = due else { continue };
                if due > now {
                    continue;
                }
                let name = rs.metadata.name.unwrap_or_default();
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => {
                        tracing::info!(namespace = %ns, replica_set = %name, "deleted a stopped release's ReplicaSet");
                        deleted += 1;
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => {
                        return Err(ClusterError::of(
                            format!("deleting ReplicaSet {name} in namespace {ns}"),
                            e,
                        ));
                    }
                }
            }
        }
        Ok(deleted)
    }

    /// Applies the release's ReplicaSet at its size and waits until that many pods are Ready.
    async fn apply(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError> {
        let Workload::Kubernetes {
            namespace,
            replicas,
            port,
            template,
            start_timeout,
            scale_down_delay,
            sized_by_weight,
        } = &release.workload
        else {
            return Err(cluster_error(ClusterError::Config(format!(
                "{} is not a kubernetes release",
                release.label()
            ))));
        };
        self.watch_namespace(namespace);
        let client = self.cluster.client().await.map_err(cluster_error)?;
        let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
        let name = objects::replica_set_name(
            &release.app,
            &objects::template_hash(&release.version, template),
        );
        let action = |verb: &str| format!("{verb} ReplicaSet {name} in namespace {namespace}");
        let current = api
            .get_opt(&name)
            .await
            .map_err(|e| cluster_error(ClusterError::of(action("reading"), e)))?;
        let existed = current.is_some();
        // Sized by weight, a release starts with no pod (the router gives it its share) and a
        // running one keeps the size the router gave it.
        let replicas = if *sized_by_weight {
            current
                .as_ref()
                .and_then(|rs| rs.spec.as_ref()?.replicas)
                .map_or(0, |n| u32::try_from(n).unwrap_or(0))
        } else {
            *replicas
        };
        let rs = objects::replica_set(&release.app, &release.version, replicas, template);
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&rs),
        )
        .await
        .map_err(|e| cluster_error(ClusterError::of(action("applying"), e)))?;
        if existed {
            // A release started again keeps its ReplicaSet: no deletion is due any more.
            let keep = serde_json::json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            });
            api.patch(
                &name,
                &PatchParams::apply(SCALE_DOWN_MANAGER).force(),
                &Patch::Apply(&keep),
            )
            .await
            .map_err(|e| cluster_error(ClusterError::of(action("keeping"), e)))?;
        }
        let hash = objects::template_hash(&release.version, template);
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let waited = wait_ready(&pods, &release.app, &hash, replicas, *port, *start_timeout).await;
        match waited {
            Ok(endpoints) => {
                self.releases().insert(
                    (release.app.clone(), release.version.clone()),
                    Known {
                        namespace: namespace.clone(),
                        replica_set: name,
                        scale_down_delay: *scale_down_delay,
                        endpoints: endpoints.clone(),
                    },
                );
                Ok(endpoints)
            }
            Err(e) => {
                if !existed {
                    // Nothing of a release that did not start stays behind.
                    let _ = api.delete(&name, &DeleteParams::background()).await;
                }
                Err(match e {
                    Waited::Cluster(e) => cluster_error(e),
                    Waited::NotReady { ready, why } => RuntimeError::NeverReady {
                        release: release.label(),
                        ready,
                        wanted: replicas,
                        timeout: *start_timeout,
                        why,
                    },
                })
            }
        }
    }
}

fn cluster_error(e: ClusterError) -> RuntimeError {
    RuntimeError::Cluster(Box::new(e))
}

enum Waited {
    Cluster(ClusterError),
    NotReady { ready: u32, why: String },
}

/// Waits until `wanted` pods of the release are Ready (and not being deleted); returns their
/// addresses.
async fn wait_ready(
    pods: &Api<Pod>,
    app: &AppName,
    hash: &str,
    wanted: u32,
    port: u16,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, Waited> {
    let selector = format!("{APP_LABEL}={app},{TEMPLATE_HASH_LABEL}={hash}");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                Waited::Cluster(ClusterError::of(
                    format!("listing the pods of {app} ({selector})"),
                    e,
                ))
            })?;
        let live: Vec<&Pod> = list
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let ready: Vec<SocketAddr> = live
            .iter()
            .filter(|p| is_ready(p))
            .filter_map(|p| pod_address(p, port))
            .collect();
        let count = u32::try_from(ready.len()).unwrap_or(u32::MAX);
        if count >= wanted {
            return Ok(ready);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Waited::NotReady {
                ready: count,
                why: not_ready_reason(&live),
            });
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// The pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_address(pod: &Pod, port: u16) -> Option<SocketAddr> {
    let ip: IpAddr = pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// Why the first pod that is not Ready is not, from its conditions (the scheduler's and the
/// kubelet's words).
fn not_ready_reason(pods: &[&Pod]) -> String {
    if pods.is_empty() {
        return "no pod was created (see the ReplicaSet's events)".into();
    }
    let Some(pod) = pods.iter().find(|p| !is_ready(p)) else {
        return "too few pods".into();
    };
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    match conditions
        .into_iter()
        .flatten()
        .find(|c| c.status != "True")
    {
        Some(c) => format!(
            "pod {name}: {} is {}{}{}",
            c.type_,
            c.status,
            c.reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            c.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
        ),
        None => format!("pod {name} has no conditions yet (not scheduled)"),
    }
}

#[async_trait::async_trait]
impl WorkloadRuntime for KubeRuntime {
    async fn start(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError> {
        self.apply(release).await
    }

    async fn stop(&self, app: &AppName, version: &Version) -> Result<(), RuntimeError> {
        let Some(known) = self.releases().remove(&(app.clone(), version.clone())) else {
            return Ok(());
        };
        let client = self.cluster.client().await.map_err(cluster_error)?;
        let api: Api<ReplicaSet> = Api::namespaced(client, &known.namespace);
        let due = SystemTime::now() + known.scale_down_delay;
        let mark = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": known.replica_set, "annotations": {
                DELETE_AFTER_ANNOTATION: humantime::format_rfc3339_seconds(due).to_string(),
            }},
        });
        match api
            .patch(
                &known.replica_set,
                &PatchParams::apply(SCALE_DOWN_MANAGER).force(),
                &Patch::Apply(&mark),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => {
                // Still known: a later stop tries again.
                self.releases()
                    .insert((app.clone(), version.clone()), known.clone());
                Err(cluster_error(ClusterError::of(
                    format!(
                        "scheduling the deletion of ReplicaSet {} in namespace {}",
                        known.replica_set, known.namespace
                    ),
                    e,
                )))
            }
        }
    }

    async fn scale(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError> {
        self.apply(release).await
    }

    fn endpoints(&self, app: &AppName, version: &Version) -> Vec<SocketAddr> {
        self.releases()
            .get(&(app.clone(), version.clone()))
            .map(|k| k.endpoints.clone())
            .unwrap_or_default()
    }

    async fn shutdown(&self) {
        // The cluster keeps the releases running; a restarted daemon applies them again.
    }
}
