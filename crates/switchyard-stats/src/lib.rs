//! Pure statistics for Switchyard: A/B-test analysis, sequential tests for
//! canary judging, power analysis, and Kayenta-compatible canary
//! classification.
//!
//! Synchronous functions over plain data: no IO, no async, no global state.
//! Distributions come from `statrs`; the tests themselves are implemented
//! here and checked against R, scipy, statsmodels and GrowthBook golden values
//! (`tests/data`). Conventions and formulas: `docs/statistics.md`.
//!
//! [`run_method`] is the JSON contract behind `switchyard stats METHOD`.

pub mod adjust;
pub mod arm;
pub mod bayes;
pub mod contract;
pub mod cuped;
pub mod dist;
pub mod error;
pub mod kayenta;
pub mod mann_whitney;
pub mod power;
pub mod proportions;
pub mod ratio;
pub mod sequential;
pub mod srm;
pub mod t_test;
pub mod zeroin;

pub use adjust::{AdjustMethod, adjust_p_values};
pub use arm::{Arm, ArmSummary};
pub use bayes::{BayesResult, NormalPrior, bayesian_from_estimate, bayesian_test};
pub use contract::{METHODS, run_method};
pub use cuped::{CupedArm, CupedMoments, CupedResult, cuped_estimate, cuped_test};
pub use error::{Result, StatsError};
pub use kayenta::classifier::{
    CanaryClassification, CanaryClassifierConfig, Classification, Direction, classify_canary,
};
pub use kayenta::percentile::percentile_r7;
pub use mann_whitney::{MannWhitneyResult, mann_whitney};
pub use proportions::{Proportion, TwoProportionResult, two_proportion_test};
pub use ratio::{RatioArm, ratio_test};
pub use sequential::two_proportion::{
    MarginEvidence, ProportionCounts, SequentialProportionConfig, SequentialProportionSnapshot,
    SequentialProportionTest,
};
pub use sequential::{
    SequentialMethod, SequentialOptions, SequentialResult, sequential_from_estimate,
    sequential_test,
};
pub use srm::{SrmResult, sample_ratio_mismatch};
pub use t_test::{
    Alternative, Difference, EffectEstimate, TTestOptions, TTestResult, difference_estimate,
    t_inference, welch_t_test,
};
