//! The Prometheus provider against a real `prometheus` server (the Debian package), started by
//! the test with a config that scrapes a metrics page the test serves.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_analysis::{MeasureError, PrometheusClient};
use switchyard_core::Value;
use switchyard_core::manifest::analysis::HttpUrl;

use super::{measure, provider_error, spec};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// What the scraped page exposes: canary `v2` of `shop` took 42 requests (2 failed), stable
/// `v1` took 100; `release_weight` is labelled by role.
const EXPOSITION: &str = "\
# TYPE http_requests_total counter
http_requests_total{app=\"shop\",version=\"v1\",code=\"200\"} 100
http_requests_total{app=\"shop\",version=\"v2\",code=\"200\"} 40
http_requests_total{app=\"shop\",version=\"v2\",code=\"500\"} 2
http_requests_total{app=\"other\",version=\"v2\",code=\"200\"} 7
# TYPE release_weight gauge
release_weight{app=\"shop\",release=\"canary\"} 10
release_weight{app=\"shop\",release=\"stable\"} 90
";

/// A `prometheus` process, killed when dropped.
struct Prometheus {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves [`EXPOSITION`] at `/metrics`.
async fn serve_metrics() -> SocketAddr {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            ([("content-type", "text/plain; version=0.0.4")], EXPOSITION)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn start_prometheus(target: SocketAddr) -> Prometheus {
    assert!(
        Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} is missing: the Prometheus provider is tested against a real server; \
         run ./scripts/test (which installs it) or `apt-get install prometheus`"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: shop\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={listen}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Prometheus {
        child,
        address: format!("http://{listen}"),
        dir,
    }
}

/// Waits until Prometheus answers and has scraped the page once.
async fn wait_for_first_scrape(server: &mut Prometheus) {
    let client = PrometheusClient::new(reqwest::Client::new(), super::policy());
    let address = HttpUrl::new(server.address.clone()).unwrap();
    // A generous bound for a slow machine; it only limits how long a broken setup hangs.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let scraped = client
            .query(&address, r#"up{job="shop"}"#, Duration::from_secs(2))
            .await;
        if scraped == Ok(Value::Number(1.0)) {
            return;
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("prometheus exited ({status}):\n{}", server.log());
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not scrape the test's page (last answer {scraped:?}):\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn prometheus(address: &str, query: &str) -> serde_json::Value {
    json!({"prometheus": {"address": address, "query": query, "timeout": "5s"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_a_real_prometheus() {
    let target = serve_metrics().await;
    let mut server = start_prometheus(target);
    wait_for_first_scrape(&mut server).await;
    let address = server.address.clone();

    // A one-sample vector is a number; the baseline query is rendered for the stable release.
    let mut both = prometheus(
        &address,
        r#"sum(http_requests_total{app="{{app}}",version="{{version}}"})"#,
    );
    both["prometheus"]["baselineQuery"] =
        json!(r#"sum(http_requests_total{app="{{app}}",version="{{version}}"})"#);
    let observed = measure(&spec(both)).await.unwrap();
    assert_eq!(observed.result, Value::Number(42.0));
    assert_eq!(observed.baseline, Some(Value::Number(100.0)));
    assert_eq!(observed.samples, None);

    // `{{release}}` is the role; `{{canary_version}}`/`{{stable_version}}` are fixed.
    let mut roles = prometheus(&address, r#"release_weight{release="{{release}}"}"#);
    roles["prometheus"]["baselineQuery"] = json!(r#"release_weight{release="{{release}}"}"#);
    let observed = measure(&spec(roles)).await.unwrap();
    assert_eq!(observed.result, Value::Number(10.0));
    assert_eq!(observed.baseline, Some(Value::Number(90.0)));
    let versions = prometheus(
        &address,
        r#"sum(http_requests_total{app="shop",version="{{stable_version}}"}) - sum(http_requests_total{app="shop",version="{{canary_version}}"})"#,
    );
    assert_eq!(
        measure(&spec(versions)).await.unwrap().result,
        Value::Number(58.0)
    );

    // Several samples are a list ordered by label set (code 200 before code 500).
    let many = prometheus(
        &address,
        r#"http_requests_total{app="{{app}}",version="{{version}}"}"#,
    );
    assert_eq!(
        measure(&spec(many)).await.unwrap().result,
        Value::List(vec![40.0, 2.0])
    );

    // Scalars are numbers.
    let scalar = prometheus(
        &address,
        r#"scalar(sum(http_requests_total{version="{{version}}",code="500"})) / 2"#,
    );
    assert_eq!(
        measure(&spec(scalar)).await.unwrap().result,
        Value::Number(1.0)
    );

    // Nothing matched: no data, neither pass nor fail.
    let empty = prometheus(&address, r#"http_requests_total{version="v9"}"#);
    let outcome = measure(&spec(empty)).await;
    assert!(
        matches!(&outcome, Err(MeasureError::NoData { reason }) if reason.contains("empty vector")),
        "{outcome:?}"
    );
    // An empty baseline is absent; the result still stands.
    let mut no_baseline = prometheus(&address, "sum(http_requests_total)");
    no_baseline["prometheus"]["baselineQuery"] = json!(r#"http_requests_total{version="v9"}"#);
    let observed = measure(&spec(no_baseline)).await.unwrap();
    assert_eq!(observed.result, Value::Number(149.0));
    assert_eq!(observed.baseline, None);

    // Prometheus' own errors are provider errors with its message.
    let reason = provider_error(measure(&spec(prometheus(&address, "sum(rate(x[1m])"))).await);
    assert!(
        reason.contains("refused query `sum(rate(x[1m])`"),
        "{reason}"
    );
    assert!(reason.contains("bad_data"), "{reason}");
    let mut bad_baseline = prometheus(&address, "sum(http_requests_total)");
    bad_baseline["prometheus"]["baselineQuery"] = json!("sum(");
    let reason = provider_error(measure(&spec(bad_baseline)).await);
    assert!(reason.contains("refused query `sum(`"), "{reason}");
    let reason =
        provider_error(measure(&spec(prometheus(&address, "http_requests_total[1m]"))).await);
    assert!(reason.contains("range vector"), "{reason}");

    // The server going away is a provider error, never a pass.
    drop(server);
    let reason = provider_error(measure(&spec(prometheus(&address, "up"))).await);
    assert!(
        reason.contains(&format!("Prometheus at {address}")),
        "{reason}"
    );
}

#[tokio::test]
async fn something_that_is_not_prometheus_is_a_provider_error() {
    // The metrics page answers `/api/v1/query` with 404 and plain text.
    let target = serve_metrics().await;
    let reason =
        provider_error(measure(&spec(prometheus(&format!("http://{target}"), "up"))).await);
    assert!(reason.contains("404 Not Found"), "{reason}");
    assert!(reason.contains("not its API's JSON"), "{reason}");

    let closed = format!("http://127.0.0.1:{}", free_port());
    let reason = provider_error(measure(&spec(prometheus(&closed, "up"))).await);
    assert!(reason.contains("onnection refused"), "{reason}");
}

/// A release's counters as an exporter shows them: requests, 5xx, and a latency histogram
/// with cumulative buckets.
#[derive(Clone, Copy, Default)]
struct Counters {
    requests: u64,
    errors: u64,
    /// Requests at most 10 ms, at most 100 ms; the rest above.
    fast: u64,
    medium: u64,
}

fn exposition(canary: Counters, stable: Counters) -> String {
    let mut text = String::from(
        "# TYPE http_requests_total counter\n# TYPE http_request_duration_seconds histogram\n",
    );
    for (version, c) in [("v2", canary), ("v1", stable)] {
        text += &format!(
            "http_requests_total{{namespace=\"shop\",version=\"{version}\",code=\"200\"}} {}\n\
             http_requests_total{{namespace=\"shop\",version=\"{version}\",code=\"500\"}} {}\n\
             http_request_duration_seconds_bucket{{namespace=\"shop\",version=\"{version}\",le=\"0.01\"}} {}\n\
             http_request_duration_seconds_bucket{{namespace=\"shop\",version=\"{version}\",le=\"0.1\"}} {}\n\
             http_request_duration_seconds_bucket{{namespace=\"shop\",version=\"{version}\",le=\"+Inf\"}} {}\n",
            c.requests - c.errors,
            c.errors,
            c.fast,
            c.fast + c.medium,
            c.requests,
        );
    }
    text
}

fn exact(c: Counters) -> switchyard_core::ReleaseTotals {
    // Above the highest bound, latencies count at it (as `histogram_quantile` reads them).
    let mut latency = vec![(0.01, c.fast), (0.1, c.requests - c.fast)];
    latency.retain(|(_, n)| *n > 0);
    let mut t = switchyard_core::ReleaseTotals {
        requests: c.requests,
        errors: c.errors,
        latency,
        ..Default::default()
    };
    t.status_classes[4] = c.errors;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judge_reads_the_same_totals_from_prometheus_and_gives_the_same_verdicts() {
    use switchyard_analysis::judge::state::JudgeState;
    use switchyard_analysis::judge::{ArmInterval, Compare, IntervalObservation, JudgeSpec};
    use switchyard_analysis::{JudgeTotalsRequest, MetricProvider};
    use switchyard_core::manifest::analysis::judge::JudgeSource;
    use switchyard_core::name::{AppName, Version};

    let page = std::sync::Arc::new(std::sync::Mutex::new(exposition(
        Counters::default(),
        Counters::default(),
    )));
    let served = std::sync::Arc::clone(&page);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = served.lock().unwrap().clone();
            async move { ([("content-type", "text/plain; version=0.0.4")], text) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut server = start_prometheus(target);
    wait_for_first_scrape(&mut server).await;

    let source: JudgeSource = serde_json::from_value(json!({"prometheus": {
        "address": server.address,
        "requests": r#"sum(http_requests_total{namespace="{{namespace}}",version="{{version}}"})"#,
        "errors": r#"sum(http_requests_total{namespace="{{namespace}}",version="{{version}}",code=~"5.."})"#,
        "latency": r#"sum by (le) (http_request_duration_seconds_bucket{namespace="{{namespace}}",version="{{version}}"})"#,
    }}))
    .unwrap();
    let router = switchyard_analysis::ProviderRouter::new(
        std::sync::Arc::new(super::NoTraffic),
        super::policy(),
    )
    .unwrap();
    let (app, canary, stable) = (
        AppName::new("shop").unwrap(),
        Version::new("v2").unwrap(),
        Version::new("v1").unwrap(),
    );
    let request = JudgeTotalsRequest {
        source: &source,
        app: &app,
        canary: &canary,
        baseline: &stable,
        namespace: "shop",
    };

    // Twelve looks of a canary with 4 % errors against a stable with 0.5 %, seeded counts.
    let mut judges = [
        JudgeState::new(JudgeSpec::new(Compare::ErrorRate)).unwrap(),
        JudgeState::new(JudgeSpec::new(Compare::ErrorRate)).unwrap(),
    ];
    for j in &mut judges {
        j.start(0);
    }
    let (mut c, mut s) = (Counters::default(), Counters::default());
    let mut previous: Option<[switchyard_core::ReleaseTotals; 2]> = None;
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for look in 1..=12u64 {
        let (cn, sn) = (300 + next(50), 2700 + next(300));
        c.requests += cn;
        c.errors += cn * 4 / 100;
        c.fast += cn / 2;
        c.medium += cn / 3;
        s.requests += sn;
        s.errors += sn / 200;
        s.fast += sn / 2;
        s.medium += sn / 3;
        *page.lock().unwrap() = exposition(c, s);
        let wanted = [exact(c), exact(s)];
        // Waits for the scrape of these counts (the condition, not a time).
        let deadline = Instant::now() + Duration::from_secs(90);
        let read = loop {
            let read = router.judge_totals(&request).await.unwrap();
            if read == wanted {
                break read;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never showed {look}: {read:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if let Some(before) = &previous {
            let arm = |i: usize, totals: &[switchyard_core::ReleaseTotals; 2]| {
                let d = totals[i].since(&before[i]);
                ArmInterval {
                    requests: d.requests,
                    errors: d.errors,
                    latency: d.latency,
                }
            };
            let at_ms = look * 10_000;
            for (judge, totals) in judges.iter_mut().zip([&read, &wanted]) {
                judge
                    .record(&IntervalObservation {
                        at_ms,
                        canary: arm(0, totals),
                        baseline: arm(1, totals),
                    })
                    .unwrap();
            }
            let verdicts = [
                judges[0].verdict(at_ms).unwrap().outcome,
                judges[1].verdict(at_ms).unwrap().outcome,
            ];
            assert_eq!(verdicts[0], verdicts[1], "look {look}");
        }
        previous = Some(read);
    }
    let last = judges[0].verdict(120_000).unwrap();
    assert_eq!(
        format!("{:?}", last.outcome),
        "Fail",
        "8 times the stable's error rate is caught: {last:?}"
    );
}
