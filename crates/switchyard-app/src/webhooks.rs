//! Webhooks over HTTP: a JSON POST, 2xx opens the gate.

use switchyard_control::{WebhookCaller, WebhookError};
use switchyard_core::manifest::app::Webhook;

/// Calls webhooks with plain HTTP POSTs, retrying as each hook says.
#[derive(Debug, Clone, Default)]
pub struct HttpWebhooks {
    client: reqwest::Client,
}

#[async_trait::async_trait]
impl WebhookCaller for HttpWebhooks {
    async fn call(&self, hook: &Webhook, payload: &serde_json::Value) -> Result<(), WebhookError> {
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
