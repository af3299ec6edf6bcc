//! The exposure tap of traffic experiments: which release served each unit, with the answer's
//! status and latency, reported to a sink for requests placed by their stickiness key only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use switchyard_proxy::bucket::{BucketLayout, bucket_of};
use switchyard_proxy::{
    AppMatch, ExperimentTap, Exposure, ExposureSink, HeaderRoute, Mirror, ProxyConfig,
    RequestMatch, RoutingTable, SharedProxy, Stickiness, StickinessKey, Telemetry, ValueMatch,
};

use crate::support::*;

/// Keeps every exposure it is given.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Exposure>>);

impl ExposureSink for Recorder {
    fn record(&self, exposure: Exposure) {
        self.0.lock().unwrap().push(exposure);
    }
}

impl Recorder {
    fn taken(&self) -> Vec<Exposure> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

const SALT: &str = "shop";

/// stable/canary at 50/50, sticky on `x-user`, `x-canary: always` pinned to canary.
fn experiment_table(stable: SocketAddr, canary: SocketAddr) -> RoutingTable {
    let mut t = table(&[("stable", 50, &[stable]), ("canary", 50, &[canary])]);
    t.stickiness = Some(Stickiness {
        key: StickinessKey::Header(http::HeaderName::from_static("x-user")),
        salt: SALT.into(),
        affinity_cookie: None,
    });
    t.header_routes = vec![HeaderRoute {
        matches: vec![RequestMatch::Header {
            name: http::HeaderName::from_static("x-canary"),
            value: ValueMatch::Exact("always".into()),
        }],
        release: "canary".into(),
    }];
    t
}

/// The release a unit's bucket maps to at 50/50, computed from the bucket functions.
fn release_of(unit: &str) -> &'static str {
    let layout = BucketLayout::new(&[50, 50]);
    match layout.release_of(bucket_of(SALT, unit)) {
        Some(0) => "stable",
        Some(1) => "canary",
        other => panic!("no release for {unit}: {other:?}"),
    }
}

#[tokio::test]
async fn each_unit_is_exposed_to_the_release_of_its_bucket() {
    let stable = TestBackend::start("stable").await;
    let canary = TestBackend::start("canary").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    let sink = Arc::new(Recorder::default());
    p.set_exposure_sink(sink.clone());
    let tap = ExperimentTap::new("checkout-button");
    let t = experiment_table(stable.addr, canary.addr);
    t.validate_with_experiment(Some(&tap)).unwrap();
    p.set_routes_with_experiment(t, Some(tap.clone()));
    assert_eq!(p.experiment(), Some(tap));
    let (c, addr) = (client(), p.local_addr());

    let units: Vec<String> = (0..30).map(|u| format!("user-{u}")).collect();
    for unit in &units {
        let (status, body) = get_with(&c, addr, "/", &[("x-user", unit)]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, release_of(unit)));
        let (status, _) = get_with(&c, addr, "/status/404", &[("x-user", unit)]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let exposures = sink.taken();
    assert_eq!(exposures.len(), 2 * units.len());
    for (pair, unit) in exposures.chunks(2).zip(&units) {
        for (e, status) in pair.iter().zip([200, 404]) {
            assert_eq!(&*e.experiment, "checkout-button");
            assert_eq!(&e.unit, unit);
            assert_eq!(e.release, release_of(unit), "{e:?}");
            assert_eq!(e.status, status, "{e:?}");
            assert!(e.latency > Duration::ZERO, "{e:?}");
        }
    }
    for release in ["stable", "canary"] {
        assert!(exposures.iter().any(|e| e.release == release), "{release}");
    }

    // Latency runs from request received to response head: it includes the upstream's wait
    // (a lower bound that a sleep guarantees, not a timing measurement).
    get_with(&c, addr, "/slow/30", &[("x-user", "user-0")]).await;
    let slow = sink.taken();
    assert_eq!(slow.len(), 1);
    assert!(slow[0].latency >= Duration::from_millis(30), "{slow:?}");

    // Not exposures: no key (random split), a header route, an empty key.
    get(&c, addr, "/").await;
    let pinned = get_with(
        &c,
        addr,
        "/",
        &[("x-user", "user-0"), ("x-canary", "always")],
    )
    .await;
    assert_eq!(pinned.1, "canary");
    get_with(&c, addr, "/", &[("x-user", "")]).await;
    assert_eq!(sink.taken(), Vec::new());
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_proxys_own_answers_are_exposures_and_no_experiment_means_none() {
    let stable = TestBackend::start("stable").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    let sink = Arc::new(Recorder::default());
    p.set_exposure_sink(sink.clone());
    let dead = dead_addr().await;
    let tap = ExperimentTap::new("checkout-button");
    p.set_routes_with_experiment(experiment_table(stable.addr, dead), Some(tap));
    let c = client();
    let unit = (0..)
        .map(|u| format!("user-{u}"))
        .find(|u| release_of(u) == "canary")
        .unwrap();
    let (status, body) = get_with(&c, p.local_addr(), "/", &[("x-user", &unit)]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let exposures = sink.taken();
    assert_eq!(exposures.len(), 1, "{exposures:?}");
    assert_eq!(
        (exposures[0].unit.as_str(), exposures[0].release.as_str()),
        (unit.as_str(), "canary")
    );
    assert_eq!(exposures[0].status, 502);

    // The same table without the experiment: nothing is recorded.
    p.set_routes(experiment_table(stable.addr, dead));
    assert_eq!(p.experiment(), None);
    get_with(&c, p.local_addr(), "/", &[("x-user", &unit)]).await;
    get_with(&c, p.local_addr(), "/", &[("x-user", "user-x")]).await;
    assert_eq!(sink.taken(), Vec::new());
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn mirror_copies_are_not_exposures() {
    let stable = TestBackend::start("stable").await;
    let shadow = TestBackend::start("shadow").await;
    let (p, _) = proxy(ProxyConfig::default()).await;
    let sink = Arc::new(Recorder::default());
    p.set_exposure_sink(sink.clone());
    let mut t = table(&[
        ("stable", 100, &[stable.addr]),
        ("shadow", 0, &[shadow.addr]),
    ]);
    t.stickiness = Some(Stickiness {
        key: StickinessKey::Header(http::HeaderName::from_static("x-user")),
        salt: SALT.into(),
        affinity_cookie: None,
    });
    t.mirror = Some(Mirror {
        release: "shadow".into(),
        percent: 100.0,
        max_body_bytes: 1024,
    });
    p.set_routes_with_experiment(t, Some(ExperimentTap::new("search-ranking")));
    let c = client();
    for u in 0..10 {
        let unit = format!("user-{u}");
        let got = get_with(&c, p.local_addr(), "/", &[("x-user", &unit)]).await;
        assert_eq!(got, (StatusCode::OK, "stable".to_owned()));
    }
    // Every copy has been answered by the mirror, so any exposure it caused is recorded.
    for _ in 0..1000 {
        if shadow.answered() == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(shadow.answered(), 10);
    let exposures = sink.taken();
    assert_eq!(exposures.len(), 10, "{exposures:?}");
    assert!(
        exposures.iter().all(|e| e.release == "stable"),
        "{exposures:?}"
    );
    p.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_shared_listener_reports_exposures_of_its_apps() {
    let stable = TestBackend::start("stable").await;
    let canary = TestBackend::start("canary").await;
    let p = SharedProxy::bind(
        "127.0.0.1:0".parse().unwrap(),
        ProxyConfig::default(),
        Arc::new(Telemetry::new()),
    )
    .await
    .unwrap();
    let sink = Arc::new(Recorder::default());
    p.set_exposure_sink(sink.clone());
    let shop = AppMatch {
        hosts: vec!["shop.test".into()],
        path_prefix: String::new(),
    };
    let tap = ExperimentTap::new("checkout-button");
    p.set_app_with_experiment(
        "shop",
        shop,
        experiment_table(stable.addr, canary.addr),
        Some(tap),
    );
    p.set_app(
        "other",
        AppMatch::default(),
        table(&[("stable", 1, &[stable.addr])]),
    );
    let c = client();
    for host in ["shop.test", "other.test"] {
        let got = get_with(
            &c,
            p.local_addr(),
            "/",
            &[("host", host), ("x-user", "user-7")],
        )
        .await;
        assert_eq!(got.0, StatusCode::OK);
    }
    let exposures = sink.taken();
    assert_eq!(exposures.len(), 1, "{exposures:?}");
    assert_eq!(exposures[0].release, release_of("user-7"));
    p.shutdown(Duration::from_secs(1)).await;
}
