//! Client methods of the table protocol: what `switchyard proxy` calls, and the proxies' state
//! for operators.

use std::time::Duration;

use switchyard_core::dataplane::{ProxyReport, ProxyStatus, TableUpdate};

use super::{Client, ClientError, decode, deliver};

/// Time allowed on top of a table request's wait before the connection counts as dead.
const SLACK: Duration = Duration::from_secs(10);

impl Client {
    /// What a proxy serving `(generation, version)` needs, waiting up to `wait` for a change;
    /// `None` when nothing changed meanwhile (or the control plane is still recovering).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn tables(
        &self,
        generation: u64,
        version: u64,
        wait: Duration,
    ) -> Result<Option<TableUpdate>, ClientError> {
        let url = format!(
            "{}/api/v1/dataplane/tables?generation={generation}&version={version}&wait={}",
            self.base,
            wait.as_secs()
        );
        let request = self.http.get(&url).timeout(wait + SLACK);
        let response = deliver(&url, request).await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        decode(url, response).await.map(Some)
    }

    /// Sends a proxy's report.
    ///
    /// # Errors
    /// See [`ClientError`]; a newer process of the same proxy is `stale_proxy_epoch`.
    pub async fn report(&self, report: &ProxyReport) -> Result<(), ClientError> {
        let url = format!("{}/api/v1/dataplane/reports", self.base);
        let request = self.http.post(&url).json(report).timeout(SLACK);
        let response = deliver(&url, request).await?;
        if response.status().is_success() {
            return Ok(());
        }
        decode::<serde_json::Value>(url, response).await.map(drop)
    }

    /// Every proxy that reported to the control plane.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn proxies(&self) -> Result<Vec<ProxyStatus>, ClientError> {
        self.get("/api/v1/dataplane/proxies").await
    }
}
