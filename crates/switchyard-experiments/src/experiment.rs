//! An experiment manifest compiled for ingestion and analysis: variants with their shares,
//! every metric resolved to its definition and role, guardrails, and an index from event name to
//! the metrics that read it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use switchyard_core::Timestamp;
use switchyard_core::manifest::Experiment;
use switchyard_core::manifest::experiment::{
    AnalysisSettings, Better, Cap, InvalidExperiment, MetricDefinition, Scale, SplitSpec,
};
use switchyard_flags::HashVersion;
use switchyard_flags::hashing::split_index;

use crate::moments::{EarlyEvent, StoredValue, UnitEvent, UnitValue};

/// A validated experiment, ready for [`crate::event::validate_batch`] and
/// [`crate::analysis::analyze`].
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledExperiment {
    key: String,
    split: Split,
    variants: Vec<Variant>,
    metrics: Vec<Metric>,
    guardrails: Vec<Guardrail>,
    settings: AnalysisSettings,
    minimum_sample_size: u64,
    max_duration: Duration,
    /// Event name → indices into `metrics` of the metrics that read it.
    readers: BTreeMap<String, Vec<usize>>,
}

/// How units are assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Through the flag engine; `unit` is the stickiness attribute.
    Flag { unit: String },
    /// By the proxy of `app`.
    Traffic { app: String },
}

/// One variant and its expected share of units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    pub name: String,
    pub weight: u32,
    /// weight / Σ weights.
    pub share: f64,
}

/// What a metric is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricRole {
    /// The first metric: it decides shipping.
    Primary,
    /// Any other metric of `metrics`: reported, corrected for multiple testing, and a significant
    /// degradation blocks shipping.
    Secondary,
    /// A built-in metric named only by a guardrail.
    GuardrailOnly,
}

/// A metric with its definition, direction and role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub name: String,
    pub definition: MetricDefinition,
    pub better: Better,
    pub role: MetricRole,
    /// Events count from `.0` after the unit's exposure for `.1`; all after it when `None`.
    pub window: Option<(Duration, Duration)>,
    /// A unit's value (and its pre-exposure covariate) counts at most a value, or at most a
    /// quantile of the exposed units' values (see [`crate::data::percentile_caps`]).
    pub cap: Option<Cap>,
    /// Only events this long before the unit's exposure make its covariate; every earlier
    /// event when `None` (conversion and continuous metrics with CUPED on).
    pub lookback: Option<Duration>,
}

/// Events kept per unit and metric until the unit's exposure (see [`Metric::record`]); past
/// this, the oldest is forgotten.
pub const MAX_EARLY_EVENTS: usize = 1_000;

/// How each unit's value of the metric is aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Conversion,
    Continuous,
    Ratio,
}

impl Metric {
    pub fn kind(&self) -> MetricKind {
        match self.definition {
            MetricDefinition::Conversion { .. } => MetricKind::Conversion,
            MetricDefinition::Continuous { .. } => MetricKind::Continuous,
            MetricDefinition::Ratio { .. } => MetricKind::Ratio,
        }
    }

    /// Whether the metric's comparisons count towards decisions (and the correction).
    pub fn is_goal(&self) -> bool {
        self.role != MetricRole::GuardrailOnly
    }

    /// A unit's value after `event`: as [`UnitValue::apply`], except that an event after the
    /// exposure but outside the metric's window, or before it by more than the lookback,
    /// changes nothing.
    pub fn apply(
        &self,
        value: UnitValue,
        event: &UnitEvent<'_>,
        exposed_at: Option<Timestamp>,
    ) -> UnitValue {
        if let Some(exposed) = exposed_at {
            if let Some((delay, duration)) = self.window {
                let (from, until) = (exposed.plus(delay), exposed.plus(delay).plus(duration));
                if event.at >= exposed && !(event.at >= from && event.at < until) {
                    return value;
                }
            }
            if let Some(lookback) = self.lookback {
                if event.at < exposed && event.at.plus(lookback) < exposed {
                    return value;
                }
            }
        }
        value.apply(&self.definition, event, exposed_at)
    }

    /// The stored value after `event`; returns whether it changed.
    ///
    /// Before the unit's exposure is known, a metric with a lookback keeps the event (its time
    /// decides later whether it counts; at most [`MAX_EARLY_EVENTS`], the oldest forgotten);
    /// every other event changes the value at once, as [`Metric::apply`].
    pub fn record(
        &self,
        stored: &mut StoredValue,
        event: &UnitEvent<'_>,
        exposed_at: Option<Timestamp>,
    ) -> bool {
        if exposed_at.is_none() && self.keeps_early_events() {
            if stored.early.len() >= MAX_EARLY_EVENTS {
                if let Some(oldest) = (0..stored.early.len()).min_by_key(|&i| stored.early[i].at) {
                    stored.early.swap_remove(oldest);
                }
            }
            stored.early.push(EarlyEvent {
                at: event.at,
                value: event.value,
            });
            return true;
        }
        let old = stored.value;
        stored.value = self.apply(old, event, exposed_at);
        stored.value != old
    }

    /// The unit was exposed at `exposed_at`: the events kept since before then count now, each
    /// where its time puts it (the covariate within the lookback, the metric from the exposure
    /// on, within the window).
    pub fn expose(&self, stored: &mut StoredValue, exposed_at: Timestamp) {
        let name = match &self.definition {
            MetricDefinition::Conversion { event } | MetricDefinition::Continuous { event } => {
                event.as_str()
            }
            MetricDefinition::Ratio { .. } => return,
        };
        for early in std::mem::take(&mut stored.early) {
            let event = UnitEvent {
                name,
                value: early.value,
                at: early.at,
            };
            stored.value = self.apply(stored.value, &event, Some(exposed_at));
        }
    }

    fn keeps_early_events(&self) -> bool {
        self.lookback.is_some() && self.kind() != MetricKind::Ratio
    }

    /// What a unit's value counts for in its variant's moments as events arrive: capped at the
    /// metric's cap value (the stored value stays as measured, so the cap applies the same way
    /// to every change). A percentile cap is applied at each analysis instead.
    pub fn counted(&self, value: UnitValue) -> UnitValue {
        match self.cap {
            Some(Cap::Value { value: cap }) => capped(value, cap),
            _ => value,
        }
    }
}

/// `value` with its metric and covariate at most `cap`.
pub(crate) fn capped(value: UnitValue, cap: f64) -> UnitValue {
    UnitValue {
        x: value.x.min(cap),
        c: value.c.min(cap),
        ..value
    }
}

/// A guardrail on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guardrail {
    pub metric: String,
    pub max_degradation: f64,
    pub scale: Scale,
}

impl CompiledExperiment {
    /// Validates and compiles an experiment manifest.
    ///
    /// # Errors
    /// The manifest's first problem, with its field path (see
    /// [`Experiment::validate`](switchyard_core::manifest::Experiment::validate)).
    pub fn new(experiment: &Experiment) -> Result<Self, InvalidExperiment> {
        let all = experiment.all_metrics()?;
        let spec = &experiment.spec;
        let total = spec.total_weight() as f64;
        let variants = spec
            .variants
            .iter()
            .map(|v| Variant {
                name: v.name.to_string(),
                weight: v.weight,
                share: f64::from(v.weight) / total,
            })
            .collect();
        let goals = spec.metrics.len();
        let metrics: Vec<Metric> = all
            .into_iter()
            .enumerate()
            .map(|(i, (name, definition, better))| {
                // Built-ins named only by guardrails have no spec of their own.
                let written = spec.metrics.iter().find(|m| m.name == name);
                Metric {
                    window: written
                        .and_then(|m| m.window)
                        .map(|w| (w.delay, w.duration)),
                    cap: written.and_then(|m| m.cap).and_then(|c| c.cap()),
                    lookback: spec
                        .analysis
                        .cuped
                        .then_some(spec.analysis.cuped_lookback)
                        .flatten(),
                    name: name.to_string(),
                    definition,
                    better,
                    role: match i {
                        0 => MetricRole::Primary,
                        i if i < goals => MetricRole::Secondary,
                        _ => MetricRole::GuardrailOnly,
                    },
                }
            })
            .collect();
        let mut readers: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, m) in metrics.iter().enumerate() {
            for event in m.definition.events() {
                let list = readers.entry(event.to_string()).or_default();
                if !list.contains(&i) {
                    list.push(i);
                }
            }
        }
        let guardrails = spec
            .guardrails
            .iter()
            .map(|g| Guardrail {
                metric: g.metric.to_string(),
                max_degradation: g.max_degradation,
                scale: g.scale,
            })
            .collect();
        let split = match &spec.split {
            SplitSpec::Flag(f) => Split::Flag {
                unit: f.unit.clone(),
            },
            SplitSpec::Traffic(t) => Split::Traffic {
                app: t.app.to_string(),
            },
        };
        Ok(CompiledExperiment {
            key: experiment.key().to_owned(),
            split,
            variants,
            metrics,
            guardrails,
            settings: spec.analysis.clone(),
            minimum_sample_size: spec.minimum_sample_size,
            max_duration: spec.max_duration,
            readers,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn split(&self) -> &Split {
        &self.split
    }

    /// Every variant; the first is control.
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// The variant a unit key is assigned to: the flag engine's split bucketing (hashing `v1`,
    /// salt = the experiment's key, the variants' weights), so the flag of a flag experiment
    /// serves the same variant; for code that assigns units without evaluating the flag. (The
    /// proxy of a traffic experiment uses its own sticky bucketing.)
    /// `None` only if every weight were zero, which a compiled experiment rules out.
    pub fn assign(&self, unit: &str) -> Option<&Variant> {
        let weights: Vec<u32> = self.variants.iter().map(|v| v.weight).collect();
        let index = split_index(HashVersion::V1, &self.key, unit, &weights)?;
        self.variants.get(index)
    }

    /// Every metric: `metrics` of the manifest (primary first), then guardrail-only built-ins.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The metrics whose definition reads `event`.
    pub fn metrics_reading<'a>(&'a self, event: &str) -> impl Iterator<Item = &'a Metric> + 'a {
        self.readers
            .get(event)
            .into_iter()
            .flatten()
            .map(|&i| &self.metrics[i])
    }

    /// The names of all events some metric reads.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        self.readers.keys().map(String::as_str)
    }

    pub fn guardrails(&self) -> &[Guardrail] {
        &self.guardrails
    }

    pub fn settings(&self) -> &AnalysisSettings {
        &self.settings
    }

    /// Units each variant needs before any decision.
    pub fn minimum_sample_size(&self) -> u64 {
        self.minimum_sample_size
    }

    pub fn max_duration(&self) -> Duration {
        self.max_duration
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::path::Path;

    use switchyard_core::manifest::experiment::FlagServing;
    use switchyard_core::manifest::load_str;
    use switchyard_flags::{EvaluationContext, FlagSet, Timestamp};

    use super::*;

    const TEXT: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: onboarding}
spec:
  split: {flag: {unit: accountId}}
  variants: [{name: control, weight: 2}, {name: short, weight: 1}, {name: video, weight: 1}]
  metrics:
    - {name: activated, conversion: {event: activated}}
    - {name: seats, continuous: {event: seat-added}}
"#;

    #[test]
    fn assignment_is_the_flags_split() {
        let set = load_str(TEXT, Path::new("e.yaml")).unwrap();
        let manifest = &set.experiments[0];
        let e = CompiledExperiment::new(manifest).unwrap();
        let flag = manifest.flag_definition(FlagServing::Split).unwrap();
        let flags = FlagSet {
            flags: vec![flag],
            segments: BTreeMap::new(),
        }
        .compile()
        .unwrap();
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for i in 0..4000 {
            let unit = format!("account-{i}");
            let ctx = EvaluationContext::new().with_attribute("accountId", unit.as_str());
            let served = flags.evaluate("onboarding", None, &ctx, Timestamp::from_unix_millis(0));
            let assigned = e.assign(&unit).unwrap();
            assert_eq!(served.variant, Some(assigned.name.as_str()), "{unit}");
            *counts.entry(served.variant.unwrap()).or_default() += 1;
        }
        // 2 : 1 : 1, within a few standard deviations.
        assert!((1850..2150).contains(&counts["control"]), "{counts:?}");
        assert!((900..1100).contains(&counts["short"]), "{counts:?}");
        assert_eq!(e.variants()[0].share, 0.5);
    }

    /// Events kept before the exposure is known land where their times put them once it is:
    /// the covariate within the lookback, the metric from the exposure on (within the window),
    /// nowhere before the lookback; at most `MAX_EARLY_EVENTS` are kept, the newest.
    #[test]
    fn early_events_count_where_the_exposure_puts_them() {
        let text = TEXT.replace(
            "    - {name: seats, continuous: {event: seat-added}}\n",
            "    - {name: seats, continuous: {event: seat-added}, window: {duration: 1h}}\n  \
             analysis: {cupedLookback: 1day}\n",
        );
        let set = load_str(&text, Path::new("e.yaml")).unwrap();
        let e = CompiledExperiment::new(&set.experiments[0]).unwrap();
        let seats = e.metric("seats").unwrap();
        assert_eq!(seats.lookback, Some(Duration::from_secs(86_400)));
        let hour = 3_600_000;
        let exposed = switchyard_core::Timestamp::from_millis(100 * hour);
        let at = |h: u64, value: f64| UnitEvent {
            name: "seat-added",
            value,
            at: switchyard_core::Timestamp::from_millis(h * hour),
        };
        let mut stored = StoredValue::default();
        // 30 h before (out), 2 h before (in), 30 min after (in the window), 3 h after (out).
        for event in [at(70, 1.0), at(98, 2.0), at(100, 4.0), at(103, 8.0)] {
            assert!(seats.record(&mut stored, &event, None));
        }
        assert_eq!(stored.value, UnitValue::default());
        assert_eq!(stored.early.len(), 4);
        seats.expose(&mut stored, exposed);
        assert!(stored.early.is_empty());
        assert_eq!(
            stored.value,
            UnitValue {
                x: 4.0,
                y: 0.0,
                c: 2.0
            }
        );
        // Once the exposure is known, events count at once, by the same rules.
        assert!(!seats.record(&mut stored, &at(50, 16.0), Some(exposed)));
        assert!(seats.record(&mut stored, &at(90, 32.0), Some(exposed)));
        assert_eq!(stored.value.c, 34.0);

        let mut flood = StoredValue::default();
        for i in 0..(MAX_EARLY_EVENTS as u64 + 5) {
            seats.record(&mut flood, &at(i, 1.0), None);
        }
        assert_eq!(flood.early.len(), MAX_EARLY_EVENTS);
        let oldest = flood.early.iter().map(|e| e.at).min().unwrap();
        assert_eq!(oldest, switchyard_core::Timestamp::from_millis(5 * hour));

        // Without a lookback nothing is kept: the covariate counts at once.
        let plain =
            CompiledExperiment::new(&load_str(TEXT, Path::new("e.yaml")).unwrap().experiments[0])
                .unwrap();
        let mut stored = StoredValue::default();
        let seats = plain.metric("seats").unwrap();
        assert!(seats.record(&mut stored, &at(10, 2.0), None));
        assert!(stored.early.is_empty());
        assert_eq!(stored.value.c, 2.0);
    }

    #[test]
    fn events_index_the_metrics_that_read_them() {
        let set = load_str(TEXT, Path::new("e.yaml")).unwrap();
        let e = CompiledExperiment::new(&set.experiments[0]).unwrap();
        let names: Vec<&str> = e
            .metrics_reading("seat-added")
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["seats"]);
        assert_eq!(e.metrics_reading("nothing").count(), 0);
        assert_eq!(e.events().collect::<Vec<_>>(), ["activated", "seat-added"]);
        assert_eq!(e.metrics()[0].role, MetricRole::Primary);
        assert_eq!(e.metrics()[1].role, MetricRole::Secondary);
        assert_eq!(
            e.split(),
            &Split::Flag {
                unit: "accountId".into()
            }
        );
    }
}
