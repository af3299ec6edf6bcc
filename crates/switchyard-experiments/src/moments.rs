//! Per-unit metric values and the per-variant sufficient statistics built from them, so results
//! never need the raw events.
//!
//! Every unit has, per metric, a [`UnitValue`] `{x, y, c}`: `x` the metric (or a ratio's
//! numerator), `y` a ratio's denominator, `c` the CUPED covariate (the same metric before the
//! unit's exposure). A variant's [`Moments`] hold, over its exposed units, n and the sums
//! Σx, Σx², Σy, Σy², Σxy, Σc, Σc², Σxc: enough for means, variances, the delta method and CUPED.
//!
//! When an event changes a unit's value, the store computes the new value with
//! [`UnitValue::apply`] and updates the variant with [`Moments::replace`]`(old, new)`: an exact
//! delta, algebraically equal to recomputing the sums from every unit.

use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::MetricDefinition;

/// One unit's value of one metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitValue {
    /// The metric after exposure: 0/1 for a conversion, a sum for a continuous metric, the
    /// numerator of a ratio.
    pub x: f64,
    /// The denominator of a ratio (0 otherwise).
    pub y: f64,
    /// The covariate: the metric before exposure (conversion and continuous metrics).
    pub c: f64,
}

/// One unit's value of one metric as the store keeps it: the value, and the events that came
/// before the unit's exposure was known, while the metric's covariate has a lookback (once the
/// exposure is known, their times decide whether and where they count; see
/// [`crate::experiment::Metric::expose`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredRepr", into = "StoredRepr")]
pub struct StoredValue {
    pub value: UnitValue,
    pub early: Vec<EarlyEvent>,
}

/// How a [`StoredValue`] is written: the value's fields beside `early` (a flat object, read
/// without the buffering of `#[serde(flatten)]`, since results read every unit's values).
#[derive(Serialize, Deserialize)]
struct StoredRepr {
    x: f64,
    y: f64,
    c: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    early: Vec<EarlyEvent>,
}

impl From<StoredRepr> for StoredValue {
    fn from(r: StoredRepr) -> Self {
        StoredValue {
            value: UnitValue {
                x: r.x,
                y: r.y,
                c: r.c,
            },
            early: r.early,
        }
    }
}

impl From<StoredValue> for StoredRepr {
    fn from(s: StoredValue) -> Self {
        StoredRepr {
            x: s.value.x,
            y: s.value.y,
            c: s.value.c,
            early: s.early,
        }
    }
}

/// An event kept until its unit's exposure is known.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlyEvent {
    pub at: Timestamp,
    pub value: f64,
}

/// An event as it reaches a unit's value: its name, value (1 when none was sent) and time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitEvent<'a> {
    pub name: &'a str,
    pub value: f64,
    pub at: Timestamp,
}

impl UnitValue {
    /// The unit's value after `event`.
    ///
    /// `exposed_at` is when the unit was exposed (`None`: not yet). Events at or after the
    /// exposure change `x` and `y`; earlier ones change the covariate `c` of conversion and
    /// continuous metrics and are ignored by ratio metrics. An event the metric does not read
    /// changes nothing.
    pub fn apply(
        self,
        metric: &MetricDefinition,
        event: &UnitEvent<'_>,
        exposed_at: Option<Timestamp>,
    ) -> UnitValue {
        let after = exposed_at.is_some_and(|t| event.at >= t);
        let mut v = self;
        match metric {
            MetricDefinition::Conversion { event: name } if name.as_str() == event.name => {
                if after {
                    v.x = 1.0;
                } else {
                    v.c = 1.0;
                }
            }
            MetricDefinition::Continuous { event: name } if name.as_str() == event.name => {
                if after {
                    v.x += event.value;
                } else {
                    v.c += event.value;
                }
            }
            MetricDefinition::Ratio {
                numerator,
                denominator,
            } if after => {
                if numerator.event().as_str() == event.name {
                    v.x += numerator.contribution(event.value);
                }
                if denominator.event().as_str() == event.name {
                    v.y += denominator.contribution(event.value);
                }
            }
            _ => {}
        }
        v
    }
}

/// Sufficient statistics of one metric over a variant's units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Units.
    pub n: u64,
    pub sum_x: f64,
    pub sum_x2: f64,
    pub sum_y: f64,
    pub sum_y2: f64,
    pub sum_xy: f64,
    pub sum_c: f64,
    pub sum_c2: f64,
    pub sum_xc: f64,
}

/// A removal that the statistics cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MomentsError {
    #[error("cannot remove a unit from statistics that hold none")]
    Empty,
}

impl Moments {
    /// The statistics of these units.
    pub fn of(units: impl IntoIterator<Item = UnitValue>) -> Moments {
        let mut m = Moments::default();
        for v in units {
            m.add(v);
        }
        m
    }

    /// A unit enters (it was exposed).
    pub fn add(&mut self, v: UnitValue) {
        self.n += 1;
        self.shift(v, 1.0);
    }

    /// A unit leaves.
    ///
    /// # Errors
    /// [`MomentsError::Empty`] when there is no unit to remove; nothing changes.
    pub fn remove(&mut self, v: UnitValue) -> Result<(), MomentsError> {
        self.n = self.n.checked_sub(1).ok_or(MomentsError::Empty)?;
        self.shift(v, -1.0);
        Ok(())
    }

    /// A unit's value changed from `old` to `new`; the number of units stays.
    pub fn replace(&mut self, old: UnitValue, new: UnitValue) {
        self.shift(old, -1.0);
        self.shift(new, 1.0);
    }

    /// Adds the units of `other` (another shard of the same variant).
    pub fn merge(&mut self, other: &Moments) {
        self.n += other.n;
        self.sum_x += other.sum_x;
        self.sum_x2 += other.sum_x2;
        self.sum_y += other.sum_y;
        self.sum_y2 += other.sum_y2;
        self.sum_xy += other.sum_xy;
        self.sum_c += other.sum_c;
        self.sum_c2 += other.sum_c2;
        self.sum_xc += other.sum_xc;
    }

    fn shift(&mut self, v: UnitValue, sign: f64) {
        self.sum_x += sign * v.x;
        self.sum_x2 += sign * v.x * v.x;
        self.sum_y += sign * v.y;
        self.sum_y2 += sign * v.y * v.y;
        self.sum_xy += sign * v.x * v.y;
        self.sum_c += sign * v.c;
        self.sum_c2 += sign * v.c * v.c;
        self.sum_xc += sign * v.x * v.c;
    }

    /// The same statistics with `units − n` more units whose values are all zero: the store
    /// only needs to keep the units that have a value, the exposure count supplies the rest.
    pub fn with_units(self, units: u64) -> Moments {
        Moments {
            n: self.n.max(units),
            ..self
        }
    }

    /// n as a float, for the statistics.
    pub(crate) fn count(&self) -> f64 {
        self.n as f64
    }

    /// Mean of `x` per unit (`None` without units).
    pub fn mean_x(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum_x / self.count())
    }

    /// Σx / Σy (`None` when Σy is 0).
    pub fn ratio(&self) -> Option<f64> {
        (self.sum_y != 0.0).then(|| self.sum_x / self.sum_y)
    }

    /// n − 1 covariance of two variables from their sums (0 below two units).
    pub(crate) fn covariance(&self, sum_a: f64, sum_b: f64, sum_ab: f64) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.count();
        (sum_ab - sum_a * sum_b / n) / (n - 1.0)
    }

    pub(crate) fn var_x(&self) -> f64 {
        self.covariance(self.sum_x, self.sum_x, self.sum_x2)
            .max(0.0)
    }

    pub(crate) fn var_y(&self) -> f64 {
        self.covariance(self.sum_y, self.sum_y, self.sum_y2)
            .max(0.0)
    }

    pub(crate) fn var_c(&self) -> f64 {
        self.covariance(self.sum_c, self.sum_c, self.sum_c2)
            .max(0.0)
    }

    pub(crate) fn cov_xy(&self) -> f64 {
        self.covariance(self.sum_x, self.sum_y, self.sum_xy)
    }

    pub(crate) fn cov_xc(&self) -> f64 {
        self.covariance(self.sum_x, self.sum_c, self.sum_xc)
    }
}

#[cfg(test)]
mod tests;
