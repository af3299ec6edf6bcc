//! The store's operations, written once and compiled once per backend: `sqlite.rs` and
//! `postgres.rs` each declare this module, after naming their database (`Db`), connection
//! (`Conn`), pool (`Pool`), store type (`Store`, with a `pool` field) and `begin_write`, which
//! starts a transaction that holds the backend's write lock from its first statement. SQL here
//! is what both SQLite and PostgreSQL read: `$n` placeholders, `ON CONFLICT`, `RETURNING`.

mod dump;
mod events;
mod experiments;
mod flags;
mod manifests;
mod notifications;
mod rollouts;
mod runs;
mod tokens;

use std::collections::BTreeSet;

use switchyard_core::manifest::{AnalysisTemplate, ManifestSet};
use switchyard_core::ports::{
    AppRecord, ApplyOutcome, Author, DeploymentRecord, EventLogProblem, EventLogVerification,
    EventQuery, EventRecord, NewEvent, RolloutId, RolloutRecord, RolloutUpdate, RunId, RunRecord,
    RunUpdate, StateStore, StoreError,
};
use switchyard_core::{AppName, ObjectName, Release, Timestamp, Version};

use super::{
    CONCAT_VALUES, Conn, Db, OVERRIDING_IDENTITY, Pool, SOURCE, Store, after_import,
    begin_snapshot, begin_write, notify,
};
use crate::codec;

#[async_trait::async_trait]
impl StateStore for Store {
    async fn apply(
        &self,
        set: &ManifestSet,
        by: &Author,
        at: Timestamp,
    ) -> Result<ApplyOutcome, StoreError> {
        manifests::apply(self, set, by, at).await
    }

    async fn app(&self, name: &AppName) -> Result<Option<AppRecord>, StoreError> {
        manifests::app(&self.pool, name).await
    }

    async fn apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        manifests::apps(&self.pool).await
    }

    async fn template(&self, name: &ObjectName) -> Result<Option<AnalysisTemplate>, StoreError> {
        manifests::template(&self.pool, name).await
    }

    async fn template_names(&self) -> Result<BTreeSet<String>, StoreError> {
        manifests::template_names(&self.pool).await
    }

    async fn set_stable(
        &self,
        app: &AppName,
        release: &Release,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        manifests::set_stable(self, app, release, events).await
    }

    async fn create_rollout(
        &self,
        app: &AppName,
        version: &Version,
        phase: &str,
        state: &serde_json::Value,
        events: &[NewEvent],
    ) -> Result<RolloutId, StoreError> {
        rollouts::create(self, app, version, phase, state, events).await
    }

    async fn update_rollout(&self, update: &RolloutUpdate) -> Result<(), StoreError> {
        rollouts::update(self, update).await
    }

    async fn rollout(&self, id: RolloutId) -> Result<Option<RolloutRecord>, StoreError> {
        rollouts::by_id(&self.pool, id).await
    }

    async fn latest_rollout(&self, app: &AppName) -> Result<Option<RolloutRecord>, StoreError> {
        rollouts::latest(&self.pool, app).await
    }

    async fn latest_rollouts(&self) -> Result<Vec<RolloutRecord>, StoreError> {
        rollouts::latest_of_every_app(&self.pool).await
    }

    async fn active_rollouts(&self) -> Result<Vec<RolloutRecord>, StoreError> {
        rollouts::active(&self.pool).await
    }

    async fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        rollouts::deployments(&self.pool).await
    }

    async fn pipelines(&self) -> Result<Vec<switchyard_core::manifest::Pipeline>, StoreError> {
        manifests::pipelines(&self.pool).await
    }

    async fn notifiers(&self) -> Result<Vec<switchyard_core::manifest::Notifier>, StoreError> {
        manifests::notifiers(&self.pool).await
    }

    async fn windows(
        &self,
    ) -> Result<Vec<switchyard_core::manifest::DeploymentWindow>, StoreError> {
        manifests::windows(&self.pool).await
    }

    async fn create_run(
        &self,
        subject: &str,
        version: &Version,
        phase: &str,
        state: &serde_json::Value,
        events: &[NewEvent],
    ) -> Result<RunId, StoreError> {
        runs::create(self, subject, version, phase, state, events).await
    }

    async fn update_run(&self, update: &RunUpdate) -> Result<(), StoreError> {
        runs::update(self, update).await
    }

    async fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        runs::by_id(&self.pool, id).await
    }

    async fn runs(&self, subject: Option<&str>, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        runs::list(&self.pool, subject, limit).await
    }

    async fn active_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        runs::active(&self.pool).await
    }

    async fn append_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        let mut tx = begin_write(self).await?;
        events::append(&mut tx, events, events::Owner::NONE).await?;
        tx.commit()
            .await
            .map_err(codec::backend("commit appended events"))
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        events::query(&self.pool, query).await
    }

    async fn verify_events(&self) -> Result<EventLogVerification, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(codec::backend("read the event log"))?;
        let all = events::chained(&mut conn).await?;
        let check = crate::event_chain::verify(&all);
        Ok(EventLogVerification {
            ok: check.problems.is_empty(),
            events: check.checked,
            head: check.head,
            problems: check
                .problems
                .into_iter()
                .map(|(id, message)| EventLogProblem { id, message })
                .collect(),
        })
    }
}

#[async_trait::async_trait]
impl switchyard_experiments::port::ExperimentStore for Store {
    async fn experiments(
        &self,
    ) -> Result<Vec<switchyard_experiments::port::ExperimentRecord>, StoreError> {
        experiments::experiments(&self.pool).await
    }

    async fn experiment(
        &self,
        key: &str,
    ) -> Result<Option<switchyard_experiments::port::ExperimentRecord>, StoreError> {
        experiments::experiment(&self.pool, key).await
    }

    async fn ingest(
        &self,
        compiled: &std::collections::BTreeMap<String, switchyard_experiments::CompiledExperiment>,
        events: &[switchyard_experiments::ValidEvent],
        keep_raw: bool,
        received_at: Timestamp,
    ) -> Result<Vec<switchyard_experiments::port::Ingested>, StoreError> {
        experiments::ingest(self, compiled, events, keep_raw, received_at).await
    }

    async fn data(
        &self,
        key: &str,
    ) -> Result<Option<switchyard_experiments::ExperimentData>, StoreError> {
        experiments::data(&self.pool, key).await
    }

    async fn exposed_units(
        &self,
        key: &str,
        metrics: &[String],
    ) -> Result<switchyard_experiments::data::ExposedUnits, StoreError> {
        experiments::exposed_units(&self.pool, key, metrics).await
    }

    async fn counted_events(&self, key: &str) -> Result<u64, StoreError> {
        experiments::counted_events(&self.pool, key).await
    }

    async fn stop(
        &self,
        key: &str,
        reason: &str,
        by: &Author,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        experiments::stop(self, key, reason, by, at).await
    }

    async fn add_snapshot(
        &self,
        key: &str,
        snapshot: &switchyard_experiments::Snapshot,
    ) -> Result<(), StoreError> {
        experiments::add_snapshot(self, key, snapshot).await
    }

    async fn snapshots(
        &self,
        key: &str,
    ) -> Result<Vec<switchyard_experiments::Snapshot>, StoreError> {
        experiments::snapshots(&self.pool, key).await
    }
}
