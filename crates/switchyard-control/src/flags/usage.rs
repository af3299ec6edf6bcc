//! [`SdkUsage`]: which Unleash SDK instances use the flags, and how often each flag answered
//! yes, no and which variant, as the SDKs report it (`/api/client/register`,
//! `/api/client/metrics`, `/api/frontend/client/metrics`).
//!
//! Kept in memory by the replica that received the reports, bounded: at most
//! [`MAX_INSTANCES`] instances (the least recently seen is forgotten first), counts only for
//! flags that exist, at most [`MAX_VARIANTS`] variant names per flag and instance. Counts
//! saturate instead of overflowing. Reports come from SDKs and are untrusted: they can fill
//! these tables, never grow them past the bounds or touch a flag.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;

/// Instances remembered at once.
pub const MAX_INSTANCES: usize = 1_000;
/// Variant names counted per flag and instance.
pub const MAX_VARIANTS: usize = 64;
/// The longest app name, instance id or SDK version kept.
pub const MAX_NAME: usize = 256;

/// `POST /api/client/register`: an SDK instance announces itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub app_name: String,
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub sdk_version: Option<String>,
    /// How often the SDK sends metrics, in milliseconds.
    #[serde(default)]
    pub interval: Option<u64>,
}

/// `POST /api/client/metrics`: counts since the SDK's last report.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsReport {
    pub app_name: String,
    #[serde(default)]
    pub instance_id: String,
    pub bucket: Bucket,
}

/// The counted period and its counts.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Bucket {
    #[serde(default)]
    pub toggles: BTreeMap<String, ToggleCounts>,
}

/// How often one flag answered enabled (`yes`), disabled (`no`), and each variant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToggleCounts {
    #[serde(default)]
    pub yes: u64,
    #[serde(default)]
    pub no: u64,
    #[serde(default)]
    pub variants: BTreeMap<String, u64>,
}

/// One SDK instance as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SdkInstance {
    pub environment: String,
    pub app_name: String,
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    /// Whether the instance registered (frontend SDKs only send metrics).
    pub registered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Counts per flag since the instance was first seen.
    pub toggles: BTreeMap<String, ToggleCounts>,
}

/// A report that cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("{field} must be a non-empty string of at most {MAX_NAME} bytes")]
    Name { field: &'static str },
}

type Key = (String, String, String);

/// The reported SDK instances. See the module's documentation.
#[derive(Debug, Default)]
pub struct SdkUsage {
    instances: Mutex<BTreeMap<Key, SdkInstance>>,
}

impl SdkUsage {
    /// Records a registration from `environment` at `now`.
    ///
    /// # Errors
    /// An app name or instance id that is empty or too long.
    pub fn register(
        &self,
        environment: &str,
        registration: Registration,
        now: Timestamp,
    ) -> Result<(), UsageError> {
        let key = key(
            environment,
            &registration.app_name,
            &registration.instance_id,
        )?;
        let sdk_version = registration
            .sdk_version
            .map(|v| truncate(v, MAX_NAME))
            .filter(|v| !v.is_empty());
        self.with_instance(key, now, |instance| {
            instance.registered = true;
            instance.sdk_version = sdk_version.or(instance.sdk_version.take());
            instance.interval_ms = registration.interval.or(instance.interval_ms);
        });
        Ok(())
    }

    /// Adds a metrics report from `environment` at `now`; flags for which `exists` is false are
    /// skipped.
    ///
    /// # Errors
    /// An app name or instance id that is empty or too long.
    pub fn record(
        &self,
        environment: &str,
        report: MetricsReport,
        now: Timestamp,
        exists: impl Fn(&str) -> bool,
    ) -> Result<(), UsageError> {
        let key = key(environment, &report.app_name, &report.instance_id)?;
        self.with_instance(key, now, |instance| {
            for (flag, counts) in report.bucket.toggles {
                if !exists(&flag) {
                    continue;
                }
                let total = instance.toggles.entry(flag).or_default();
                total.yes = total.yes.saturating_add(counts.yes);
                total.no = total.no.saturating_add(counts.no);
                for (variant, n) in counts.variants {
                    let known = total.variants.contains_key(&variant);
                    if known || total.variants.len() < MAX_VARIANTS {
                        let slot = total.variants.entry(variant).or_default();
                        *slot = slot.saturating_add(n);
                    }
                }
            }
        });
        Ok(())
    }

    /// Every remembered instance, by environment, app and instance id.
    pub fn instances(&self) -> Vec<SdkInstance> {
        self.lock().values().cloned().collect()
    }

    fn with_instance(&self, key: Key, now: Timestamp, update: impl FnOnce(&mut SdkInstance)) {
        let mut instances = self.lock();
        if !instances.contains_key(&key) && instances.len() >= MAX_INSTANCES {
            let stalest = instances
                .iter()
                .min_by_key(|(_, i)| i.last_seen_ms)
                .map(|(k, _)| k.clone());
            if let Some(stalest) = stalest {
                instances.remove(&stalest);
            }
        }
        let (environment, app_name, instance_id) = key.clone();
        let instance = instances.entry(key).or_insert_with(|| SdkInstance {
            environment,
            app_name,
            instance_id,
            sdk_version: None,
            registered: false,
            interval_ms: None,
            first_seen_ms: now.as_millis(),
            last_seen_ms: now.as_millis(),
            toggles: BTreeMap::new(),
        });
        instance.last_seen_ms = now.as_millis();
        update(instance);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, SdkInstance>> {
        // The tables stay consistent even if a holder panicked: every update is a few inserts.
        self.instances
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn key(environment: &str, app_name: &str, instance_id: &str) -> Result<Key, UsageError> {
    if app_name.is_empty() || app_name.len() > MAX_NAME {
        return Err(UsageError::Name { field: "appName" });
    }
    if instance_id.len() > MAX_NAME {
        return Err(UsageError::Name {
            field: "instanceId",
        });
    }
    // Frontend SDKs may omit the instance id; they are one instance per app then.
    let instance_id = if instance_id.is_empty() {
        "unknown"
    } else {
        instance_id
    };
    Ok((
        environment.to_owned(),
        app_name.to_owned(),
        instance_id.to_owned(),
    ))
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(app: &str, instance: &str, toggles: serde_json::Value) -> MetricsReport {
        serde_json::from_value(serde_json::json!({
            "appName": app, "instanceId": instance, "bucket": {"start": "x", "stop": "y", "toggles": toggles}
        }))
        .unwrap()
    }

    #[test]
    fn counts_add_up_per_instance_and_skip_unknown_flags() {
        let usage = SdkUsage::default();
        let exists = |flag: &str| flag != "ghost";
        let toggles = serde_json::json!({
            "beta": {"yes": 3, "no": 1, "variants": {"a": 2}},
            "ghost": {"yes": 9, "no": 9}
        });
        for at in [10, 20] {
            usage
                .record(
                    "production",
                    report("web", "i1", toggles.clone()),
                    Timestamp(at),
                    exists,
                )
                .unwrap();
        }
        let instances = usage.instances();
        assert_eq!(instances.len(), 1);
        let beta = &instances[0].toggles["beta"];
        assert_eq!((beta.yes, beta.no, beta.variants["a"]), (6, 2, 4));
        assert!(!instances[0].toggles.contains_key("ghost"));
        assert_eq!(
            (instances[0].first_seen_ms, instances[0].last_seen_ms),
            (10, 20)
        );
        assert!(!instances[0].registered);
    }

    #[test]
    fn counts_saturate_and_variant_names_are_bounded() {
        let usage = SdkUsage::default();
        let mut variants = serde_json::Map::new();
        for i in 0..(MAX_VARIANTS + 10) {
            variants.insert(format!("v{i}"), serde_json::json!(1));
        }
        let toggles = serde_json::json!({"beta": {"yes": u64::MAX, "no": 0, "variants": variants}});
        for _ in 0..2 {
            usage
                .record(
                    "p",
                    report("web", "i", toggles.clone()),
                    Timestamp(1),
                    |_| true,
                )
                .unwrap();
        }
        let beta = &usage.instances()[0].toggles["beta"];
        assert_eq!(beta.yes, u64::MAX);
        assert_eq!(beta.variants.len(), MAX_VARIANTS);
    }

    #[test]
    fn the_stalest_instance_makes_room() {
        let usage = SdkUsage::default();
        for i in 0..=MAX_INSTANCES {
            let registration = Registration {
                app_name: "web".into(),
                instance_id: format!("i{i}"),
                ..Registration::default()
            };
            usage
                .register("p", registration, Timestamp(i as u64 + 1))
                .unwrap();
        }
        let instances = usage.instances();
        assert_eq!(instances.len(), MAX_INSTANCES);
        assert!(instances.iter().all(|i| i.instance_id != "i0"));
        assert!(instances.iter().all(|i| i.registered));
    }

    #[test]
    fn names_must_be_present_and_short() {
        let usage = SdkUsage::default();
        let empty = Registration::default();
        assert_eq!(
            usage.register("p", empty, Timestamp(1)),
            Err(UsageError::Name { field: "appName" })
        );
        let long = Registration {
            app_name: "web".into(),
            instance_id: "x".repeat(MAX_NAME + 1),
            ..Registration::default()
        };
        assert_eq!(
            usage.register("p", long, Timestamp(1)),
            Err(UsageError::Name {
                field: "instanceId"
            })
        );
        assert!(usage.instances().is_empty());
    }
}
