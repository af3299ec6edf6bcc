//! The daemon's REST API (`/api/v1`), its Prometheus endpoint and health endpoints.
//!
//! HTTP only. Handlers are thin: they parse, call a service of `switchyard-control` (or read the
//! store), and turn the result into a wire type from `switchyard-api`. Errors become the stable JSON body only here, in
//! [`error::ApiError`]; causes go to the log.
//!
//! - [`router`]: the routes and the shared [`ServerContext`].
//! - [`handlers`]: one function per endpoint of manifests, apps, deploys and rollouts.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers and wire types.
//! - [`operations`]: retry, undo, emergency stop and the analysis table.
//! - [`flags`]: the flag API, the live compiled flags ([`FlagService`]) and the SSE stream.
//! - [`experiments`]: event ingestion, experiment results and reports, the flags of flag
//!   experiments ([`ExperimentService`]) and the guardrail check.
//! - [`pipelines`]: `/api/v1/releases` and `/api/v1/pipelines`: runs, approvals, window
//!   overrides, cancellations; the deployment-window gate of deploys and retries.
//! - [`notifications`]: `/api/v1/notifications`, the outbox and its failures; its counts on
//!   `/metrics`.
//! - [`incidents`]: `/api/v1/incidents`, every automatic rollback with its evidence and report.
//! - [`ofrep`]: OpenFeature remote evaluation (OFREP) over the live flags.
//! - [`observability`]: the Prometheus alerting rules and the Grafana dashboard over `/metrics`.
//! - [`rollout_metrics`]: rollout state and analysis measurements on `/metrics`.
//! - [`deployment_metrics`]: deployments started, succeeded, failed, rolled back, and how long
//!   they took, per app and environment, on `/metrics`.
//! - [`view`]: rollout state and live traffic as API views.
//! - [`audit`]: `/api/v1/audit`, the whole event log and the check of its chains.
//! - [`auth`]: the guard in front of every route (hosts, CORS, cross-site mutations, bearer
//!   tokens) and the [`auth::Caller`] handlers authorise with.
//! - [`tokens`]: the token endpoints, `/api/v1/tokens`.
//! - [`dataplane`]: the table protocol proxies follow: tables, reports, the proxies' state.
//! - [`body`]: request bodies parsed into the stable 400.
//! - [`error`]: the mapping from failures to status codes and error codes.
//! - [`stable_errors`]: every error answer in the stable body, axum's own included.
//! - [`unleash`]: Unleash's frontend API (`/api/frontend`) over the live flags.
//! - [`ui`]: the web dashboard at `/ui/`: pages rendered here, live over server-sent events.

pub mod audit;
pub mod auth;
pub mod body;
pub mod dataplane;
pub mod deployment_metrics;
pub mod error;
pub mod experiments;
pub mod flags;
pub mod handlers;
pub mod incidents;
pub mod notifications;
pub mod observability;
pub mod ofrep;
pub mod openapi;
pub mod operations;
pub mod pipelines;
pub mod rollout_metrics;
pub mod router;
pub mod stable_errors;
pub mod tokens;
pub mod ui;
pub mod unleash;
pub mod view;

pub use error::ApiError;
pub use experiments::ExperimentService;
pub use flags::FlagService;
pub use router::{FlagContext, ServerContext, router, sdk_router};
