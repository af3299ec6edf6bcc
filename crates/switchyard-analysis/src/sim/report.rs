//! [`SimReport`]: per judge, how often and how fast it rolled back, on the scenario and on its
//! A/A twin.

use serde::{Deserialize, Serialize};

use crate::sim::SimConfig;

/// One judge's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReport {
    /// `switchyard`, `argo`, `argo-1m`, `flagger`, `kayenta`.
    pub name: String,
    /// The rule's settings in words.
    pub settings: String,
    /// Share of scenario runs rolled back within the duration.
    pub rollback_rate: f64,
    /// Median seconds to rollback over the runs rolled back; `None` if none was.
    pub median_detection_s: Option<f64>,
    /// 90th percentile of the same.
    pub p90_detection_s: Option<f64>,
    /// Share of A/A runs (canary = baseline) rolled back: false rollbacks.
    pub aa_rollback_rate: f64,
    /// Failed canary requests served to users before the judge rolled back (to the end of the
    /// run when it never did), mean over the scenario runs.
    pub mean_bad_requests: f64,
    /// Share of A/A runs the judge passed within the duration (judges that can pass early
    /// only).
    pub aa_pass_rate: Option<f64>,
    /// Median seconds until the judge passed an A/A canary, over the runs it passed.
    pub aa_median_pass_s: Option<f64>,
}

/// Everything a simulation reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// One entry per judge.
    pub judges: Vec<JudgeReport>,
    /// The scenario as given.
    pub config: SimConfig,
}

/// Nearest-rank percentile (the smallest value with at least `q` of the data at or below it).
pub fn percentile(sorted: &[u64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64)
}

/// Share of `Some` and the median and p90 of the values.
pub fn summarize(times: &[Option<u64>]) -> (f64, Option<f64>, Option<f64>) {
    let mut hits: Vec<u64> = times.iter().flatten().copied().collect();
    hits.sort_unstable();
    let rate = hits.len() as f64 / times.len().max(1) as f64;
    (rate, percentile(&hits, 0.5), percentile(&hits, 0.9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(percentile(&v, 0.5), Some(5.0));
        assert_eq!(percentile(&v, 0.9), Some(9.0));
        assert_eq!(percentile(&[], 0.5), None);
        let (rate, median, _) = summarize(&[Some(3), None, Some(1), None]);
        assert_eq!((rate, median), (0.5, Some(1.0)));
    }
}
