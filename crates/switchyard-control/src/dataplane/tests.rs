//! The data plane's logic without a proxy process: versions, deltas and snapshots, the sums of
//! proxies' counters, acknowledgements and drains (on a paused clock), and applies that a
//! proxy could not bind.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use switchyard_core::dataplane::{
    AppListeners, ListenerState, ProxyReport, ReleaseCounters, ReportedExposure,
};
use switchyard_core::manifest::load_str;
use switchyard_core::{ReleaseTotals, Version};

use super::*;
use crate::ports::RouteTarget;

const GENERATION: u64 = 42;

fn apps(names: &[(&str, u16)]) -> Vec<App> {
    let text: String = names
        .iter()
        .map(|(name, port)| {
            format!(
                "apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {{name: {name}}}
spec:
  listen: 127.0.0.1:{port}
  runtime: {{static: {{releases: {{v1: ['127.0.0.1:9']}}}}}}
  healthCheck: {{path: /health}}
  strategy: {{canary: {{steps: [{{setWeight: 10}}]}}}}
---
"
            )
        })
        .collect();
    load_str(&text, Path::new("test.yaml")).unwrap().apps
}

fn name(s: &str) -> AppName {
    AppName::new(s).unwrap()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn plan(targets: &[(&str, u32, u16)]) -> RoutePlan {
    RoutePlan {
        targets: targets
            .iter()
            .map(|(v, w, port)| RouteTarget {
                version: Version::new(*v).unwrap(),
                weight: *w,
                endpoints: vec![addr(*port)],
            })
            .collect(),
        ..RoutePlan::default()
    }
}

fn totals(requests: u64, errors: u64) -> ReleaseTotals {
    ReleaseTotals {
        requests,
        errors,
        latency: vec![(0.001, requests)],
        status_classes: [0, requests - errors, 0, 0, errors],
        upstream_failures: 0,
        latency_sum_micros: requests * 1000,
    }
}

/// A report of proxy `id` serving `version`, with `counts` as `(app, release, requests,
/// errors)`.
fn report(
    id: &str,
    epoch: u64,
    seq: u64,
    version: u64,
    counts: &[(&str, &str, u64, u64)],
) -> ProxyReport {
    let mut by_app: BTreeMap<AppName, BTreeMap<Version, ReleaseCounters>> = BTreeMap::new();
    for (app, release, requests, errors) in counts {
        by_app.entry(name(app)).or_default().insert(
            Version::new(*release).unwrap(),
            ReleaseCounters {
                incarnation: 1,
                totals: totals(*requests, *errors),
            },
        );
    }
    ProxyReport {
        proxy: id.into(),
        epoch,
        seq,
        generation: GENERATION,
        version,
        refused: None,
        listeners: BTreeMap::new(),
        draining: Vec::new(),
        unhealthy: Vec::new(),
        totals: by_app,
        exposures: Vec::new(),
        exposures_dropped: 0,
    }
}

async fn opened(names: &[(&str, u16)]) -> DataPlane {
    let plane = DataPlane::new(GENERATION);
    plane.ensure(&apps(names)).await.unwrap();
    plane.open();
    plane
}

#[tokio::test]
async fn proxies_get_deltas_from_their_version_and_snapshots_otherwise() {
    let plane = opened(&[("shop", 8001), ("cart", 8002)]).await;
    let v = plane.version();
    assert_eq!(v, 2, "one version per app that got a listener");

    // Another generation (a proxy of an earlier start, or a new one): everything.
    let snapshot = plane.update_since(0, 0).unwrap();
    assert_eq!(snapshot.base, None);
    assert_eq!(snapshot.apps.len(), 2);
    assert_eq!(plane.update_since(GENERATION, v), None, "nothing new");

    plane.route(&name("shop"), plan(&[("v1", 100, 9001)]));
    let same = plane.version();
    plane.route(&name("shop"), plan(&[("v1", 100, 9001)]));
    assert_eq!(plane.version(), same, "the same routes make no new version");

    let delta = plane.update_since(GENERATION, v).unwrap();
    assert_eq!(delta.base, Some(v));
    assert_eq!(delta.version, v + 1);
    assert_eq!(delta.apps.keys().collect::<Vec<_>>(), [&name("shop")]);
    let shop = delta.apps[&name("shop")].as_ref().unwrap();
    assert_eq!(shop.targets[0].endpoints, [addr(9001)]);

    plane.release(&[name("cart")]).await;
    let delta = plane.update_since(GENERATION, v).unwrap();
    assert_eq!(
        delta.apps[&name("cart")],
        None,
        "a removed app is sent as removed"
    );

    // Further behind than the history: a snapshot.
    for i in 0..(tables::HISTORY as u16 + 1) {
        plane.route(&name("shop"), plan(&[("v1", 100, 10_000 + i % 2)]));
    }
    let behind = plane.update_since(GENERATION, v).unwrap();
    assert_eq!(behind.base, None);
    assert_eq!(behind.apps.len(), 1);
}

#[tokio::test]
async fn a_table_that_would_not_serve_is_never_published() {
    let plane = opened(&[("shop", 8001)]).await;
    let before = plane.version();
    // Two targets of one release: the controller never builds this, and no proxy must get it.
    plane.route(&name("shop"), plan(&[("v1", 50, 9001), ("v1", 50, 9002)]));
    assert_eq!(plane.version(), before);
    let no_listener = plane.route_experiment(
        &name("elsewhere"),
        ExperimentRoutes {
            experiment: "x".into(),
            unit: switchyard_core::manifest::app::Stickiness::Header("x-user".into()),
            targets: Vec::new(),
        },
    );
    assert!(matches!(no_listener, Err(RouteError::NoListener(_))));
}

#[tokio::test]
async fn counters_are_summed_across_proxies_and_never_counted_twice() {
    let plane = opened(&[("shop", 8001)]).await;
    plane
        .report(report("a", 1, 1, 2, &[("shop", "v1", 10, 1)]))
        .unwrap();
    plane
        .report(report("b", 1, 1, 2, &[("shop", "v1", 5, 0)]))
        .unwrap();
    assert_eq!(plane.totals("shop", "v1").unwrap().requests, 15);

    // A retried report (same sequence number) counts once.
    plane
        .report(report("a", 1, 1, 2, &[("shop", "v1", 10, 1)]))
        .unwrap();
    assert_eq!(plane.totals("shop", "v1").unwrap().requests, 15);

    // Proxy a goes on: only the difference is new.
    plane
        .report(report("a", 1, 2, 2, &[("shop", "v1", 12, 1)]))
        .unwrap();
    assert_eq!(plane.totals("shop", "v1").unwrap().requests, 17);

    // Proxy a restarts: a new epoch counts from zero, and its earlier requests stay counted.
    plane
        .report(report("a", 2, 1, 2, &[("shop", "v1", 3, 3)]))
        .unwrap();
    let t = plane.totals("shop", "v1").unwrap();
    assert_eq!((t.requests, t.errors), (20, 4));

    // The old process reports again: refused, nothing added.
    let stale = plane.report(report("a", 1, 3, 2, &[("shop", "v1", 100, 0)]));
    assert!(
        matches!(stale, Err(ReportError::StaleEpoch { .. })),
        "{stale:?}"
    );
    assert_eq!(plane.totals("shop", "v1").unwrap().requests, 20);

    let window = plane.window("shop", "v1", Duration::from_secs(10)).unwrap();
    assert_eq!(window.requests, 20);
    assert_eq!(window.errors(), 4);
    assert_eq!(plane.window("shop", "v2", Duration::from_secs(10)), None);
}

#[tokio::test]
async fn the_endpoints_a_proxy_avoids_are_known_per_app() {
    let plane = opened(&[("shop", 8001), ("cart", 8002)]).await;
    // No proxy serves the apps yet: their instances' health is unknown.
    assert_eq!(plane.unhealthy_endpoints(&name("shop")), None);
    let serving = |id: &str, seq: u64, unhealthy: Vec<(AppName, SocketAddr)>| {
        let mut r = report(id, 1, seq, 2, &[]);
        for (app, port) in [("shop", 8001), ("cart", 8002)] {
            r.listeners.insert(
                name(app),
                AppListeners {
                    main: ListenerState::Bound(addr(port)),
                    tls_problem: None,
                    preview: None,
                },
            );
        }
        r.unhealthy = unhealthy;
        r
    };
    plane.report(serving("a", 1, vec![])).unwrap();
    plane
        .report(serving("b", 1, vec![(name("shop"), addr(9001))]))
        .unwrap();
    // One proxy avoiding an instance is enough to call it unhealthy; other apps are unaffected.
    assert_eq!(
        plane.unhealthy_endpoints(&name("shop")),
        Some([addr(9001)].into())
    );
    assert_eq!(plane.unhealthy_endpoints(&name("cart")), Some([].into()));
    // Healthy again on the next report.
    plane.report(serving("b", 2, vec![])).unwrap();
    assert_eq!(plane.unhealthy_endpoints(&name("shop")), Some([].into()));
}

#[tokio::test]
async fn exposures_reach_the_relay_once() {
    let plane = opened(&[("shop", 8001)]).await;
    let mut r = report("a", 1, 1, 2, &[]);
    r.exposures = vec![ReportedExposure {
        experiment: "x".into(),
        unit: "u1".into(),
        release: "v1".into(),
        status: 200,
        latency_ms: 1.0,
    }];
    // Without a relay nothing breaks; the retry is ignored either way.
    plane.report(r.clone()).unwrap();
    plane.report(r).unwrap();
    assert_eq!(plane.proxies()[0].id, "a");
}

#[tokio::test(start_paused = true)]
async fn a_change_is_acknowledged_when_every_live_proxy_serves_it() {
    let plane = opened(&[("shop", 8001)]).await;
    plane.report(report("a", 1, 1, 1, &[])).unwrap();
    plane.report(report("b", 1, 1, 1, &[])).unwrap();
    plane.route(&name("shop"), plan(&[("v1", 100, 9001)]));
    let v = plane.version();

    let waiting = {
        let plane = plane.clone();
        tokio::spawn(async move { plane.acknowledged(v, Duration::from_secs(60)).await })
    };
    tokio::time::sleep(SETTLE).await;
    plane.report(report("a", 1, 2, v, &[])).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "b has not applied it");
    plane.report(report("b", 1, 2, v, &[])).unwrap();
    assert!(waiting.await.unwrap());

    // A proxy that stops reporting is not waited for once it is no longer live.
    plane.route(&name("shop"), plan(&[("v1", 100, 9002)]));
    let v = plane.version();
    let waiting = {
        let plane = plane.clone();
        tokio::spawn(async move { plane.acknowledged(v, Duration::from_secs(60)).await })
    };
    for seq in 3..20 {
        plane.report(report("a", 1, seq, v, &[])).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        if waiting.is_finished() {
            break;
        }
    }
    assert!(
        waiting.is_finished(),
        "b went silent more than {LIVE_FOR:?} ago"
    );
    assert!(waiting.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_is_drained_once_every_proxy_dropped_it_and_finished_its_requests() {
    let plane = opened(&[("shop", 8001)]).await;
    plane.route(&name("shop"), plan(&[("v1", 100, 9001)]));
    plane
        .report(report("a", 1, 1, plane.version(), &[]))
        .unwrap();
    plane.route(&name("shop"), plan(&[("v2", 100, 9002)]));
    let v = plane.version();
    let drained = tokio::spawn(plane.drained(&name("shop"), addr(9001)));
    tokio::time::sleep(SETTLE).await;

    let mut still = report("a", 1, 2, v, &[]);
    still.draining = vec![(name("shop"), addr(9001))];
    plane.report(still).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!drained.is_finished(), "its requests still run on proxy a");

    plane.report(report("a", 1, 3, v, &[])).unwrap();
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .expect("drained once the proxy says so")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_apply_a_proxy_cannot_bind_fails_and_changes_nothing() {
    let plane = opened(&[("shop", 8001)]).await;
    plane
        .report(report("a", 1, 1, plane.version(), &[]))
        .unwrap();
    tokio::time::sleep(SETTLE).await;
    let before = plane.update_since(0, 0).unwrap().apps;

    let moving = {
        let plane = plane.clone();
        tokio::spawn(async move { plane.ensure(&apps(&[("shop", 8099)])).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut failed = report("a", 1, 2, plane.version(), &[]);
    failed.listeners.insert(
        name("shop"),
        AppListeners {
            main: ListenerState::Failed("address in use".into()),
            tls_problem: None,
            preview: None,
        },
    );
    plane.report(failed).unwrap();
    let err = moving.await.unwrap().unwrap_err();
    assert_eq!(err.address, addr(8099));
    assert!(
        chain(&err).contains("on proxy `a`: address in use"),
        "{}",
        chain(&err)
    );
    assert_eq!(
        plane.update_since(0, 0).unwrap().apps,
        before,
        "back where it was"
    );
}

fn chain(e: &dyn std::error::Error) -> String {
    crate::controller::chain(e)
}
