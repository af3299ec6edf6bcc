//! Tunables of the data plane: timeouts, limits, pools and ejection. Every field has a named
//! default; [`ProxyConfig::default`] is what a manifest without a `proxy:` section gets.

use std::time::Duration;

/// Timeouts, limits and pool sizes of one listener and its upstream traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// TCP connect to an upstream instance; on expiry the instance counts as a connect failure.
    pub connect_timeout: Duration,
    /// From sending a request to receiving the upstream's response head (504 on expiry).
    pub response_header_timeout: Duration,
    /// A body (request or response) or an upgraded tunnel that moves no bytes for this long is
    /// cut; a client connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// A client must send a complete request head within this time (slowloris).
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) accepted, in bytes (431 above).
    pub max_header_bytes: usize,
    /// Most request headers accepted (431 above).
    pub max_headers: usize,
    /// Largest request body forwarded, in bytes; `None` streams bodies of any length (413 above
    /// when the declared length is larger; a chunked body over the limit is cut).
    pub max_body_bytes: Option<u64>,
    /// Additional instances tried when connecting fails; the request never reached an upstream,
    /// so retrying is safe for any method.
    pub connect_retries: u32,
    /// Idle keep-alive connections kept per upstream instance.
    pub pool_max_idle_per_host: usize,
    /// An idle pooled upstream connection is closed after this long.
    pub pool_idle_timeout: Duration,
    /// Consecutive connect failures or 5xx answers that eject an instance.
    pub eject_consecutive_failures: u32,
    /// How long an ejected instance gets no traffic before it is tried again.
    pub eject_duration: Duration,
    /// How long a removed instance may finish its in-flight requests before they are cut.
    pub drain_timeout: Duration,
    /// Request id header: kept when the client sent one, generated otherwise.
    pub request_id_header: http::HeaderName,
    /// Bind with `SO_REUSEPORT`, so that several listeners (one per worker runtime, like nginx
    /// workers) share one port and the kernel spreads connections over them. Off by default:
    /// then a port already in use is an error, which `apply` relies on.
    pub reuse_port: bool,
    /// How often TLS certificate and key files are checked for changes (reloaded when they
    /// changed).
    pub tls_reload_interval: Duration,
    /// Threads that accept and serve connections, each on its own (`None`: the runtime that
    /// creates the listener serves them).
    pub workers: Option<crate::workers::WorkerPool>,
}

/// Default [`ProxyConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default [`ProxyConfig::response_header_timeout`].
pub const DEFAULT_RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ProxyConfig::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`ProxyConfig::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ProxyConfig::max_header_bytes`].
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default [`ProxyConfig::max_headers`].
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default [`ProxyConfig::drain_timeout`].
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ProxyConfig::tls_reload_interval`].
pub const DEFAULT_TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(2);
/// Default [`ProxyConfig::request_id_header`].
pub const DEFAULT_REQUEST_ID_HEADER: &str = "x-request-id";

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_header_timeout: DEFAULT_RESPONSE_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: None,
            connect_retries: 2,
            pool_max_idle_per_host: 256,
            pool_idle_timeout: Duration::from_secs(90),
            eject_consecutive_failures: 5,
            eject_duration: Duration::from_secs(10),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            request_id_header: http::HeaderName::from_static(DEFAULT_REQUEST_ID_HEADER),
            reuse_port: false,
            tls_reload_interval: DEFAULT_TLS_RELOAD_INTERVAL,
            workers: None,
        }
    }
}

/// Active health check of every endpoint of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path requested with `GET`; any 2xx or 3xx answer is a success.
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes that bring an unhealthy endpoint back.
    pub healthy_threshold: u32,
    /// Consecutive failures that take a healthy endpoint out.
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/health".to_owned(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        }
    }
}
