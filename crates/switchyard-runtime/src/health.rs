//! HTTP health checks: one probe (`GET http://<address><path>` answered 2xx within the check's
//! timeout), and polling until enough consecutive probes pass.

use std::error::Error;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HOST};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use switchyard_core::manifest::app::HealthCheck;
use tokio::net::TcpStream;

/// Time between probes while an instance starts: short, so `start` returns soon after the
/// workload is ready rather than up to a full manifest `interval` later.
pub(crate) const STARTUP_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Why one probe failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("cannot connect")]
    Connect(#[source] std::io::Error),
    #[error("cannot build the request")]
    Request(#[source] http::Error),
    #[error("HTTP exchange failed")]
    Http(#[source] hyper::Error),
    #[error("connection closed before an answer")]
    Closed,
    #[error("answered {0}, expected 2xx")]
    Status(http::StatusCode),
    #[error("no answer within {}", switchyard_core::duration::format(*.0))]
    Timeout(Duration),
}

/// Sends one health check to `address`.
///
/// # Errors
/// The connection, the exchange or the status failed, or no answer came within `check.timeout`.
pub(crate) async fn probe(address: SocketAddr, check: &HealthCheck) -> Result<(), ProbeError> {
    match tokio::time::timeout(check.timeout, exchange(address, check.path.as_str())).await {
        Ok(result) => result,
        Err(_elapsed) => Err(ProbeError::Timeout(check.timeout)),
    }
}

async fn exchange(address: SocketAddr, path: &str) -> Result<(), ProbeError> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(ProbeError::Connect)?;
    let (mut sender, mut connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ProbeError::Http)?;
    let request = http::Request::get(path)
        .header(HOST, address.to_string())
        // One probe per connection: no pool to hold a socket to a process that may be replaced.
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(ProbeError::Request)?;
    // The connection future does the IO and is driven only until the answer's head arrives: the
    // body is not needed, and dropping the connection closes the socket. It may also finish in
    // the same poll that delivers the answer (the server closed after answering), so its end
    // is not a failure until the answer is known to be missing.
    let mut response = std::pin::pin!(sender.send_request(request));
    let response = tokio::select! {
        biased;
        response = &mut response => response,
        ended = &mut connection => {
            ended.map_err(ProbeError::Http)?;
            response.await
        }
    }
    .map_err(|error| {
        if error.is_canceled() || error.is_incomplete_message() {
            ProbeError::Closed
        } else {
            ProbeError::Http(error)
        }
    })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(ProbeError::Status(response.status()))
    }
}

/// Probes every [`STARTUP_POLL_INTERVAL`] until `check.healthy_threshold` probes in a row pass,
/// giving up after `timeout`.
///
/// # Errors
/// Returns the description of the last failed probe when `timeout` passes first.
pub(crate) async fn wait_healthy(
    address: SocketAddr,
    check: &HealthCheck,
    timeout: Duration,
) -> Result<(), String> {
    let mut last_error = String::from("no health check answered yet");
    let outcome = tokio::time::timeout(timeout, poll(address, check, &mut last_error)).await;
    match outcome {
        Ok(()) => Ok(()),
        Err(_elapsed) => Err(last_error),
    }
}

async fn poll(address: SocketAddr, check: &HealthCheck, last_error: &mut String) {
    let needed = check.healthy_threshold.max(1);
    let mut passed = 0;
    loop {
        match probe(address, check).await {
            Ok(()) => {
                passed += 1;
                if passed >= needed {
                    return;
                }
            }
            Err(error) => {
                passed = 0;
                *last_error = describe(&error);
            }
        }
        tokio::time::sleep(STARTUP_POLL_INTERVAL).await;
    }
}

/// An error and its causes on one line, for messages that carry errors as text.
pub(crate) fn describe(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let _ = write!(text, ": {inner}");
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// Serves every connection with `answer(n)` for the n-th request (`None`: stay silent).
    async fn server(answer: fn(u32) -> Option<&'static str>) -> SocketAddr {
        counted_server(answer).await.0
    }

    /// [`server`], and the number of connections it accepted.
    async fn counted_server(
        answer: fn(u32) -> Option<&'static str>,
    ) -> (SocketAddr, Arc<AtomicU32>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let count = Arc::new(AtomicU32::new(0));
        let accepted = Arc::clone(&count);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let n = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    let _ = stream.read(&mut buffer).await;
                    match answer(n) {
                        Some(status) => {
                            let response =
                                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                            let _ = stream.write_all(response.as_bytes()).await;
                        }
                        None => std::future::pending().await,
                    }
                });
            }
        });
        (address, accepted)
    }

    fn check(timeout_ms: u64, threshold: u32) -> HealthCheck {
        HealthCheck {
            timeout: Duration::from_millis(timeout_ms),
            healthy_threshold: threshold,
            ..HealthCheck::default()
        }
    }

    #[tokio::test]
    async fn a_2xx_answer_passes() {
        let address = server(|_| Some("204 No Content")).await;
        probe(address, &check(5000, 1)).await.expect("healthy");
    }

    #[tokio::test]
    async fn another_status_fails_with_the_status() {
        let address = server(|_| Some("500 Internal Server Error")).await;
        let error = probe(address, &check(5000, 1))
            .await
            .expect_err("unhealthy");
        assert!(
            matches!(error, ProbeError::Status(s) if s.as_u16() == 500),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let address = server(|_| None).await;
        let error = probe(address, &check(100, 1)).await.expect_err("silent");
        assert!(matches!(error, ProbeError::Timeout(_)), "{error:?}");
    }

    #[tokio::test]
    async fn a_closed_port_cannot_connect() {
        let address = {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listener.local_addr().expect("address")
        };
        let error = probe(address, &check(5000, 1)).await.expect_err("closed");
        assert!(describe(&error).starts_with("cannot connect: "), "{error}");
    }

    #[tokio::test]
    async fn a_failure_resets_the_consecutive_successes() {
        // ok, fail, ok, ok: two in a row only at the fourth request.
        let (address, requests) =
            counted_server(|n| Some(if n == 1 { "503 No" } else { "200 OK" })).await;
        wait_healthy(address, &check(5000, 2), Duration::from_secs(30))
            .await
            .expect("healthy after two in a row");
        assert_eq!(requests.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn never_healthy_reports_the_last_error() {
        let address = server(|_| Some("503 Service Unavailable")).await;
        let last = wait_healthy(address, &check(5000, 1), Duration::from_millis(300))
            .await
            .expect_err("never healthy");
        assert_eq!(last, "answered 503 Service Unavailable, expected 2xx");
    }
}
