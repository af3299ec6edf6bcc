//! Unleash's client API documents (`/api/client/features` and the delta event stream), as serde
//! types. Unknown fields are ignored on purpose: Unleash adds fields (`project`, `stale`,
//! `impressionData`, ...) that do not affect evaluation.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// `/api/client/features` (or a delta stream, folded by [`fold_events`]).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ClientFeatures {
    #[serde(default)]
    pub(crate) features: Vec<Feature>,
    #[serde(default)]
    pub(crate) segments: Vec<Segment>,
    #[serde(default)]
    pub(crate) events: Option<Vec<DeltaEvent>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Feature {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) enabled: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) strategies: Vec<Strategy>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) variants: Vec<Variant>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) dependencies: Vec<Dependency>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Strategy {
    pub(crate) name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) parameters: BTreeMap<String, Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) constraints: Vec<Constraint>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) segments: Vec<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) variants: Vec<Variant>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Constraint {
    pub(crate) context_name: String,
    pub(crate) operator: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) values: Vec<Value>,
    #[serde(default)]
    pub(crate) value: Option<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) inverted: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) case_insensitive: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Variant {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) weight: f64,
    #[serde(default)]
    pub(crate) stickiness: Option<String>,
    #[serde(default)]
    pub(crate) payload: Option<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) overrides: Vec<VariantOverride>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VariantOverride {
    pub(crate) context_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) values: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Dependency {
    pub(crate) feature: String,
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) variants: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Segment {
    pub(crate) id: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) constraints: Vec<Constraint>,
}

/// One event of Unleash's delta API.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(crate) enum DeltaEvent {
    Hydration {
        #[serde(default)]
        features: Vec<Feature>,
        #[serde(default)]
        segments: Vec<Segment>,
    },
    FeatureUpdated {
        feature: Feature,
    },
    #[serde(rename_all = "camelCase")]
    FeatureRemoved {
        feature_name: String,
    },
    SegmentUpdated {
        segment: Segment,
    },
    #[serde(rename_all = "camelCase")]
    SegmentRemoved {
        segment_id: i64,
    },
}

/// Applies delta events in order to an empty state.
pub(crate) fn fold_events(events: Vec<DeltaEvent>) -> (Vec<Feature>, Vec<Segment>) {
    let mut features: Vec<Feature> = Vec::new();
    let mut segments: Vec<Segment> = Vec::new();
    for event in events {
        match event {
            DeltaEvent::Hydration {
                features: all,
                segments: all_segments,
            } => {
                features = all;
                segments = all_segments;
            }
            DeltaEvent::FeatureUpdated { feature } => {
                match features.iter_mut().find(|f| f.name == feature.name) {
                    Some(existing) => *existing = feature,
                    None => features.push(feature),
                }
            }
            DeltaEvent::FeatureRemoved { feature_name } => {
                features.retain(|f| f.name != feature_name);
            }
            DeltaEvent::SegmentUpdated { segment } => {
                match segments.iter_mut().find(|s| s.id == segment.id) {
                    Some(existing) => *existing = segment,
                    None => segments.push(segment),
                }
            }
            DeltaEvent::SegmentRemoved { segment_id } => segments.retain(|s| s.id != segment_id),
        }
    }
    (features, segments)
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
