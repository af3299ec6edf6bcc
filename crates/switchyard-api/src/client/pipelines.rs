//! Client methods for releases and pipeline runs, returned as the daemon sends them: their
//! types live in the control layer, which this crate does not link.

use reqwest::{Method, Url};
use serde_json::{Value, json};

use super::{Client, ClientError};

impl Client {
    /// Starts a run of `name` (a pipeline, or one app) with `version`.
    ///
    /// # Errors
    /// See [`ClientError`]; a run in progress is `run_in_progress`.
    pub async fn release(&self, name: &str, version: &str) -> Result<Value, ClientError> {
        let url = self.api_url("releases", &[])?;
        let body = json!({"name": name, "version": version});
        self.send(Method::POST, url, Some(&body)).await
    }

    /// The latest run of `name`.
    ///
    /// # Errors
    /// See [`ClientError`]; `no_run` when it was never released.
    pub async fn pipeline(&self, name: &str) -> Result<Value, ClientError> {
        let url = self.pipeline_url(&[name])?;
        self.send(Method::GET, url, None::<&()>).await
    }

    /// The most recent runs, newest first.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn pipeline_runs(&self, limit: Option<u32>) -> Result<Value, ClientError> {
        let mut url = self.pipeline_url(&["runs"])?;
        if let Some(limit) = limit {
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
        }
        self.send(Method::GET, url, None::<&()>).await
    }

    /// `action` is `approve`, `override-window` or `cancel`; `stage` only for `approve`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn pipeline_decision(
        &self,
        name: &str,
        action: &str,
        reason: &str,
        stage: Option<&str>,
    ) -> Result<Value, ClientError> {
        let url = self.pipeline_url(&[name, action])?;
        let mut body = json!({"reason": reason});
        if let Some(stage) = stage {
            body["stage"] = json!(stage);
        }
        self.send(Method::POST, url, Some(&body)).await
    }

    fn pipeline_url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        self.api_url("pipelines", segments)
    }
}

impl Client {
    /// The notification outbox: counts by notifier and status, the most recent notifications.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn notifications(
        &self,
        status: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Value, ClientError> {
        let mut url = self.api_url("notifications", &[])?;
        if let Some(status) = status {
            url.query_pairs_mut().append_pair("status", status);
        }
        if let Some(limit) = limit {
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
        }
        self.send(Method::GET, url, None::<&()>).await
    }
}
