//! Prometheus as a metric provider (`provider: {prometheus: {address, query, baselineQuery}}`):
//! instant queries against `/api/v1/query`.
//!
//! Results map to values as follows: a scalar, or a vector of one sample, is a number; a vector
//! of several samples is a list ordered by label set (so `result[0]` means the same series at
//! every measurement); an empty vector is "no data". Anything else (a range vector, an error,
//! an unreachable server) is a provider error, never a pass.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use std::sync::Arc;
use switchyard_core::ReleaseTotals;
use switchyard_core::expr::Value;
use switchyard_core::manifest::analysis::judge::PrometheusTotals;
use switchyard_core::manifest::analysis::{HttpUrl, ProviderSpec, ReleaseRole, TemplateVars};

use switchyard_policy::Policy;

use crate::http::{describe, snippet};
use crate::provider::{MeasureError, MeasureRequest, MetricProvider, Observation};

/// Runs the queries of `prometheus` metrics.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    policy: Arc<Policy>,
}

impl PrometheusClient {
    /// Queries only servers `policy` lets calls reach.
    pub fn new(http: reqwest::Client, policy: Arc<Policy>) -> Self {
        Self { http, policy }
    }

    /// Runs one instant query at the server's current time.
    ///
    /// # Errors
    /// `NoData` for an empty vector; `Provider` when the server cannot be reached, answers with
    /// an error or something that is not its API's JSON, or the result is not a number.
    pub async fn query(
        &self,
        address: &HttpUrl,
        query: &str,
        timeout: Duration,
    ) -> Result<Value, MeasureError> {
        let (status, body) = self.fetch(address, query, timeout).await?;
        decode(status, &body, query)
    }

    /// A release's monotonic totals from the queries of a judge's `source` (rendered with
    /// `vars`). A query without data (a release no series mentions yet) counts 0.
    ///
    /// # Errors
    /// As [`PrometheusClient::query`]; latency buckets without an `le` label.
    pub async fn totals(
        &self,
        source: &PrometheusTotals,
        vars: &TemplateVars<'_>,
    ) -> Result<ReleaseTotals, MeasureError> {
        let timeout = source.timeout();
        let count = |template: &switchyard_core::manifest::analysis::Template| {
            let query = template.render(vars);
            async move {
                match self.query(&source.address, &query, timeout).await {
                    Ok(Value::Number(n)) if n.is_finite() && n >= 0.0 => Ok(n.round() as u64),
                    Ok(other) => Err(provider(format!(
                        "query `{query}` must return one number (a sum), got {other:?}"
                    ))),
                    Err(MeasureError::NoData { .. }) => Ok(0),
                    Err(e) => Err(e),
                }
            }
        };
        let (requests, errors) = tokio::join!(count(&source.requests), count(&source.errors));
        let mut totals = ReleaseTotals {
            requests: requests?,
            errors: errors?,
            ..ReleaseTotals::default()
        };
        totals.status_classes[4] = totals.errors;
        if let Some(latency) = &source.latency {
            let query = latency.render(vars);
            let (status, body) = self.fetch(&source.address, &query, timeout).await?;
            totals.latency = buckets(&decode_vector(status, &body, &query)?, &query)?;
        }
        Ok(totals)
    }

    /// Posts one instant query; the answer's status and body.
    async fn fetch(
        &self,
        address: &HttpUrl,
        query: &str,
        timeout: Duration,
    ) -> Result<(reqwest::StatusCode, String), MeasureError> {
        self.policy.check_url(address.as_str())?;
        let endpoint = format!("{}/api/v1/query", address.as_str().trim_end_matches('/'));
        // The form is sent as a POST body (which Prometheus accepts like GET parameters) so
        // that long queries do not run into URL length limits. `timeout` also bounds the
        // evaluation on the server, which then gives up instead of working for nobody.
        let form = reqwest::Url::parse_with_params(
            "http://form.invalid/",
            [
                ("query", query.to_string()),
                ("timeout", format!("{}ms", timeout.as_millis())),
            ],
        )
        .map_err(|e| provider(format!("cannot encode query `{query}`: {e}")))?;
        let response = self
            .http
            .post(&endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.query().unwrap_or_default().to_string())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                provider(format!(
                    "Prometheus at {address}: {}",
                    describe(&e, timeout)
                ))
            })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| {
            provider(format!(
                "Prometheus at {address}: reading the answer: {}",
                describe(&e, timeout)
            ))
        })?;
        Ok((status, body))
    }
}

/// Cumulative `le` buckets (as Prometheus histograms keep them) turned into the per-bucket
/// counts of [`ReleaseTotals::latency`].
fn buckets(samples: &[Sample], query: &str) -> Result<Vec<(f64, u64)>, MeasureError> {
    let mut cumulative = Vec::with_capacity(samples.len());
    for (labels, value) in samples {
        let le = labels.get("le").ok_or_else(|| {
            provider(format!(
                "query `{query}` must return buckets by `le` (sum by (le) (..._bucket{{...}}))"
            ))
        })?;
        let bound = match le.as_str() {
            "+Inf" => f64::INFINITY,
            text => text.parse::<f64>().map_err(|_| {
                provider(format!("query `{query}` returned a bucket `le=\"{le}\"`"))
            })?,
        };
        cumulative.push((bound, value.max(0.0).round() as u64));
    }
    cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Above the highest finite bound a latency is unknown; as `histogram_quantile` does, it
    // counts at that bound.
    let highest = cumulative.iter().map(|(b, _)| *b).rfind(|b| b.is_finite());
    let mut below = 0;
    let mut out: Vec<(f64, u64)> = Vec::with_capacity(cumulative.len());
    for (bound, n) in cumulative {
        let count = n.saturating_sub(below);
        below = below.max(n);
        let bound = if bound.is_finite() {
            bound
        } else {
            highest.ok_or_else(|| {
                provider(format!("query `{query}` returned no finite `le` bucket"))
            })?
        };
        match out.last_mut() {
            Some((b, c)) if b.to_bits() == bound.to_bits() => *c += count,
            _ => out.push((bound, count)),
        }
    }
    out.retain(|(_, n)| *n > 0);
    Ok(out)
}

#[async_trait::async_trait]
impl MetricProvider for PrometheusClient {
    async fn measure(&self, request: &MeasureRequest<'_>) -> Result<Observation, MeasureError> {
        let ProviderSpec::Prometheus(spec) = request.provider else {
            return Err(MeasureError::Unsupported {
                provider: request.provider.kind(),
            });
        };
        let timeout = spec.timeout();
        let query = spec
            .query
            .render(&request.template_vars(ReleaseRole::Canary));
        let baseline_query = spec
            .baseline_query
            .as_ref()
            .map(|q| q.render(&request.template_vars(ReleaseRole::Stable)));
        let baseline = async {
            match &baseline_query {
                Some(q) => Some(self.query(&spec.address, q, timeout).await),
                None => None,
            }
        };
        let (result, baseline) = tokio::join!(self.query(&spec.address, &query, timeout), baseline);
        let baseline = match baseline {
            // A baseline without data is absent, as for built-in metrics: a condition that
            // needs it then errs, one that does not still decides.
            None | Some(Err(MeasureError::NoData { .. })) => None,
            Some(Ok(value)) => Some(value),
            Some(Err(e)) => return Err(e),
        };
        Ok(Observation {
            result: result?,
            baseline,
            samples: None,
        })
    }
}

fn provider(reason: String) -> MeasureError {
    MeasureError::Provider { reason }
}

/// The body of `/api/v1/query`, success or error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<QueryData>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum QueryData {
    Vector(Vec<VectorSample>),
    Scalar(SamplePair),
    String(SamplePair),
    Matrix(Vec<serde::de::IgnoredAny>),
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// Absent for native histogram samples, which carry `histogram` instead.
    #[serde(default)]
    value: Option<SamplePair>,
}

/// `[unix time, "value"]`: Prometheus writes values as strings (`"NaN"`, `"+Inf"` included).
type SamplePair = (f64, serde_json::Value);

/// The answer to `query`, when Prometheus accepted it.
fn accepted(
    status: reqwest::StatusCode,
    body: &str,
    query: &str,
) -> Result<ApiResponse, MeasureError> {
    let answer: ApiResponse = serde_json::from_str(body).map_err(|e| {
        provider(format!(
            "Prometheus answered {status} with a body that is not its API's JSON ({e}): {}",
            snippet(body)
        ))
    })?;
    if answer.status != "success" || !status.is_success() {
        return Err(provider(format!(
            "Prometheus refused query `{query}` ({status}): {}: {}",
            answer.error_type.as_deref().unwrap_or("error"),
            answer.error.as_deref().unwrap_or("no message")
        )));
    }
    Ok(answer)
}

/// A sample of an instant vector: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// The labelled samples of an answer that is a vector.
fn decode_vector(
    status: reqwest::StatusCode,
    body: &str,
    query: &str,
) -> Result<Vec<Sample>, MeasureError> {
    let answer = accepted(status, body, query)?;
    match answer.data {
        Some(QueryData::Vector(samples)) => samples
            .into_iter()
            .map(|s| {
                let value = s
                    .value
                    .as_ref()
                    .and_then(|pair| crate::json_value::number(&pair.1))
                    .ok_or_else(|| {
                        provider(format!(
                            "query `{query}` returned a sample that is not a number"
                        ))
                    })?;
                Ok((s.metric, value))
            })
            .collect(),
        _ => Err(provider(format!(
            "query `{query}` must return an instant vector"
        ))),
    }
}

/// Turns an answer of `/api/v1/query` into a value.
pub(crate) fn decode(
    status: reqwest::StatusCode,
    body: &str,
    query: &str,
) -> Result<Value, MeasureError> {
    let answer = accepted(status, body, query)?;
    let number = |pair: &SamplePair| {
        crate::json_value::number(&pair.1).ok_or_else(|| {
            provider(format!(
                "query `{query}` returned `{}`, which is not a number",
                pair.1
            ))
        })
    };
    match answer.data {
        Some(QueryData::Scalar(pair) | QueryData::String(pair)) => number(&pair).map(Value::Number),
        Some(QueryData::Vector(mut samples)) => {
            samples.sort_by(|a, b| a.metric.cmp(&b.metric));
            let values = samples
                .iter()
                .map(|s| match &s.value {
                    Some(pair) => number(pair),
                    None => Err(provider(format!(
                        "query `{query}` returned a native histogram; \
                         reduce it to numbers (histogram_quantile, histogram_count)"
                    ))),
                })
                .collect::<Result<Vec<f64>, _>>()?;
            match values.as_slice() {
                [] => Err(MeasureError::NoData {
                    reason: format!("query `{query}` returned an empty vector"),
                }),
                [one] => Ok(Value::Number(*one)),
                _ => Ok(Value::List(values)),
            }
        }
        Some(QueryData::Matrix(series)) => Err(provider(format!(
            "query `{query}` returned a range vector ({} series); write an instant query \
             (`rate(x[5m])`, not `x[5m]`)",
            series.len()
        ))),
        None => Err(provider(format!(
            "Prometheus answered query `{query}` without data"
        ))),
    }
}

#[cfg(test)]
mod tests;
