//! Kayenta's `WeightedSumScorer` and `ThresholdScoreClassifier`: each group
//! scores the share of its metrics that Pass (×100); the summary is the
//! weighted sum of group scores, unweighted groups sharing the remaining
//! weight equally; any critical metric that does not Pass zeroes the score.

use std::collections::BTreeMap;

use crate::kayenta::classifier::Classification;

/// One metric's verdict, the groups it belongs to, and whether it is critical.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricOutcome {
    /// Group names.
    pub groups: Vec<String>,
    /// Verdict.
    pub classification: Classification,
    /// A critical metric that fails fails the whole canary.
    pub critical: bool,
}

/// Score of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupScore {
    /// Group name.
    pub name: String,
    /// Percentage of Pass among Pass/High/Low metrics (0 when none).
    pub score: f64,
    /// No metric of the group had data.
    pub no_data: bool,
}

/// Summary score (0–100) and group scores, groups sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryScore {
    /// Weighted summary score.
    pub summary: f64,
    /// Per-group scores.
    pub groups: Vec<GroupScore>,
}

/// Verdict of the summary score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreVerdict {
    /// score ≥ pass threshold.
    Pass,
    /// marginal ≤ score < pass.
    Marginal,
    /// score < marginal.
    Fail,
}

/// Scores metric outcomes with group weights (percent; missing groups share
/// 100 − Σ weights equally).
pub fn weighted_group_score(
    outcomes: &[MetricOutcome],
    group_weights: &BTreeMap<String, f64>,
) -> CanaryScore {
    let mut by_group: BTreeMap<&str, [u32; 3]> = BTreeMap::new();
    for outcome in outcomes {
        for group in &outcome.groups {
            let counts = by_group.entry(group.as_str()).or_default();
            match outcome.classification {
                Classification::Pass => counts[0] += 1,
                Classification::High => counts[1] += 1,
                Classification::Low => counts[2] += 1,
                Classification::NoData => {}
            }
        }
    }
    let groups: Vec<GroupScore> = by_group
        .iter()
        .map(|(name, [pass, high, low])| {
            let total = pass + high + low;
            GroupScore {
                name: (*name).to_owned(),
                score: if total == 0 {
                    0.0
                } else {
                    f64::from(*pass) / f64::from(total) * 100.0
                },
                no_data: total == 0,
            }
        })
        .collect();
    let weight_sum: f64 = group_weights.values().sum();
    let unweighted = groups
        .iter()
        .filter(|g| !group_weights.contains_key(&g.name))
        .count();
    let implied = if unweighted > 0 {
        (100.0 - weight_sum) / unweighted as f64
    } else {
        0.0
    };
    let critical_failure = outcomes
        .iter()
        .any(|o| o.critical && o.classification != Classification::Pass);
    let summary = if critical_failure {
        0.0
    } else {
        groups
            .iter()
            .filter(|g| !g.no_data)
            .map(|g| g.score * group_weights.get(&g.name).copied().unwrap_or(implied) / 100.0)
            .sum()
    };
    CanaryScore { summary, groups }
}

/// Classifies a summary score against Kayenta's pass and marginal thresholds.
pub fn classify_score(score: f64, pass: f64, marginal: f64) -> ScoreVerdict {
    if score >= pass {
        ScoreVerdict::Pass
    } else if score >= marginal {
        ScoreVerdict::Marginal
    } else {
        ScoreVerdict::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(group: &str, classification: Classification) -> MetricOutcome {
        MetricOutcome {
            groups: vec![group.to_owned()],
            classification,
            critical: false,
        }
    }

    #[test]
    fn weights_and_implied_weights() {
        let outcomes = [
            outcome("latency", Classification::Pass),
            outcome("latency", Classification::High),
            outcome("errors", Classification::Pass),
        ];
        let weights = BTreeMap::from([("latency".to_owned(), 60.0)]);
        let s = weighted_group_score(&outcomes, &weights);
        // latency 50 % × 0.6 + errors 100 % × 0.4.
        assert!((s.summary - 70.0).abs() < 1e-12);
        assert_eq!(classify_score(s.summary, 95.0, 75.0), ScoreVerdict::Fail);
    }

    #[test]
    fn critical_failure_zeroes_the_score() {
        let mut o = outcome("errors", Classification::High);
        o.critical = true;
        let s = weighted_group_score(
            &[o, outcome("latency", Classification::Pass)],
            &BTreeMap::new(),
        );
        assert_eq!(s.summary, 0.0);
    }
}
