//! Where each app runs and who routes it: local releases (processes, static addresses) behind
//! the data plane's proxies, `kubernetes` releases as ReplicaSets routed by their cluster. The
//! control layer sees one runtime and one router; these send each call to the right one.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use switchyard_control::dataplane::DataPlane;
use switchyard_control::ports::{
    ExperimentRoutes, ListenerError, ListenerRegistry, RouteError, RoutePlan, TrafficRouter,
};
use switchyard_core::manifest::App;
use switchyard_core::manifest::app::RuntimeSpec;
use switchyard_core::ports::{RuntimeError, WorkloadRuntime};
use switchyard_core::{AppName, Release, Version, Workload};
use switchyard_kubernetes::{AppRouting, KubeRouter, KubeRuntime};
use switchyard_runtime::LocalRuntime;

/// The runtime of every release.
#[derive(Debug)]
pub struct Runtimes {
    pub local: Arc<LocalRuntime>,
    pub kube: Arc<KubeRuntime>,
}

impl Runtimes {
    fn of(&self, release: &Release) -> &dyn WorkloadRuntime {
        match release.workload {
            Workload::Kubernetes { .. } => self.kube.as_ref(),
            _ => self.local.as_ref(),
        }
    }
}

#[async_trait::async_trait]
impl WorkloadRuntime for Runtimes {
    async fn start(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError> {
        self.of(release).start(release).await
    }

    async fn stop(&self, app: &AppName, version: &Version) -> Result<(), RuntimeError> {
        // Each stops only what it runs; stopping what does not run succeeds.
        self.kube.stop(app, version).await?;
        self.local.stop(app, version).await
    }

    async fn scale(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError> {
        self.of(release).scale(release).await
    }

    fn endpoints(&self, app: &AppName, version: &Version) -> Vec<SocketAddr> {
        let local = self.local.endpoints(app, version);
        if local.is_empty() {
            self.kube.endpoints(app, version)
        } else {
            local
        }
    }

    async fn shutdown(&self) {
        self.local.shutdown().await;
        self.kube.shutdown().await;
    }
}

/// The router of every app: the data plane's proxies, or the app's cluster.
#[derive(Debug, Clone)]
pub struct Routers {
    pub dataplane: DataPlane,
    pub kube: KubeRouter,
    pub kube_runtime: Arc<KubeRuntime>,
}

impl TrafficRouter for Routers {
    fn drift(&self, app: &AppName) -> Option<String> {
        self.kube.progress(app).and_then(|p| p.drift)
    }

    fn not_applied(&self, app: &AppName) -> Option<String> {
        self.kube.progress(app).and_then(|p| p.error)
    }

    fn describe(&self, app: &AppName) -> Option<String> {
        self.kube.describe(app)
    }

    fn route(&self, app: &AppName, plan: RoutePlan) {
        if self.kube.routes(app) {
            self.kube.route(app, plan);
        } else {
            self.dataplane.route(app, plan);
        }
    }

    fn route_experiment(&self, app: &AppName, routes: ExperimentRoutes) -> Result<(), RouteError> {
        if self.kube.routes(app) {
            self.kube.route_experiment(app, routes)
        } else {
            self.dataplane.route_experiment(app, routes)
        }
    }

    fn preview_addr(&self, app: &AppName) -> Option<SocketAddr> {
        self.dataplane.preview_addr(app)
    }

    fn applied(&self, app: &AppName) -> Pin<Box<dyn Future<Output = bool> + Send + 'static>> {
        if self.kube.routes(app) {
            self.kube.applied(app)
        } else {
            self.dataplane.applied(app)
        }
    }

    fn drained(
        &self,
        app: &AppName,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        if self.kube.routes(app) {
            // The cluster's proxies drain pods by themselves (terminating endpoints).
            Box::pin(async {})
        } else {
            self.dataplane.drained(app, endpoint)
        }
    }
}

#[async_trait::async_trait]
impl ListenerRegistry for Routers {
    async fn ensure(&self, apps: &[App]) -> Result<Vec<AppName>, ListenerError> {
        let (kube, local): (Vec<&App>, Vec<&App>) = apps
            .iter()
            .partition(|a| matches!(a.spec.runtime, RuntimeSpec::Kubernetes(_)));
        let local: Vec<App> = local.into_iter().cloned().collect();
        let newly = self.dataplane.ensure(&local).await?;
        for app in kube {
            if let RuntimeSpec::Kubernetes(k) = &app.spec.runtime {
                self.kube_runtime.watch_namespace(k.namespace.as_str());
                let canary = matches!(
                    app.spec.strategy,
                    switchyard_core::manifest::Strategy::Canary(_)
                );
                self.kube
                    .register(&app.metadata.name, AppRouting::of(k, canary));
            }
        }
        Ok(newly)
    }

    async fn release(&self, apps: &[AppName]) {
        self.dataplane.release(apps).await;
    }
}
