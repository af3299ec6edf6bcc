//! Switchyard's vocabulary: names, manifests and their validation, condition expressions, and
//! the port traits that adapters implement. Nothing here does IO.
//!
//! - [`name`]: validated names of apps, objects and versions.
//! - [`manifest`]: the documents users write, and their loading with located errors.
//! - [`expr`]: condition expressions (`result < 0.01`).
//! - [`time`]: timestamps as data, and the clock port.
//! - [`telemetry`]: what the data plane reports per release.
//! - [`dataplane`]: the table protocol between the control plane and its proxies.
//! - [`release`]: one version of an app, resolved for a runtime.
//! - [`ports`]: the store and runtime traits adapters implement.
//! - [`duration`]: humantime durations in manifests.
//! - [`human`]: numbers rounded for people in messages and views.
//! - [`cookie`]: a cookie's value from a request's `Cookie` headers.

pub mod cookie;
pub mod dataplane;
pub mod duration;
pub mod expr;
pub mod human;
pub mod manifest;
pub mod name;
pub mod ports;
pub mod release;
pub mod telemetry;
pub mod time;

pub use expr::{Condition, Value};
pub use name::{AppName, NameError, ObjectName, Version, check_key};
pub use release::{Release, Workload};
pub use telemetry::{ReleaseMetrics, ReleaseTotals, WindowStats};
pub use time::{Clock, SystemClock, Timestamp};
