//! The exposure tap of traffic experiments: when an app's routing carries an [`ExperimentTap`],
//! every request that the weighted split placed by its stickiness key reports which release
//! served that unit, with the status and latency of the answer, to an [`ExposureSink`].
//!
//! What is an exposure: a request whose release came from the bucket of the table's
//! [`StickinessKey`](crate::StickinessKey) value (header, cookie or query parameter), answered by
//! an upstream or by the proxy itself after routing (502, 503, 504, 413). What is not: requests
//! pinned by a header route, requests without a key (random split, or keyed only by the affinity
//! cookie), requests no release could take (`no_weight`, `unknown_release`), and mirror copies.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;

/// Marks an app's routing as the assignment of a traffic experiment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExperimentTap {
    /// The experiment's key, copied into every [`Exposure`].
    pub experiment: Arc<str>,
}

impl ExperimentTap {
    pub fn new(experiment: impl Into<Arc<str>>) -> Self {
        ExperimentTap {
            experiment: experiment.into(),
        }
    }
}

/// One unit of an experiment served by one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// [`ExperimentTap::experiment`].
    pub experiment: Arc<str>,
    /// The stickiness key's value, as the request carried it (raw, not percent-decoded).
    pub unit: String,
    /// The release that served the request (the backend's release name).
    pub release: String,
    /// Status of the answer, the upstream's or the proxy's own.
    pub status: u16,
    /// From request received to response head ready, as in the proxy's latency telemetry.
    pub latency: Duration,
}

/// Receives exposures, on the request path.
///
/// [`ExposureSink::record`] is called before the response head goes back to the client, on the
/// proxy's worker threads, once per exposure: it must not block or wait. Implementations should
/// hand the exposure to a bounded channel (`tokio::sync::mpsc::Sender::try_send`) and drop it,
/// counting the loss, when the channel is full, rather than slowing the data plane.
pub trait ExposureSink: Send + Sync + 'static {
    fn record(&self, exposure: Exposure);
}

/// The sink of a listener, replaceable at any time; shared by the apps the listener serves.
#[derive(Default)]
pub(crate) struct ExposureSlot(ArcSwapOption<Arc<dyn ExposureSink>>);

impl fmt::Debug for ExposureSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExposureSlot")
            .field("set", &self.0.load().is_some())
            .finish()
    }
}

impl ExposureSlot {
    pub fn set(&self, sink: Arc<dyn ExposureSink>) {
        self.0.store(Some(Arc::new(sink)));
    }

    /// An exposure to complete once the answer is known, if a sink is set.
    pub fn start(&self, experiment: &Arc<str>, unit: &str) -> Option<PendingExposure> {
        let sink = self.0.load_full()?;
        Some(PendingExposure {
            sink,
            experiment: experiment.clone(),
            unit: unit.to_owned(),
        })
    }
}

/// An exposure whose release is chosen and whose answer is pending.
pub(crate) struct PendingExposure {
    sink: Arc<Arc<dyn ExposureSink>>,
    experiment: Arc<str>,
    unit: String,
}

impl PendingExposure {
    pub fn record(self, release: &str, status: u16, latency: Duration) {
        self.sink.record(Exposure {
            experiment: self.experiment,
            unit: self.unit,
            release: release.to_owned(),
            status,
            latency,
        });
    }
}
