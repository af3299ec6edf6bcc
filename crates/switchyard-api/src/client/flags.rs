//! Client methods for the flag API. Flag keys may hold any character (`Feature.A`, spaces,
//! UTF-8), so keyed paths are built as percent-encoded URL segments.

use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Client, ClientError, execute};
use crate::flags::*;

impl Client {
    /// # Errors
    /// See [`ClientError`].
    pub async fn flags(&self) -> Result<FlagList, ClientError> {
        self.flag_call(Method::GET, &[], None::<&()>).await
    }

    /// # Errors
    /// See [`ClientError`]; an unknown key is `flag_not_found`.
    pub async fn flag(&self, key: &str) -> Result<FlagView, ClientError> {
        self.flag_call(Method::GET, &[key], None::<&()>).await
    }

    /// Creates or replaces every flag and segment of a set.
    ///
    /// # Errors
    /// See [`ClientError`]; a set that does not compile is `invalid_flags`.
    pub async fn apply_flags(
        &self,
        request: &ApplyFlagsRequest,
    ) -> Result<FlagApplyResponse, ClientError> {
        self.flag_call(Method::PUT, &[], Some(request)).await
    }

    /// Creates or replaces one flag.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn put_flag(
        &self,
        key: &str,
        request: &PutFlagRequest,
    ) -> Result<FlagView, ClientError> {
        self.flag_call(Method::PUT, &[key], Some(request)).await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn delete_flag(
        &self,
        key: &str,
        request: &FlagChangeRequest,
    ) -> Result<FlagApplyResponse, ClientError> {
        self.flag_call(Method::DELETE, &[key], Some(request)).await
    }

    /// Switches a flag on (`enable`) or off in one environment.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn toggle_flag(
        &self,
        key: &str,
        environment: &str,
        enable: bool,
        request: &FlagChangeRequest,
    ) -> Result<FlagView, ClientError> {
        let action = if enable { "enable" } else { "disable" };
        self.flag_call(
            Method::POST,
            &[key, "environments", environment, action],
            Some(request),
        )
        .await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn rollout_flag(
        &self,
        key: &str,
        request: &RolloutRequest,
    ) -> Result<FlagView, ClientError> {
        self.flag_call(Method::POST, &[key, "rollout"], Some(request))
            .await
    }

    /// The audit log, oldest first; `key` filters, `limit` keeps the most recent entries.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn flag_audit(
        &self,
        key: Option<&str>,
        limit: Option<u32>,
    ) -> Result<FlagAuditList, ClientError> {
        let mut url = self.flag_url(&["audit"])?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(key) = key {
                query.append_pair("key", key);
            }
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
        }
        self.send(Method::GET, url, None::<&()>).await
    }

    /// Recomputes the audit log's hash chain on the daemon.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn verify_flag_audit(&self) -> Result<FlagAuditVerification, ClientError> {
        self.flag_call(Method::GET, &["audit", "verify"], None::<&()>)
            .await
    }

    async fn flag_call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = self.flag_url(segments)?;
        self.send(method, url, body).await
    }

    /// `{base}/api/v1/flags/{segments...}`, each segment percent-encoded.
    fn flag_url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        self.api_url("flags", segments)
    }

    /// `{base}/api/v1/{collection}/{segments...}`, each segment percent-encoded (keys may hold
    /// any character).
    pub(super) fn api_url(&self, collection: &str, segments: &[&str]) -> Result<Url, ClientError> {
        let bad_base = |detail: String| ClientError::Protocol {
            url: self.base.clone(),
            status: 0,
            detail,
        };
        let mut url = Url::parse(&self.base).map_err(|e| bad_base(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| bad_base("the server URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(["api", "v1", collection])
            .extend(segments);
        Ok(url)
    }

    pub(super) async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let text = url.to_string();
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        execute(text, request).await
    }
}
