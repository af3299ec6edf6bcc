//! [`ExposureRelay`]: where the data plane's exposures go. Each exposure of a traffic experiment
//! the proxies split goes to the experiment service's queue, under the variant its release
//! serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::Duration;

use switchyard_core::Clock;

use crate::experiments::Exposure;
use crate::experiments::exposure::ExposureQueue;

use super::plan::Split;

/// Experiment → release (version) → variant.
type Variants = BTreeMap<String, BTreeMap<String, String>>;

/// Passes the proxies' exposures to the experiment service without blocking the request path:
/// one lock-free map lookup, then the queue's `try_send`.
pub struct ExposureRelay {
    queue: ExposureQueue,
    clock: Arc<dyn Clock>,
    variants: ArcSwap<Variants>,
}

impl std::fmt::Debug for ExposureRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExposureRelay")
            .field("experiments", &self.variants.load().len())
            .finish_non_exhaustive()
    }
}

impl ExposureRelay {
    pub fn new(queue: ExposureQueue, clock: Arc<dyn Clock>) -> Self {
        ExposureRelay {
            queue,
            clock,
            variants: ArcSwap::default(),
        }
    }

    /// Records the exposures of `split`'s experiment from now on, each under the variant of
    /// its release. Call before the routes change, so the first exposures are not lost.
    pub fn serve(&self, split: &Split) {
        let releases: BTreeMap<String, String> = split
            .arms
            .iter()
            .map(|a| (a.version.to_string(), a.variant.clone()))
            .collect();
        self.variants.rcu(|current| {
            let mut next = Variants::clone(current);
            next.insert(split.experiment.clone(), releases.clone());
            next
        });
    }

    /// Drops the exposures of `experiment` from now on (it stopped): requests still finishing
    /// on its routes are not counted.
    pub fn forget(&self, experiment: &str) {
        self.variants.rcu(|current| {
            let mut next = Variants::clone(current);
            next.remove(experiment);
            next
        });
    }
}

/// One request of a unit of a traffic experiment, as the data plane saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestExposure {
    /// The experiment's key.
    pub experiment: Arc<str>,
    /// The unit key's value, as the request carried it.
    pub unit: String,
    /// The release (version) that served the request.
    pub release: String,
    /// Status of the answer, the upstream's or the proxy's own.
    pub status: u16,
    /// From request received to response head ready.
    pub latency: Duration,
}

impl ExposureRelay {
    /// Queues `exposure` under the variant its release serves; drops it when its experiment is
    /// not served (any more). Never blocks: it is called on the request path.
    pub fn record(&self, exposure: RequestExposure) {
        let variants = self.variants.load();
        let Some(variant) = variants
            .get(&*exposure.experiment)
            .and_then(|releases| releases.get(&exposure.release))
        else {
            return;
        };
        self.queue.record(Exposure::Request {
            experiment: exposure.experiment.to_string(),
            unit: exposure.unit,
            variant: variant.clone(),
            latency_ms: exposure.latency.as_secs_f64() * 1000.0,
            server_error: exposure.status >= 500,
            at: self.clock.now(),
        });
    }
}

#[cfg(test)]
mod tests;
