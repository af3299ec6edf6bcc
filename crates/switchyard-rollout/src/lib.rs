//! Rollouts: how a new release replaces the stable one.
//!
//! - [`machine`]: the state of one rollout and the pure transition
//!   `(state, event, now) -> (state, actions)`. Waiting is a deadline in the state.
//! - [`plan`]: strategies (canary, blue-green) compiled into the steps the machine runs.
//! - [`policy`]: the rollback policy checks (pure).
//! - [`resolve`]: turning a manifest and a deploy request into a [`switchyard_core::Release`].
//! - [`controller`]: runs the machine over the ports (store, runtime, router, metrics),
//!   persisting after every transition.

pub mod controller;
pub mod machine;
pub mod plan;
pub mod policy;
pub mod resolve;

pub use controller::{
    Controller, ControllerError, ControllerPorts, RoutePlan, RouteTarget, SmokeTester,
    TrafficRouter, WebhookCaller,
};
pub use machine::{Action, Command, Event, Phase, Rollout, TransitionError};
pub use resolve::{DeployRequest, ResolveError};
