//! Blue-green smoke tests over HTTP.

use std::net::SocketAddr;

use switchyard_core::manifest::app::SmokeTest;
use switchyard_rollout::SmokeTester;

/// Runs smoke tests with plain HTTP GETs.
#[derive(Debug, Clone, Default)]
pub struct HttpSmokeTester {
    client: reqwest::Client,
}

#[async_trait::async_trait]
impl SmokeTester for HttpSmokeTester {
    async fn run(&self, target: SocketAddr, tests: &[SmokeTest]) -> Result<(), String> {
        for t in tests {
            let url = format!("http://{target}{}", t.path.as_str());
            let response = self
                .client
                .get(&url)
                .timeout(t.timeout)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            let status = response.status().as_u16();
            let body = response
                .text()
                .await
                .map_err(|e| format!("GET {url}: reading the body: {e}"))?;
            if status != t.expect_status {
                return Err(format!(
                    "GET {url} answered {status}, expected {}",
                    t.expect_status
                ));
            }
            if let Some(want) = &t.expect_body {
                if !body.contains(want.as_str()) {
                    let start: String = body.chars().take(80).collect();
                    return Err(format!(
                        "GET {url}: the body does not contain `{want}` (it starts with `{start}`)"
                    ));
                }
            }
        }
        Ok(())
    }
}
