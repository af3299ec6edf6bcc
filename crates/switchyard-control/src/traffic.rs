//! [`TrafficOwner`]: the one writer of every app's routes.
//!
//! Whatever changes where an app's requests go — a rollout's transition, a first release, a
//! traffic experiment's split or its end, an apply that changes the app — holds the app's lock
//! while it checks what it depends on and writes the routes. The routes can only be written
//! through an [`AppTraffic`] guard, so a check and the write it justifies cannot be separated
//! by another writer. Apps are independent: a slow step of one never waits for another.
//!
//! Who may take the routes is the other half: a running traffic experiment claims its app
//! ([`SplitClaims`]), and the controller refuses to start a release there while it does.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use switchyard_core::AppName;
use tokio::sync::OwnedMutexGuard;

use crate::ports::{ExperimentRoutes, RouteError, RoutePlan, TrafficRouter};

/// Which running traffic experiment splits an app, if any.
pub trait SplitClaims: Send + Sync {
    /// The key of the running traffic experiment that splits `app`.
    fn splitting(&self, app: &AppName) -> Option<String>;
}

/// No app is ever split (for a controller without experiments).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSplits;

impl SplitClaims for NoSplits {
    fn splitting(&self, _: &AppName) -> Option<String> {
        None
    }
}

/// Serialises everything that changes an app's routes; see the module's documentation.
pub struct TrafficOwner {
    router: Arc<dyn TrafficRouter>,
    claims: Arc<dyn SplitClaims>,
    locks: Mutex<HashMap<AppName, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for TrafficOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficOwner").finish_non_exhaustive()
    }
}

/// The right to change one app's routes, held until dropped.
pub struct AppTraffic {
    app: AppName,
    router: Arc<dyn TrafficRouter>,
    claims: Arc<dyn SplitClaims>,
    _lock: OwnedMutexGuard<()>,
}

impl std::fmt::Debug for AppTraffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppTraffic")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl TrafficOwner {
    pub fn new(router: Arc<dyn TrafficRouter>, claims: Arc<dyn SplitClaims>) -> Self {
        Self {
            router,
            claims,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for the right to change `app`'s routes.
    pub async fn lock(&self, app: &AppName) -> AppTraffic {
        let lock = {
            // A panic while holding this map's lock leaves it consistent (one insert).
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(app.clone()).or_default())
        };
        AppTraffic {
            app: app.clone(),
            router: Arc::clone(&self.router),
            claims: Arc::clone(&self.claims),
            _lock: lock.lock_owned().await,
        }
    }

    /// Waits for the right to change every app of `apps`, taken in name order so that two
    /// callers never wait for each other.
    pub async fn lock_all<'a>(
        &self,
        apps: impl IntoIterator<Item = &'a AppName>,
    ) -> Vec<AppTraffic> {
        let names: BTreeSet<&AppName> = apps.into_iter().collect();
        let mut guards = Vec::with_capacity(names.len());
        for app in names {
            guards.push(self.lock(app).await);
        }
        guards
    }

    /// The key of the running traffic experiment that splits `app`, if any.
    pub fn splitting(&self, app: &AppName) -> Option<String> {
        self.claims.splitting(app)
    }

    /// The address of the app's preview listener, if it has one.
    pub fn preview_addr(&self, app: &AppName) -> Option<SocketAddr> {
        self.router.preview_addr(app)
    }

    /// What changed the app's routes outside Switchyard, if anything (see
    /// [`TrafficRouter::drift`]).
    pub fn drift(&self, app: &AppName) -> Option<String> {
        self.router.drift(app)
    }

    /// Where the app's routes are written and how they stand (see
    /// [`TrafficRouter::describe`]).
    pub fn describe(&self, app: &AppName) -> Option<String> {
        self.router.describe(app)
    }

    /// Why the app's routes are not in force yet, if they are not (see
    /// [`TrafficRouter::not_applied`]).
    pub fn not_applied(&self, app: &AppName) -> Option<String> {
        self.router.not_applied(app)
    }

    /// Resolves once no request is in flight to `endpoint`, or its drain deadline passed.
    pub fn drained(
        &self,
        app: &AppName,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.router.drained(app, endpoint)
    }
}

impl AppTraffic {
    pub fn app(&self) -> &AppName {
        &self.app
    }

    /// The key of the running traffic experiment that splits this app, if any.
    pub fn splitting(&self) -> Option<String> {
        self.claims.splitting(&self.app)
    }

    /// Replaces the app's routes at once.
    pub fn route(&self, plan: RoutePlan) {
        self.router.route(&self.app, plan);
    }

    /// Resolves once every live proxy serves the routes as last written (`true`), or after a
    /// bounded wait (`false`).
    pub fn applied(&self) -> Pin<Box<dyn Future<Output = bool> + Send + 'static>> {
        self.router.applied(&self.app)
    }

    /// Routes the app to the variants of a traffic experiment.
    ///
    /// # Errors
    /// See [`TrafficRouter::route_experiment`]; nothing changes then.
    pub fn route_experiment(&self, routes: ExperimentRoutes) -> Result<(), RouteError> {
        self.router.route_experiment(&self.app, routes)
    }
}
