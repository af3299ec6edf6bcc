//! Notifications over HTTP and HTTPS: a POST per attempt, to the hosts the operator's policy
//! lets calls reach, with the platform's trust store for TLS (hyper-rustls on *ring*, as the
//! proxy's upstream TLS; the API client and the metric providers stay plain HTTP).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_platform_verifier::BuilderVerifierExt;
use switchyard_control::notifications::NotificationSender;
use switchyard_policy::Policy;

/// How long one attempt may take, answer included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends notifications with hyper.
#[derive(Clone)]
pub struct HttpNotifier {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    policy: Arc<Policy>,
}

impl std::fmt::Debug for HttpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpNotifier").finish_non_exhaustive()
    }
}

impl HttpNotifier {
    /// # Errors
    /// The platform's trust store cannot be read.
    // *ring*, as the proxy's TLS: rustls marks it deprecated only for its lack of
    // post-quantum key exchange, which aws-lc-rs would bring with a C toolchain build.
    #[allow(deprecated)]
    pub fn new(policy: Arc<Policy>) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_platform_verifier()?
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self { client, policy })
    }
}

#[async_trait::async_trait]
impl NotificationSender for HttpNotifier {
    async fn send(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(), String> {
        self.policy.check_url(url).map_err(|v| v.to_string())?;
        let mut request = hyper::Request::post(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| format!("{url}: {e}"))?;
        match tokio::time::timeout(TIMEOUT, self.client.request(request)).await {
            Err(_) => Err(format!(
                "{url} did not answer within {} s",
                TIMEOUT.as_secs()
            )),
            Ok(Err(e)) => Err(format!("{url} could not be reached: {}", chain(&e))),
            Ok(Ok(r)) if r.status().is_success() => Ok(()),
            Ok(Ok(r)) => Err(format!("{url} answered {}", r.status())),
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
