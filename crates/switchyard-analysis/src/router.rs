//! The provider the controller uses: dispatches each measurement on its spec's provider key.

use std::sync::Arc;

use switchyard_core::manifest::analysis::judge::JudgeSource;
use switchyard_core::manifest::analysis::{ProviderSpec, ReleaseRole};
use switchyard_core::{ReleaseMetrics, ReleaseTotals};
use switchyard_policy::Policy;

use crate::builtin::BuiltinProvider;
use crate::command::CommandRunner;
use crate::http::{ProviderBuildError, client};
use crate::prometheus::PrometheusClient;
use crate::provider::{
    JudgeTotalsRequest, MeasureError, MeasureRequest, MetricProvider, Observation,
};
use crate::web::WebClient;

/// Every provider this build has, behind one [`MetricProvider`].
#[derive(Debug, Clone)]
pub struct ProviderRouter {
    builtin: BuiltinProvider,
    prometheus: PrometheusClient,
    web: WebClient,
    command: CommandRunner,
}

impl ProviderRouter {
    /// Built-in metrics read `metrics`; the HTTP providers share one client; the command,
    /// Prometheus and web providers do only what `policy` allows.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(
        metrics: Arc<dyn ReleaseMetrics>,
        policy: Arc<Policy>,
    ) -> Result<Self, ProviderBuildError> {
        let http = client()?;
        Ok(Self {
            builtin: BuiltinProvider::new(metrics),
            prometheus: PrometheusClient::new(http.clone(), Arc::clone(&policy)),
            web: WebClient::new(http, Arc::clone(&policy)),
            command: CommandRunner::new(policy),
        })
    }
}

#[async_trait::async_trait]
impl MetricProvider for ProviderRouter {
    async fn measure(&self, request: &MeasureRequest<'_>) -> Result<Observation, MeasureError> {
        match request.provider {
            ProviderSpec::Builtin(_) => self.builtin.measure(request).await,
            ProviderSpec::Prometheus(_) => self.prometheus.measure(request).await,
            ProviderSpec::Web(_) => self.web.measure(request).await,
            ProviderSpec::Command(_) => self.command.measure(request).await,
        }
    }

    async fn judge_totals(
        &self,
        request: &JudgeTotalsRequest<'_>,
    ) -> Result<[ReleaseTotals; 2], MeasureError> {
        let JudgeSource::Prometheus(source) = request.source;
        let canary = request.template_vars(ReleaseRole::Canary);
        let baseline = request.template_vars(ReleaseRole::Stable);
        let (canary, baseline) = tokio::join!(
            self.prometheus.totals(source, &canary),
            self.prometheus.totals(source, &baseline)
        );
        Ok([canary?, baseline?])
    }
}
