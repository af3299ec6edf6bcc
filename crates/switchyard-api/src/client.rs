//! A typed client for the daemon's REST API.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::*;

mod dataplane;
mod experiments;
mod flags;
mod incidents;
mod pipelines;

pub use experiments::EventsAnswer;

/// Why a call to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the Switchyard daemon at {url}: {source} (is `switchyard serve` running? set --server or SWITCHYARD_SERVER)"
    )]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The daemon answered with an error body.
    #[error("{}", .body.error.message)]
    Api { status: u16, body: ErrorBody },
    #[error("unexpected answer from {url} (status {status}): {detail}")]
    Protocol {
        url: String,
        status: u16,
        detail: String,
    },
}

impl ClientError {
    /// The stable error code, when the daemon sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => Some(&body.error.code),
            _ => None,
        }
    }
}

/// The daemon at `base` (e.g. `http://127.0.0.1:7070`).
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client without a token (for a daemon started with `--insecure-no-auth`).
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_token(base, None)
    }

    /// A client that sends `Authorization: Bearer <token>` on every request, and the
    /// `X-Switchyard-Request` header that marks it as no browser's.
    pub fn with_token(base: impl Into<String>, token: Option<&str>) -> Self {
        let base = base.into().trim_end_matches('/').to_string();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-switchyard-request",
            reqwest::header::HeaderValue::from_static("cli"),
        );
        if let Some(mut value) =
            token.and_then(|t| reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).ok())
        {
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap_or_default();
        Self { base, http }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn apply(&self, request: &ApplyRequest) -> Result<ApplyResponse, ClientError> {
        self.post("/api/v1/apply", request).await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn apps(&self) -> Result<Vec<AppSummary>, ClientError> {
        self.get("/api/v1/apps").await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn deploy(
        &self,
        app: &str,
        request: &DeployRequest,
    ) -> Result<DeployResponse, ClientError> {
        self.deploy_overriding(app, request, None).await
    }

    /// A deploy; with `override_window`, an admin's reason to start outside the app's
    /// deployment windows.
    ///
    /// # Errors
    /// See [`ClientError`]; `outside_window` when a window holds the app.
    pub async fn deploy_overriding(
        &self,
        app: &str,
        request: &DeployRequest,
        override_window: Option<&str>,
    ) -> Result<DeployResponse, ClientError> {
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/apps/{app}/deploy", self.base))
            .map_err(|e| ClientError::Protocol {
                url: self.base.clone(),
                status: 0,
                detail: e.to_string(),
            })?;
        if let Some(reason) = override_window {
            url.query_pairs_mut().append_pair("overrideWindow", reason);
        }
        let text = url.to_string();
        execute(text, self.http.post(url).json(request)).await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn rollout(&self, app: &str) -> Result<RolloutView, ClientError> {
        self.get(&format!("/api/v1/apps/{app}/rollout")).await
    }

    /// `command` is one of `promote`, `abort`, `pause`, `resume`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn command(
        &self,
        app: &str,
        command: &str,
        request: &CommandRequest,
    ) -> Result<RolloutView, ClientError> {
        self.post(&format!("/api/v1/apps/{app}/rollout/{command}"), request)
            .await
    }

    /// `action` is one of `retry`, `undo`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn app_action(
        &self,
        app: &str,
        action: &str,
        request: &CommandRequest,
    ) -> Result<DeployResponse, ClientError> {
        self.post(&format!("/api/v1/apps/{app}/{action}"), request)
            .await
    }

    /// `action` is `emergency-stop` or `unfreeze`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn freeze(
        &self,
        app: &str,
        action: &str,
        request: &CommandRequest,
    ) -> Result<FreezeView, ClientError> {
        self.post(&format!("/api/v1/apps/{app}/{action}"), request)
            .await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn analysis(&self, app: &str) -> Result<AnalysisList, ClientError> {
        self.get(&format!("/api/v1/apps/{app}/analysis")).await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn events(
        &self,
        app: &str,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<EventList, ClientError> {
        let mut path = format!("/api/v1/apps/{app}/events?");
        if let Some(a) = after {
            path.push_str(&format!("after={a}&"));
        }
        if let Some(l) = limit {
            path.push_str(&format!("limit={l}"));
        }
        self.get(&path).await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn create_token(
        &self,
        request: &CreateTokenRequest,
    ) -> Result<CreatedTokenView, ClientError> {
        self.post("/api/v1/tokens", request).await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn tokens(&self) -> Result<Vec<TokenView>, ClientError> {
        self.get("/api/v1/tokens").await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn revoke_token(&self, id: &str) -> Result<RevokedTokenView, ClientError> {
        self.post(
            &format!("/api/v1/tokens/{id}/revoke"),
            &serde_json::json!({}),
        )
        .await
    }

    /// The event log with filters, oldest first.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn audit(&self, query: &AuditQuery) -> Result<EventList, ClientError> {
        let mut params = url_params(&[
            ("app", query.app.clone()),
            ("actor", query.actor.clone()),
            ("after", query.after.map(|a| a.to_string())),
            ("limit", query.limit.map(|l| l.to_string())),
        ]);
        if !query.kinds.is_empty() {
            params.push(("kind".into(), query.kinds.join(",")));
        }
        let base = format!("{}/api/v1/audit", self.base);
        let url = url::Url::parse_with_params(&base, &params)
            .map(String::from)
            .unwrap_or(base);
        execute(url.clone(), self.http.get(&url)).await
    }

    /// # Errors
    /// See [`ClientError`].
    pub async fn verify_audit(&self) -> Result<AuditVerification, ClientError> {
        self.get("/api/v1/audit/verify").await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let request = self.http.get(&url);
        execute(url, request).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let request = self.http.post(&url).json(body);
        execute(url, request).await
    }
}

/// Sends `request` (to `url`, named in errors) and decodes the answer.
async fn execute<T: DeserializeOwned>(
    url: String,
    request: reqwest::RequestBuilder,
) -> Result<T, ClientError> {
    let response = deliver(&url, request).await?;
    decode(url, response).await
}

/// Sends `request`; a daemon that cannot be reached is [`ClientError::Unreachable`].
async fn deliver(
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ClientError> {
    request
        .send()
        .await
        .map_err(|source| ClientError::Unreachable {
            url: url.to_string(),
            source,
        })
}

/// A successful answer's JSON body, or the error body of a failed one.
async fn decode<T: DeserializeOwned>(
    url: String,
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|source| ClientError::Unreachable {
            url: url.clone(),
            source,
        })?;
    if status.is_success() {
        return parse(url, status.as_u16(), &bytes);
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => Err(ClientError::Api {
            status: status.as_u16(),
            body,
        }),
        Err(_) => Err(ClientError::Protocol {
            url,
            status: status.as_u16(),
            detail: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        }),
    }
}

/// A body that must be JSON of `T`.
fn parse<T: DeserializeOwned>(url: String, status: u16, bytes: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(bytes).map_err(|e| ClientError::Protocol {
        url,
        status,
        detail: e.to_string(),
    })
}

/// The query parameters that have a value.
fn url_params(pairs: &[(&str, Option<String>)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| ((*k).to_owned(), v)))
        .collect()
}
