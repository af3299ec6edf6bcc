//! Kubernetes as a runtime and a router for `runtime: kubernetes` apps.
//!
//! - [`cluster`]: the client, connected on first use, and the API server's errors in words
//!   (verb, resource, namespace).
//! - [`objects`]: the objects Switchyard owns (one ReplicaSet per release; the stable, canary
//!   and preview Services), their names and labels.
//! - [`runtime`]: [`KubeRuntime`], the `WorkloadRuntime` of ReplicaSets.
//! - [`plan`]: the safe order of Service and weight changes (pure).
//! - [`gateway`]: edits of a Gateway API HTTPRoute (pure).
//! - [`istio`]: edits of an Istio VirtualService (pure).
//! - [`router`]: [`KubeRouter`], one reconciler per app applying its route plans.

pub mod cluster;
pub mod gateway;
pub mod istio;
pub mod objects;
pub mod plan;
pub mod router;
pub mod runtime;

pub use cluster::{Cluster, ClusterError, Credentials};
pub use router::{AppRouting, KubeRouter, Progress};
pub use runtime::KubeRuntime;
