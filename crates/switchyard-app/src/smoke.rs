//! Blue-green smoke tests over HTTP.

use std::net::SocketAddr;

use switchyard_control::{SmokeTestError, SmokeTester};
use switchyard_core::manifest::app::SmokeTest;

/// Runs smoke tests with plain HTTP GETs.
#[derive(Debug, Clone, Default)]
pub struct HttpSmokeTester {
    client: reqwest::Client,
}

#[async_trait::async_trait]
impl SmokeTester for HttpSmokeTester {
    async fn run(&self, target: SocketAddr, tests: &[SmokeTest]) -> Result<(), SmokeTestError> {
        for t in tests {
            let url = format!("http://{target}{}", t.path.as_str());
            let unreachable = |url: &str| {
                let url = url.to_owned();
                move |e: reqwest::Error| SmokeTestError::Unreachable {
                    url,
                    source: e.into(),
                }
            };
            let response = self
                .client
                .get(&url)
                .timeout(t.timeout)
                .send()
                .await
                .map_err(unreachable(&url))?;
            let status = response.status().as_u16();
            let body = response.text().await.map_err(unreachable(&url))?;
            if status != t.expect_status {
                return Err(SmokeTestError::Status {
                    url,
                    status,
                    expected: t.expect_status,
                });
            }
            if let Some(want) = &t.expect_body {
                if !body.contains(want.as_str()) {
                    return Err(SmokeTestError::Body {
                        url,
                        want: want.to_string(),
                        start: body.chars().take(80).collect(),
                    });
                }
            }
        }
        Ok(())
    }
}
