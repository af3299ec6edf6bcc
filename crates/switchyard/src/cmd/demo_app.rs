//! `switchyard demo-app`: a small HTTP service with configurable errors and latency, used by the
//! demo and the tests as the app being released.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use rand::Rng;

use crate::cli::DemoAppArgs;

/// Header carrying the version that answered.
pub const VERSION_HEADER: &str = "x-demo-version";

struct Service {
    version: String,
    error_rate: f64,
    /// Every N-th request fails; 0 for never.
    error_every: u64,
    served: AtomicU64,
    latency: Duration,
}

pub async fn run(args: DemoAppArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.error_rate),
        "--error-rate must be between 0 and 1, got {}",
        args.error_rate
    );
    let service = Arc::new(Service {
        version: args.version,
        error_rate: args.error_rate,
        error_every: args.error_every,
        served: AtomicU64::new(0),
        latency: Duration::from_millis(args.latency_ms),
    });
    let app = Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/ready", get(health))
        .with_state(service);
    let addr = SocketAddr::from((args.host, args.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("while binding {addr}"))?;
    tracing::info!(%addr, "demo app listening");
    let shutdown = async {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return std::future::pending().await;
        };
        term.recv().await;
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("while serving")?;
    Ok(ExitCode::SUCCESS)
}

async fn root(State(s): State<Arc<Service>>) -> impl IntoResponse {
    if !s.latency.is_zero() {
        tokio::time::sleep(s.latency).await;
    }
    let n = s.served.fetch_add(1, Ordering::Relaxed) + 1;
    let fail = (s.error_every > 0 && n % s.error_every == 0)
        || (s.error_rate > 0.0 && rand::rng().random::<f64>() < s.error_rate);
    let status = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let body = if fail {
        format!("{} failed\n", s.version)
    } else {
        format!("hello from {}\n", s.version)
    };
    (status, [(VERSION_HEADER, s.version.clone())], body)
}

async fn health() -> impl IntoResponse {
    "ok\n"
}
