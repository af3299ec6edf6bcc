//! Client methods for experiments and event ingestion. Results and reports are returned as the
//! daemon sends them (JSON values, the text table, the HTML page): their types live in the
//! experiment engine, which this crate does not link.

use reqwest::{Method, Url};
use serde_json::Value;

use super::{Client, ClientError, decode, deliver, parse};

/// The answer of `POST /api/v1/events`: HTTP status and the report (accepted, duplicates,
/// rejected, per-event errors with JSON pointers).
#[derive(Debug, Clone, PartialEq)]
pub struct EventsAnswer {
    pub status: u16,
    pub report: Value,
}

impl Client {
    /// # Errors
    /// See [`ClientError`].
    pub async fn experiments(&self) -> Result<Value, ClientError> {
        let url = self.experiment_url(&[])?;
        self.send(Method::GET, url, None::<&()>).await
    }

    /// # Errors
    /// See [`ClientError`]; an unknown key is `experiment_not_found`.
    pub async fn experiment(&self, key: &str) -> Result<Value, ClientError> {
        let url = self.experiment_url(&[key])?;
        self.send(Method::GET, url, None::<&()>).await
    }

    /// The analysis as JSON.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn experiment_results(&self, key: &str) -> Result<Value, ClientError> {
        let url = self.experiment_url(&[key, "results"])?;
        self.send(Method::GET, url, None::<&()>).await
    }

    /// The analysis as the table the CLI prints.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn experiment_results_text(&self, key: &str) -> Result<String, ClientError> {
        let mut url = self.experiment_url(&[key, "results"])?;
        url.set_query(Some("format=text"));
        self.text(url).await
    }

    /// The self-contained HTML report.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn experiment_report(&self, key: &str) -> Result<String, ClientError> {
        let url = self.experiment_url(&[key, "report"])?;
        self.text(url).await
    }

    /// Stops an experiment: everyone gets control.
    ///
    /// # Errors
    /// See [`ClientError`]; an experiment already stopped is `experiment_stopped`.
    pub async fn stop_experiment(
        &self,
        key: &str,
        reason: Option<&str>,
    ) -> Result<Value, ClientError> {
        let url = self.experiment_url(&[key, "stop"])?;
        let body = serde_json::json!({"reason": reason});
        self.send(Method::POST, url, Some(&body)).await
    }

    /// Sends a batch of events. A batch with refused events is an answer (status 422 and the
    /// report), not an error.
    ///
    /// # Errors
    /// See [`ClientError`]; a body that is not a batch is `invalid_batch`.
    pub async fn send_events(&self, batch: &Value) -> Result<EventsAnswer, ClientError> {
        let url = format!("{}/api/v1/events", self.base);
        let response = deliver(&url, self.http.post(&url).json(batch)).await?;
        let status = response.status().as_u16();
        let report = if status == 422 {
            let bytes = response
                .bytes()
                .await
                .map_err(|source| ClientError::Unreachable {
                    url: url.clone(),
                    source,
                })?;
            parse(url, status, &bytes)?
        } else {
            decode(url, response).await?
        };
        Ok(EventsAnswer { status, report })
    }

    /// A GET whose successful answer is text; errors decode as usual.
    pub(super) async fn text(&self, url: Url) -> Result<String, ClientError> {
        let text = url.to_string();
        let response = deliver(&text, self.http.get(url)).await?;
        if !response.status().is_success() {
            return decode::<Value>(text, response).await.map(|_| String::new());
        }
        response
            .text()
            .await
            .map_err(|source| ClientError::Unreachable { url: text, source })
    }

    /// `{base}/api/v1/experiments/{segments...}`, each segment percent-encoded.
    fn experiment_url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        self.api_url("experiments", segments)
    }
}
