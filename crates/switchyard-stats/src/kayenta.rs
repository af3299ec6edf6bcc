//! Canary metric classification compatible with Kayenta's NetflixACAJudge:
//! optional IQR outlier removal, a Mann-Whitney shift interval compared with
//! a tolerance band around zero, a mean-ratio effect size, and weighted
//! group scoring of the per-metric classifications.

pub mod classifier;
pub mod outliers;
pub mod percentile;
pub mod scoring;
