//! Rollouts: how a new release replaces the stable one, as pure data and functions. The
//! controller that drives a rollout over the ports is `switchyard-control`'s.
//!
//! - [`machine`]: the state of one rollout and the pure transition
//!   `(state, event, now) -> (state, actions)`. Waiting is a deadline in the state.
//! - [`plan`]: strategies (canary, blue-green, rolling) compiled into the steps the machine runs.
//! - [`policy`]: the rollback policy checks (pure).
//! - [`resolve`]: turning a manifest and a deploy request into a [`switchyard_core::Release`].

pub mod machine;
pub mod plan;
pub mod policy;
pub mod resolve;

pub use machine::{Action, Command, Event, Phase, Rollout, TransitionError};
pub use resolve::{DeployRequest, ResolveError};
