//! Power analysis: sample size, power and minimum detectable effect.
//!
//! - [`proportion`]: R's `power.prop.test` (two-sided, pooled null variance).
//! - [`mean`]: R's `power.t.test` (two-sample, two-sided, noncentral t).
//! - [`variance_based`]: GrowthBook's planner from a metric's mean and
//!   variance, with the sequential-testing inflation.

pub mod mean;
pub mod noncentral_t;
pub mod proportion;
pub mod variance_based;

/// Solver tolerance on n and effect sizes (R's results match when R is run
/// with `tol = 1e-12`; R's default `.Machine$double.eps^0.25` is coarser).
pub(crate) const SOLVER_TOLERANCE: f64 = 1e-12;
/// Upper end of the sample-size search, as R.
pub(crate) const MAX_N: f64 = 1e7;
