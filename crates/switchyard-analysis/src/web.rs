//! A JSON web endpoint as a metric provider (`provider: {web: {url, jsonPath}}`): one HTTP
//! request per measurement; the value is what the RFC 6901 pointer `jsonPath` selects in the
//! answer.
//!
//! A non-2xx status, a body that is not JSON, or a pointer that selects nothing is a provider
//! error; `null` at the pointer is "no data".

use std::sync::Arc;

use switchyard_core::manifest::analysis::{HttpMethod, ProviderSpec, ReleaseRole};
use switchyard_policy::Policy;

use crate::http::{describe, snippet};
use crate::json_value::from_json;
use crate::provider::{MeasureError, MeasureRequest, MetricProvider, Observation};

/// Sends the requests of `web` metrics.
#[derive(Debug, Clone)]
pub struct WebClient {
    http: reqwest::Client,
    policy: Arc<Policy>,
}

impl WebClient {
    /// Calls only the hosts `policy` lets calls reach.
    pub fn new(http: reqwest::Client, policy: Arc<Policy>) -> Self {
        Self { http, policy }
    }
}

fn provider(reason: String) -> MeasureError {
    MeasureError::Provider { reason }
}

#[async_trait::async_trait]
impl MetricProvider for WebClient {
    async fn measure(&self, request: &MeasureRequest<'_>) -> Result<Observation, MeasureError> {
        let ProviderSpec::Web(spec) = request.provider else {
            return Err(MeasureError::Unsupported {
                provider: request.provider.kind(),
            });
        };
        let vars = request.template_vars(ReleaseRole::Canary);
        let url = spec.url.template().render(&vars);
        self.policy.check_url(&url)?;
        let timeout = spec.timeout();
        let (method, mut builder) = match spec.method {
            HttpMethod::Get => ("GET", self.http.get(&url)),
            HttpMethod::Post => ("POST", self.http.post(&url)),
        };
        for (name, value) in &spec.headers {
            builder = builder.header(name.as_str(), value.template().render(&vars));
        }
        if let Some(body) = &spec.body {
            builder = builder.body(body.render(&vars));
        }
        let target = format!("{method} {url}");
        let response = builder
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| provider(format!("{target}: {}", describe(&e, timeout))))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| {
            provider(format!(
                "{target}: reading the answer: {}",
                describe(&e, timeout)
            ))
        })?;
        if !status.is_success() {
            return Err(provider(format!(
                "{target} answered {status}: {}",
                snippet(&body)
            )));
        }
        let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
            provider(format!(
                "{target} answered with a body that is not JSON ({e}): {}",
                snippet(&body)
            ))
        })?;
        let pointer = spec.json_path.as_str();
        let selected = json.pointer(pointer).ok_or_else(|| {
            provider(format!(
                "{target}: the answer has nothing at jsonPath `{pointer}`: {}",
                snippet(&body)
            ))
        })?;
        let what = if pointer.is_empty() {
            format!("{target}: the answer")
        } else {
            format!("{target}: the value at `{pointer}`")
        };
        Ok(Observation {
            result: from_json(selected, &what)?,
            baseline: None,
            samples: None,
        })
    }
}
