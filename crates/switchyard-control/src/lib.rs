//! The application layer between the engines and HTTP: everything the daemon does, as
//! services over ports, with no HTTP and no adapter in sight.
//!
//! - [`auth`]: roles, principals and API tokens ([`auth::Tokens`]).
//! - [`controller`]: runs rollouts by feeding events to the pure machine of
//!   `switchyard-rollout` and carrying out its actions; per-rollout error policy.
//! - [`traffic`]: [`TrafficOwner`], the one writer of each app's routes, and the claims of
//!   traffic experiments on apps.
//! - [`dataplane`]: [`dataplane::DataPlane`], the versioned routing tables proxies follow, their
//!   acknowledgements and reports, and the traffic they count, summed.
//! - [`manifests`]: [`Manifests`], applying manifests all or nothing, with the rules of traffic
//!   experiments.
//! - [`flags`]: [`FlagService`], the live compiled flags and the one way to change them.
//! - [`experiments`]: [`ExperimentService`], events, results, reports, stops and guardrails.
//! - [`pipelines`]: [`pipelines::Pipelines`], releases through pipelines and of single apps,
//!   their runner, approvals and deployment windows.
//! - [`notifications`]: the event log rendered into an outbox (webhook, Slack, CDEvents) and
//!   delivered at least once with backoff.
//! - [`incidents`]: every automatic rollback with the evidence and the traffic it rested on.
//! - [`traffic_experiments`]: splits apps between the releases of running traffic experiments
//!   and restores them when they stop.
//! - [`ports`]: what this layer needs from the data plane and the outside (routes, listeners,
//!   webhooks, smoke tests).
//!
//! It does not parse HTTP, render errors for clients, bind sockets or run processes.

pub mod auth;
pub mod controller;
pub mod dataplane;
pub mod experiments;
pub mod flags;
pub mod incidents;
pub mod manifests;
pub mod notifications;
pub mod pipelines;
pub mod ports;
pub mod traffic;
pub mod traffic_experiments;

/// Fakes of the ports, for this crate's tests and (with the `testing` feature) for the tests of
/// the crates above it.
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use controller::{
    Controller, ControllerError, ControllerPorts, Expected, RolloutSnapshot, RolloutTrouble,
};
pub use experiments::{ExperimentService, ExperimentServiceError};
pub use flags::{FlagService, FlagServiceError};
pub use manifests::{ApplyError, ManifestText, Manifests};
pub use ports::{
    ExperimentRoutes, ListenerError, ListenerRegistry, RouteError, RoutePlan, RouteTarget,
    SmokeTestError, SmokeTester, TrafficRouter, WebhookCaller, WebhookError,
};
pub use traffic::{AppTraffic, NoSplits, SplitClaims, TrafficOwner};
pub use traffic_experiments::TrafficExperiments;
