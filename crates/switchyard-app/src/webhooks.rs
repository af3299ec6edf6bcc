//! Webhooks over HTTP: a JSON POST, 2xx opens the gate.

use std::sync::Arc;
use switchyard_control::{WebhookCaller, WebhookError};

use switchyard_core::manifest::app::Webhook;
use switchyard_policy::Policy;

/// Calls webhooks with plain HTTP POSTs, retrying as each hook says, at the hosts the
/// operator's policy lets calls reach.
#[derive(Debug, Clone)]
pub struct HttpWebhooks {
    client: reqwest::Client,
    policy: Arc<Policy>,
}

impl HttpWebhooks {
    pub fn new(policy: Arc<Policy>) -> Self {
        Self {
            client: reqwest::Client::new(),
            policy,
        }
    }
}

#[async_trait::async_trait]
impl WebhookCaller for HttpWebhooks {
    async fn call(&self, hook: &Webhook, payload: &serde_json::Value) -> Result<(), WebhookError> {
        if let Err(v) = self.policy.check_url(hook.url.as_str()) {
            return Err(WebhookError::Forbidden {
                hook: hook.name.to_string(),
                url: hook.url.to_string(),
                reason: v.to_string(),
            });
        }
        let mut last = None;
        for attempt in 0..=hook.retries {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
            }
            match self
                .client
                .post(hook.url.as_str())
                .timeout(hook.timeout)
                .json(payload)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    last = Some(WebhookError::Refused {
                        hook: hook.name.to_string(),
                        status: r.status().as_u16(),
                    });
                }
                Err(e) => {
                    last = Some(WebhookError::Unreachable {
                        hook: hook.name.to_string(),
                        source: e.into(),
                    });
                }
            }
        }
        // `retries` is unsigned, so the loop ran at least once and set `last`.
        Err(last.unwrap_or(WebhookError::Refused {
            hook: hook.name.to_string(),
            status: 0,
        }))
    }
}
