//! A release: one version of an app, resolved from the manifest and the deploy request into
//! exactly what a runtime needs to start it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::serde_humantime;
use crate::manifest::app::HealthCheck;
use crate::name::{AppName, Version};

/// One version of an app, ready to be started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Release {
    pub app: AppName,
    pub version: Version,
    pub workload: Workload,
    pub health_check: HealthCheck,
}

/// How the release's instances run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Workload {
    /// Child processes of the daemon. `argv` still holds `{port}`, replaced per instance.
    Process {
        argv: Vec<String>,
        env: BTreeMap<String, String>,
        working_dir: Option<PathBuf>,
        instances: u32,
        #[serde(with = "serde_humantime")]
        start_timeout: Duration,
        #[serde(with = "serde_humantime")]
        stop_timeout: Duration,
    },
    /// Already running elsewhere; only routed to.
    Static {
        addresses: Vec<SocketAddr>,
        #[serde(with = "serde_humantime")]
        start_timeout: Duration,
    },
    /// A ReplicaSet in a Kubernetes namespace. The template's images already name the version.
    Kubernetes {
        namespace: String,
        replicas: u32,
        /// The containers' port the app's Services target.
        port: u16,
        template: Box<k8s_openapi::api::core::v1::PodTemplateSpec>,
        #[serde(with = "serde_humantime")]
        start_timeout: Duration,
        #[serde(with = "serde_humantime")]
        scale_down_delay: Duration,
        /// No router splits the traffic: the releases' sizes do (a canary without
        /// `trafficRouting`), so the router, not the runtime, sets them.
        #[serde(default)]
        sized_by_weight: bool,
    },
}

impl Release {
    /// How many instances the release runs at full size.
    pub fn instances(&self) -> u32 {
        match &self.workload {
            Workload::Process { instances, .. } => *instances,
            Workload::Static { addresses, .. } => {
                u32::try_from(addresses.len()).unwrap_or(u32::MAX)
            }
            Workload::Kubernetes { replicas, .. } => *replicas,
        }
    }

    /// The same release at another size (process releases; a static one keeps its addresses).
    #[must_use]
    pub fn at_scale(&self, n: u32) -> Release {
        let mut release = self.clone();
        match &mut release.workload {
            Workload::Process { instances, .. } => *instances = n,
            Workload::Kubernetes { replicas, .. } => *replicas = n,
            Workload::Static { .. } => {}
        }
        release
    }

    /// The Kubernetes namespace of a `kubernetes` release.
    pub fn namespace(&self) -> Option<&str> {
        match &self.workload {
            Workload::Kubernetes { namespace, .. } => Some(namespace),
            _ => None,
        }
    }

    /// A short identifier for logs and file names: `app@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.app, self.version)
    }
}
