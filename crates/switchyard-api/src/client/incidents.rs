//! Client methods for incidents (automatic rollbacks), returned as the daemon sends them: their
//! types live in the control layer, which this crate does not link.

use reqwest::{Method, Url};
use serde_json::Value;

use super::{Client, ClientError};

impl Client {
    /// Every automatic rollback, newest first.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn incidents(&self) -> Result<Value, ClientError> {
        let url = self.incident_url(&[])?;
        self.send(Method::GET, url, None::<&()>).await
    }

    /// One incident: what decided, the exposure, the evidence, the traffic, the timeline.
    ///
    /// # Errors
    /// See [`ClientError`]; an id that was no automatic rollback is `not_found`.
    pub async fn incident(&self, id: i64) -> Result<Value, ClientError> {
        let url = self.incident_url(&[&id.to_string()])?;
        self.send(Method::GET, url, None::<&()>).await
    }

    /// The self-contained HTML report of an incident.
    ///
    /// # Errors
    /// As [`Client::incident`].
    pub async fn incident_report(&self, id: i64) -> Result<String, ClientError> {
        let url = self.incident_url(&[&id.to_string(), "report"])?;
        self.text(url).await
    }

    fn incident_url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        self.api_url("incidents", segments)
    }
}
