//! Feature flags as a service: the live compiled set, the one way to change it, and its errors.
//!
//! Every change goes through [`FlagService::change`]: edit the current set, compile the whole
//! result (a bad rule is rejected before anything is stored), store the documents that changed
//! with their audit entries, then swap the compiled set in memory. Evaluations read the swapped
//! set without a lock, so a change is visible to the next request.
//!
//! - [`service`]: [`FlagService`], the live compiled set and the change pipeline.
//! - [`live`]: [`LiveFlags`], one revision compiled for every environment it names.
//! - [`edit`]: pure edits of a flag set (apply, toggle, rollout) and the diff to store.
//! - [`error`]: the errors of flag operations ([`FlagServiceError`]).
//! - [`usage`]: [`SdkUsage`], the SDK instances that report using the flags, and their counts.

pub mod edit;
pub mod error;
pub mod live;
pub mod service;
pub mod usage;

pub use error::FlagServiceError;
pub use live::{DEFAULT_ENVIRONMENT, LiveFlags};
pub use service::{FlagService, Who};
pub use usage::SdkUsage;
