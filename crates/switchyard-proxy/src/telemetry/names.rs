//! Metric names, label keys and label values, in one place so that dashboards and docs can rely
//! on them. Names are given without the `_total`/unit suffixes that the exposition adds.

/// Prefix of every metric of the data plane.
pub const PREFIX: &str = "switchyard_proxy";

/// Counter `switchyard_proxy_requests_total`: requests answered, by status class.
pub const REQUESTS: &str = "requests";
/// Histogram `switchyard_proxy_request_duration_seconds`: time from request received to
/// response head sent, in seconds.
pub const REQUEST_DURATION: &str = "request_duration";
/// Counter `switchyard_proxy_upstream_failures_total`: requests answered by the proxy because no
/// upstream answered (by `reason`).
pub const UPSTREAM_FAILURES: &str = "upstream_failures";
/// Gauge `switchyard_proxy_in_flight_requests`: requests being served now.
pub const IN_FLIGHT: &str = "in_flight_requests";
/// Counter `switchyard_proxy_mirrored_requests_total`: copies sent to a mirror release.
pub const MIRRORED: &str = "mirrored_requests";
/// Counter `switchyard_proxy_mirror_skipped_requests_total`: requests chosen for mirroring whose
/// copy was not made or was abandoned (by `reason`).
pub const MIRROR_SKIPPED: &str = "mirror_skipped_requests";
/// Gauge `switchyard_proxy_endpoint_healthy`: 1 when an instance receives traffic, 0 when it is
/// failing health checks or ejected.
pub const ENDPOINT_HEALTHY: &str = "endpoint_healthy";
/// Counter `switchyard_proxy_endpoint_ejections_total`: passive ejections of an instance.
pub const ENDPOINT_EJECTIONS: &str = "endpoint_ejections";

/// Label: the app's name.
pub const LABEL_APP: &str = "app";
/// Label: the release's name (`stable`, `canary`, ...).
pub const LABEL_RELEASE: &str = "release";
/// Label: `1xx` .. `5xx`.
pub const LABEL_STATUS_CLASS: &str = "status_class";
/// Label: why an upstream failure happened, one of the `REASON_*` values.
pub const LABEL_REASON: &str = "reason";
/// Label: an instance address, `ip:port`.
pub const LABEL_ENDPOINT: &str = "endpoint";

/// Status class label values, indexed by `status / 100 - 1`.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Reason values of [`UPSTREAM_FAILURES`].
pub const REASON_NO_ENDPOINT: &str = "no_endpoint";
pub const REASON_CONNECT: &str = "connect";
pub const REASON_CONNECT_TIMEOUT: &str = "connect_timeout";
pub const REASON_RESPONSE_TIMEOUT: &str = "response_timeout";
pub const REASON_PROTOCOL: &str = "protocol";
pub const REASON_DRAINED: &str = "drained";
/// Every reason value of [`UPSTREAM_FAILURES`].
pub const UPSTREAM_FAILURE_REASONS: [&str; 6] = [
    REASON_NO_ENDPOINT,
    REASON_CONNECT,
    REASON_CONNECT_TIMEOUT,
    REASON_RESPONSE_TIMEOUT,
    REASON_PROTOCOL,
    REASON_DRAINED,
];

/// Reason values of [`MIRROR_SKIPPED`].
/// The body was declared larger than the mirror's cap, or streamed past it.
pub const MIRROR_SKIP_BODY_TOO_LARGE: &str = "body_too_large";
/// The request asked for a protocol upgrade; tunnels are never mirrored.
pub const MIRROR_SKIP_UPGRADE: &str = "upgrade";
/// The mirror release had no instance to send the copy to.
pub const MIRROR_SKIP_NO_ENDPOINT: &str = "no_endpoint";
/// Every reason value of [`MIRROR_SKIPPED`].
pub const MIRROR_SKIP_REASONS: [&str; 3] = [
    MIRROR_SKIP_BODY_TOO_LARGE,
    MIRROR_SKIP_UPGRADE,
    MIRROR_SKIP_NO_ENDPOINT,
];
