//! The routing tables of every app under one version, and what changed at each version.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use switchyard_core::AppName;
use switchyard_core::dataplane::{
    AppTable, TableHeaderRoute, TableMirror, TableProblem, TableStickiness, TableTarget,
    TableUpdate,
};
use switchyard_core::manifest::app::{HealthCheck, ListenerTls, Stickiness, UpstreamTls};
use switchyard_core::manifest::{App, Strategy};

use crate::ports::{ExperimentRoutes, RoutePlan, RouteTarget};

/// Versions whose changes are kept to answer deltas; a proxy further behind gets a snapshot.
pub(crate) const HISTORY: usize = 4096;

/// Where an app listens and how its requests are checked and kept, from its manifest.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListenSpec {
    pub(crate) listen: SocketAddr,
    pub(crate) preview_listen: Option<SocketAddr>,
    pub(crate) health_check: HealthCheck,
    pub(crate) stickiness: Option<Stickiness>,
    pub(crate) tls: Option<ListenerTls>,
    pub(crate) upstream_tls: Option<UpstreamTls>,
}

impl ListenSpec {
    /// `None` for an app without a listener (one its cluster routes).
    pub(crate) fn of(app: &App) -> Option<Self> {
        let preview_listen = match &app.spec.strategy {
            Strategy::BlueGreen(b) => b.preview_listen,
            Strategy::Canary(_) | Strategy::Rolling(_) => None,
        };
        Some(Self {
            listen: app.spec.listen?,
            preview_listen,
            health_check: app.spec.health_check.clone(),
            stickiness: app.spec.strategy.stickiness().cloned(),
            tls: app.spec.tls.clone(),
            upstream_tls: app.spec.upstream_tls.clone(),
        })
    }
}

/// Where an app's requests go: its release's plan, or a traffic experiment's split.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Routing {
    Plan(RoutePlan),
    Experiment(ExperimentRoutes),
}

impl Default for Routing {
    fn default() -> Self {
        Routing::Plan(RoutePlan::default())
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct AppEntry {
    pub(crate) spec: Option<ListenSpec>,
    pub(crate) routing: Routing,
}

/// Every app's table, the version, and the apps each recent version changed.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub(crate) version: u64,
    pub(crate) entries: BTreeMap<AppName, AppEntry>,
    /// What proxies are sent: the tables of the apps that have a listener.
    pub(crate) published: BTreeMap<AppName, AppTable>,
    /// `(version, app)` for every recent change, oldest first.
    history: VecDeque<(u64, AppName)>,
    /// Every change after this version is in `history`.
    history_floor: u64,
    /// The version of each app's last change.
    pub(crate) changed_at: std::collections::HashMap<AppName, u64>,
}

impl Tables {
    /// Changes `app`'s entry with `change`; publishes a new version when its table changed.
    ///
    /// # Errors
    /// The new table would not serve; nothing changed then.
    pub(crate) fn change(
        &mut self,
        app: &AppName,
        change: impl FnOnce(&mut AppEntry),
    ) -> Result<Option<u64>, TableProblem> {
        let mut entry = self.entries.get(app).cloned().unwrap_or_default();
        change(&mut entry);
        let table = assemble(app, &entry);
        if let Some(t) = &table {
            t.check()?;
        }
        let unchanged = self.published.get(app) == table.as_ref();
        if entry.spec.is_none()
            && matches!(&entry.routing, Routing::Plan(p) if p == &RoutePlan::default())
        {
            self.entries.remove(app);
        } else {
            self.entries.insert(app.clone(), entry);
        }
        if unchanged {
            return Ok(None);
        }
        match table {
            Some(t) => self.published.insert(app.clone(), t),
            None => self.published.remove(app),
        };
        self.version += 1;
        self.changed_at.insert(app.clone(), self.version);
        self.history.push_back((self.version, app.clone()));
        while self.history.len() > HISTORY {
            if let Some((v, _)) = self.history.pop_front() {
                self.history_floor = v;
            }
        }
        Ok(Some(self.version))
    }

    /// What a proxy at `(generation, version)` needs to be at this version: `None` when it is
    /// there already, a delta when the history covers the gap, a snapshot otherwise.
    pub(crate) fn update_since(
        &self,
        current_generation: u64,
        generation: u64,
        version: u64,
    ) -> Option<TableUpdate> {
        let same_generation = generation == current_generation;
        if same_generation && version == self.version {
            return None;
        }
        if same_generation && version < self.version && version >= self.history_floor {
            let apps = self
                .history
                .iter()
                .filter(|(v, _)| *v > version)
                .map(|(_, app)| (app.clone(), self.published.get(app).cloned()))
                .collect();
            return Some(TableUpdate {
                generation: current_generation,
                version: self.version,
                base: Some(version),
                apps,
            });
        }
        Some(TableUpdate {
            generation: current_generation,
            version: self.version,
            base: None,
            apps: self
                .published
                .iter()
                .map(|(app, t)| (app.clone(), Some(t.clone())))
                .collect(),
        })
    }
}

/// The table a proxy serves for `app`; `None` until the app has a listener.
pub(crate) fn assemble(app: &AppName, entry: &AppEntry) -> Option<AppTable> {
    let spec = entry.spec.as_ref()?;
    let mut table = AppTable {
        listen: spec.listen,
        preview_listen: spec.preview_listen,
        targets: Vec::new(),
        header_routes: Vec::new(),
        mirror: None,
        stickiness: None,
        health_check: spec.health_check.clone(),
        preview: None,
        experiment: None,
        tls: spec.tls.clone(),
        upstream_tls: spec.upstream_tls.clone(),
    };
    match &entry.routing {
        Routing::Plan(plan) => {
            table.targets = plan.targets.iter().map(target).collect();
            table.header_routes = plan
                .header_route
                .iter()
                .map(|(release, matches)| TableHeaderRoute {
                    release: release.clone(),
                    matches: matches.clone(),
                })
                .collect();
            table.mirror = plan.mirror.as_ref().map(|(release, percent)| TableMirror {
                release: release.clone(),
                percent: *percent,
            });
            table.stickiness = spec.stickiness.as_ref().map(|key| TableStickiness {
                key: key.clone(),
                salt: app.to_string(),
            });
            table.preview = plan.preview.as_ref().map(target);
        }
        Routing::Experiment(routes) => {
            table.targets = routes.targets.iter().map(target).collect();
            table.stickiness = Some(TableStickiness {
                key: routes.unit.clone(),
                salt: routes.experiment.clone(),
            });
            table.experiment = Some(routes.experiment.clone());
        }
    }
    Some(table)
}

fn target(t: &RouteTarget) -> TableTarget {
    TableTarget {
        release: t.version.clone(),
        weight: t.weight,
        endpoints: t.endpoints.clone(),
    }
}
