//! [`KubeRouter`]: the routes of `kubernetes` apps, kept by one reconciler task per app.
//!
//! `route` only records the plan (the traffic owner calls it under the app's lock and must not
//! wait for a cluster); the app's task applies it — Services re-pointed and weights moved in
//! the order of [`crate::plan::steps`] — retrying with backoff while the API server refuses or
//! cannot be reached, and `applied` resolves once the plan as last recorded is in the cluster.
//! The task reads the cluster before every change, so a restarted daemon continues from what
//! the cluster holds (the cluster is the truth for routing).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams};
use switchyard_control::ports::{ExperimentRoutes, RouteError, RoutePlan};
use switchyard_core::manifest::app::{KubernetesRuntime, TrafficRouting};
use switchyard_core::{AppName, Version};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

mod route;

use route::Route;

use crate::cluster::{Cluster, ClusterError};
use crate::objects::{self, APP_LABEL, FIELD_MANAGER, RELEASE_LABEL, Role};
use crate::plan::{self, Observed, Step};

/// How long `applied` waits before it answers `false`.
pub const APPLY_WAIT: Duration = Duration::from_secs(10);
/// How long a re-pointed Service may take to list a Ready endpoint.
const ENDPOINTS_WAIT: Duration = Duration::from_secs(60);
/// How often the routes are read back to notice changes made outside Switchyard.
const DRIFT_CHECK: Duration = Duration::from_secs(2);
/// The field manager of replica counts set by weight (apart from the runtime's own fields).
const SIZE_MANAGER: &str = "switchyard-traffic";
/// Retries after a failed reconcile: 1 s, doubling up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a `kubernetes` app is routed: the part of its manifest the router needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AppRouting {
    pub namespace: String,
    pub port: u16,
    pub service_port: u16,
    pub traffic_routing: Option<TrafficRouting>,
    /// Pods of a release at full size.
    pub replicas: u32,
    /// No router: the weights are the releases' replica counts (a canary without
    /// `trafficRouting`, as Argo Rollouts' basic canary).
    pub sized_by_weight: bool,
}

impl AppRouting {
    /// How an app of `runtime` is routed; `canary` when its strategy is a canary.
    pub fn of(runtime: &KubernetesRuntime, canary: bool) -> Self {
        Self {
            namespace: runtime.namespace.to_string(),
            port: runtime.port,
            service_port: runtime.service_port,
            traffic_routing: runtime.traffic_routing.clone(),
            replicas: runtime.replicas.get(),
            sized_by_weight: canary && runtime.traffic_routing.is_none(),
        }
    }
}

/// Where an app's reconciliation stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The plan generation last applied whole.
    pub applied: u64,
    /// Why the last attempt failed, while the plan is not applied.
    pub error: Option<String>,
    /// What changed the route outside Switchyard since it last wrote it (until the next plan).
    pub drift: Option<String>,
}

#[derive(Debug)]
struct Entry {
    routing: AppRouting,
    plan: Option<RoutePlan>,
    generation: u64,
    wake: Arc<Notify>,
    progress: watch::Sender<Progress>,
}

/// The traffic router of `kubernetes` apps.
#[derive(Debug, Clone)]
pub struct KubeRouter {
    cluster: Arc<Cluster>,
    apps: Arc<Mutex<HashMap<AppName, Entry>>>,
    cancel: CancellationToken,
}

impl KubeRouter {
    pub fn new(cluster: Arc<Cluster>, cancel: CancellationToken) -> Self {
        Self {
            cluster,
            apps: Arc::new(Mutex::new(HashMap::new())),
            cancel,
        }
    }

    fn apps(&self) -> MutexGuard<'_, HashMap<AppName, Entry>> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `app` on (or updates how it is routed) and starts its reconciler. Nothing is
    /// written to the cluster until the app's first plan.
    pub fn register(&self, app: &AppName, routing: AppRouting) {
        let mut apps = self.apps();
        if let Some(e) = apps.get_mut(app) {
            if e.routing != routing {
                e.routing = routing;
                e.generation += 1;
                e.wake.notify_one();
            }
            return;
        }
        let wake = Arc::new(Notify::new());
        let (progress, _) = watch::channel(Progress::default());
        apps.insert(
            app.clone(),
            Entry {
                routing,
                plan: None,
                generation: 0,
                wake: Arc::clone(&wake),
                progress,
            },
        );
        drop(apps);
        let this = self.clone();
        let app = app.clone();
        tokio::spawn(async move { this.reconcile_loop(app, wake).await });
    }

    /// Whether `app` is routed here.
    pub fn routes(&self, app: &AppName) -> bool {
        self.apps().contains_key(app)
    }

    /// Where the app's reconciliation stands (`None` for an app not routed here).
    pub fn progress(&self, app: &AppName) -> Option<Progress> {
        self.apps().get(app).map(|e| e.progress.borrow().clone())
    }

    /// Where the app's routes are written and how they stand: in force, not (and why), or
    /// changed outside Switchyard.
    pub fn describe(&self, app: &AppName) -> Option<String> {
        let apps = self.apps();
        let e = apps.get(app)?;
        let p = e.progress.borrow();
        let place = match &e.routing.traffic_routing {
            Some(TrafficRouting::GatewayApi(g)) => {
                format!(
                    "HTTPRoute {} in namespace {}",
                    g.http_route, e.routing.namespace
                )
            }
            Some(TrafficRouting::Istio(i)) => format!(
                "VirtualService {} in namespace {}",
                i.virtual_service, e.routing.namespace
            ),
            None if e.routing.sized_by_weight => {
                let sizes = e.plan.as_ref().map(|plan| {
                    let weights: Vec<u32> = plan.targets.iter().map(|t| t.weight).collect();
                    plan.targets
                        .iter()
                        .zip(plan::sizes(&weights, e.routing.replicas))
                        .map(|(t, n)| format!("{} {n}", t.version))
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                format!(
                    "weights approximated by replica counts in namespace {} (pods: {})",
                    e.routing.namespace,
                    sizes.unwrap_or_default()
                )
            }
            None => format!("the Services of namespace {}", e.routing.namespace),
        };
        Some(match (&p.error, &p.drift) {
            (Some(error), _) => format!("{place}: not in force yet: {error}"),
            (None, Some(drift)) => format!("{place}: changed outside Switchyard: {drift}"),
            (None, None) if p.applied < e.generation => format!("{place}: being applied"),
            (None, None) => format!("{place}: in force"),
        })
    }

    /// Records the app's plan; its reconciler applies it.
    pub fn route(&self, app: &AppName, plan: RoutePlan) {
        let mut apps = self.apps();
        if let Some(e) = apps.get_mut(app) {
            e.plan = Some(plan);
            e.generation += 1;
            e.progress.send_modify(|p| p.drift = None);
            e.wake.notify_one();
        }
    }

    /// Traffic experiments split between any number of releases; Kubernetes apps have two
    /// Services.
    ///
    /// # Errors
    /// Always: not supported for Kubernetes apps.
    pub fn route_experiment(
        &self,
        app: &AppName,
        _routes: ExperimentRoutes,
    ) -> Result<(), RouteError> {
        Err(RouteError::Invalid {
            app: app.clone(),
            source: "traffic experiments route through Switchyard's proxy; a `kubernetes` app \
                     is routed by its cluster (use a flag experiment)"
                .into(),
        })
    }

    /// Resolves `true` once the plan as last recorded is in the cluster, or `false` after
    /// [`APPLY_WAIT`].
    pub fn applied(&self, app: &AppName) -> Pin<Box<dyn Future<Output = bool> + Send + 'static>> {
        let (wanted, mut rx) = match self.apps().get(app) {
            Some(e) => (e.generation, e.progress.subscribe()),
            None => return Box::pin(async { true }),
        };
        Box::pin(async move {
            let done = rx.wait_for(|p| p.applied >= wanted);
            matches!(tokio::time::timeout(APPLY_WAIT, done).await, Ok(Ok(_)))
        })
    }

    async fn reconcile_loop(&self, app: AppName, wake: Arc<Notify>) {
        let mut backoff = Duration::from_secs(1);
        // The route's weights as read back after the last change Switchyard made.
        let mut written: Option<Vec<(u64, u64)>> = None;
        loop {
            let (generation, plan, routing) = {
                let apps = self.apps();
                let Some(e) = apps.get(&app) else { return };
                let done = e.progress.borrow().applied;
                if e.generation > done {
                    (e.generation, e.plan.clone(), e.routing.clone())
                } else {
                    (0, None, e.routing.clone())
                }
            };
            let split = plan.as_ref().is_some_and(splits);
            let result = match plan {
                Some(plan) if generation > 0 => Some(self.reconcile(&app, &routing, &plan).await),
                _ => None,
            };
            let wait = match result {
                Some(Ok(weights)) => {
                    backoff = Duration::from_secs(1);
                    // Read back only while the routes split traffic (a rollout in progress): at
                    // rest an app costs the API server nothing.
                    written = weights.filter(|_| split);
                    self.report(&app, |p| {
                        p.applied = p.applied.max(generation);
                        p.error = None;
                    });
                    DRIFT_CHECK
                }
                Some(Err(e)) => {
                    tracing::warn!(%app, error = %e, retry = ?backoff, "routes not applied");
                    self.report(&app, |p| p.error = Some(e.clone()));
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
                None => {
                    if let Some(expected) = &written {
                        self.check_drift(&app, &routing, expected).await;
                    }
                    DRIFT_CHECK
                }
            };
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Compares the route's weights with what Switchyard last wrote; a difference is drift,
    /// reported until the next plan.
    async fn check_drift(&self, app: &AppName, routing: &AppRouting, expected: &[(u64, u64)]) {
        let Ok(client) = self.cluster.client().await else {
            return;
        };
        let Ok(Some(route)) = Route::of(&client, app, routing) else {
            return;
        };
        let Ok(now) = route.read().await else {
            return;
        };
        let found = route.weights(&now);
        if found == expected {
            return;
        }
        let show = |w: &[(u64, u64)]| {
            w.iter()
                .map(|(s, c)| format!("{s}/{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let what = format!(
            "{}: the weights of {}/{} are {} where Switchyard wrote {}",
            route.what(),
            route.stable,
            route.canary,
            show(&found),
            show(expected)
        );
        self.report(app, |p| {
            if p.drift.as_ref() != Some(&what) {
                p.drift = Some(what);
            }
        });
    }

    fn report(&self, app: &AppName, f: impl FnOnce(&mut Progress)) {
        if let Some(e) = self.apps().get(app) {
            e.progress.send_modify(f);
        }
    }

    /// Applies `plan` to the cluster, from what the cluster holds now.
    async fn reconcile(
        &self,
        app: &AppName,
        routing: &AppRouting,
        plan: &RoutePlan,
    ) -> Result<Option<Vec<(u64, u64)>>, String> {
        let client = self.cluster.client().await.map_err(|e| e.to_string())?;
        if routing.sized_by_weight {
            return self
                .size_by_weight(&client, app, routing, plan)
                .await
                .map(|()| None);
        }
        let ns = &routing.namespace;
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        let mut observed = Observed::default();
        for role in [Role::Stable, Role::Canary] {
            let name = role.service(app);
            let current = services
                .get_opt(&name)
                .await
                .map_err(|e| describe(format!("reading Service {name} in namespace {ns}"), e))?;
            let selects = match current {
                Some(s) => objects::service_release(&s),
                None => {
                    let fresh =
                        objects::service(app, role, None, routing.port, routing.service_port);
                    apply_service(&services, &fresh).await?;
                    None
                }
            };
            match role {
                Role::Stable => observed.stable = selects,
                _ => observed.canary = selects,
            }
        }
        let route = Route::of(&client, app, routing)?;
        if let Some(route) = &route {
            observed.stable_weight = route.stable_weight().await?;
        }
        let targets: Vec<(Version, u32)> = plan
            .targets
            .iter()
            .map(|t| (t.version.clone(), t.weight))
            .collect();
        let mut extra = Vec::new();
        if let Some((v, _)) = &plan.header_route {
            extra.push(v);
        }
        if let Some((v, _)) = &plan.mirror {
            extra.push(v);
        }
        let desired = plan::desired(&observed, &targets, &extra)?;
        for step in plan::steps(&observed, &desired) {
            match step {
                Step::Select(role, version) => {
                    let s = objects::service(
                        app,
                        role,
                        Some(&version),
                        routing.port,
                        routing.service_port,
                    );
                    apply_service(&services, &s).await?;
                }
                Step::WaitEndpoints(role) => {
                    wait_endpoints(&client, ns, &role.service(app)).await?;
                }
                Step::Weights(w) => {
                    if let Some(route) = &route {
                        route.edit(|r| route.set_weights(r, w)).await?;
                    }
                }
            }
        }
        self.preview(app, routing, &services, plan).await?;
        if let Some(route) = &route {
            let service_of = |v: &Version| {
                if *v == desired.stable {
                    Role::Stable.service(app)
                } else {
                    Role::Canary.service(app)
                }
            };
            let header = plan
                .header_route
                .as_ref()
                .map(|(v, m)| (service_of(v), m.clone()));
            let mirror = plan.mirror.as_ref().map(|(v, p)| (service_of(v), *p));
            route
                .edit(|r| {
                    route.set_header_route(
                        r,
                        header.as_ref().map(|(s, m)| (s.as_str(), m.as_slice())),
                    )?;
                    route.set_mirror(r, mirror.as_ref().map(|(s, p)| (s.as_str(), *p)))
                })
                .await?;
        }
        match &route {
            Some(route) => Ok(Some(route.weights(&route.read().await?))),
            None => Ok(None),
        }
    }
}

impl KubeRouter {
    /// Without a router: the stable Service selects every pod of the app, and each release's
    /// ReplicaSet gets its share of the replicas (rounded up, as Argo Rollouts' basic canary),
    /// the growing ones first and Ready before the others shrink.
    async fn size_by_weight(
        &self,
        client: &kube::Client,
        app: &AppName,
        routing: &AppRouting,
        plan: &RoutePlan,
    ) -> Result<(), String> {
        let ns = &routing.namespace;
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        let all = objects::service_of_app(app, Role::Stable, routing.port, routing.service_port);
        apply_service(&services, &all).await?;
        let sizes = plan::sizes(
            &plan.targets.iter().map(|t| t.weight).collect::<Vec<_>>(),
            routing.replicas,
        );
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
        let mut changes = Vec::new();
        for (target, size) in plan.targets.iter().zip(sizes) {
            let selector = format!(
                "{APP_LABEL}={app},{RELEASE_LABEL}={}",
                objects::release_label(&target.version)
            );
            let found = sets
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| {
                    describe(
                        format!("listing the ReplicaSets of {app} in namespace {ns}"),
                        e,
                    )
                })?;
            for rs in found.items {
                let current = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                let name = rs.metadata.name.clone().unwrap_or_default();
                if i64::from(current) != i64::from(size) {
                    changes.push((name, i64::from(current), i64::from(size)));
                }
            }
        }
        // Grow, wait for Ready pods, then shrink: the app never has fewer Ready pods than asked.
        changes.sort_by_key(|(_, current, size)| size <= current);
        for (name, current, size) in changes {
            let patch = serde_json::json!({"spec": {"replicas": size}});
            let params = PatchParams {
                field_manager: Some(SIZE_MANAGER.into()),
                ..PatchParams::default()
            };
            sets.patch(&name, &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| {
                    describe(
                        format!("scaling ReplicaSet {name} in namespace {ns} to {size}"),
                        e,
                    )
                })?;
            if size > current {
                wait_ready_replicas(&sets, &name, size).await?;
            }
        }
        Ok(())
    }

    /// Points the preview Service at the plan's preview release (blue-green), or at nothing.
    async fn preview(
        &self,
        app: &AppName,
        routing: &AppRouting,
        services: &Api<Service>,
        plan: &RoutePlan,
    ) -> Result<(), String> {
        let name = Role::Preview.service(app);
        let ns = &routing.namespace;
        let current = services
            .get_opt(&name)
            .await
            .map_err(|e| describe(format!("reading Service {name} in namespace {ns}"), e))?;
        let wanted = plan.preview.as_ref().map(|t| &t.version);
        let selects = current.as_ref().and_then(objects::service_release);
        if current.is_none() && wanted.is_none() || selects.as_ref() == wanted {
            return Ok(());
        }
        let s = objects::service(
            app,
            Role::Preview,
            wanted,
            routing.port,
            routing.service_port,
        );
        apply_service(services, &s).await
    }
}

fn describe(action: String, e: kube::Error) -> String {
    ClusterError::of(action, e).to_string()
}

async fn apply_service(api: &Api<Service>, service: &Service) -> Result<(), String> {
    let name = service.metadata.name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(service),
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        describe(
            format!(
                "applying Service {name} in namespace {}",
                api.namespace().unwrap_or_default()
            ),
            e,
        )
    })
}

/// Waits until the ReplicaSet reports `size` Ready pods.
async fn wait_ready_replicas(sets: &Api<ReplicaSet>, name: &str, size: i64) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + ENDPOINTS_WAIT;
    loop {
        let rs = sets
            .get(name)
            .await
            .map_err(|e| describe(format!("reading ReplicaSet {name}"), e))?;
        let ready = rs
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if i64::from(ready) >= size {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "ReplicaSet {name} has {ready} of {size} pods Ready after {} s",
                ENDPOINTS_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the Service's EndpointSlices list a Ready endpoint.
async fn wait_endpoints(client: &kube::Client, ns: &str, service: &str) -> Result<(), String> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let deadline = tokio::time::Instant::now() + ENDPOINTS_WAIT;
    loop {
        let slices = api.list(&lp).await.map_err(|e| {
            describe(
                format!("listing the EndpointSlices of Service {service} in namespace {ns}"),
                e,
            )
        })?;
        let ready = slices.items.iter().flat_map(|s| &s.endpoints).any(|e| {
            e.conditions
                .as_ref()
                .is_some_and(|c| c.ready.unwrap_or(false))
        });
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "Service {service} in namespace {ns} has no Ready endpoint after {} s",
                ENDPOINTS_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether a plan sends traffic to more than one release (a header route or a mirror counts).
fn splits(plan: &RoutePlan) -> bool {
    plan.targets.iter().filter(|t| t.weight > 0).count() > 1
        || plan.header_route.is_some()
        || plan.mirror.is_some()
}
