use std::path::Path;

use switchyard_control::RouteTarget;
use switchyard_core::Version;
use switchyard_core::manifest::load_str;

use super::*;

const APP: &str = "apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  listen: 127.0.0.1:0
  runtime: {process: {command: [shop, --version, '{version}']}}
  healthCheck: {path: /health}
  strategy: {canary: {steps: [{setWeight: 50}]}}
";

#[tokio::test]
async fn an_experiment_split_is_sticky_by_its_unit_salted_with_its_key_and_health_checked() {
    let set = load_str(APP, Path::new("shop.yaml")).unwrap();
    let listeners = Listeners::new(Arc::new(Telemetry::new()), ProxyConfig::default());
    listeners.ensure(&set.apps).await.unwrap();
    let shop = AppName::new("shop").unwrap();
    let target = |v: &str, port: u16| RouteTarget {
        version: Version::new(v).unwrap(),
        weight: 50,
        endpoints: vec![SocketAddr::from(([127, 0, 0, 1], port))],
    };
    let routes = ExperimentRoutes {
        experiment: "shop-ab".into(),
        unit: Stickiness::Header("x-user-id".into()),
        targets: vec![target("v1", 20001), target("v2", 20002)],
    };
    listeners.route_experiment(&shop, routes).unwrap();

    let (table, tap) = listeners.routes(&shop).unwrap();
    let stickiness = table.stickiness.as_ref().unwrap();
    assert_eq!(
        stickiness.key,
        StickinessKey::Header(http::HeaderName::from_static("x-user-id"))
    );
    assert_eq!(
        stickiness.salt, "shop-ab",
        "units are hashed with the experiment's key"
    );
    assert!(table.health_check.is_some());
    assert_eq!(tap.unwrap().experiment.as_ref(), "shop-ab");
    let weights: Vec<(&str, u32)> = table
        .backends
        .iter()
        .map(|b| (b.release.as_str(), b.weight))
        .collect();
    assert_eq!(weights, [("v1", 50), ("v2", 50)]);

    let unknown = AppName::new("nope").unwrap();
    let routes = ExperimentRoutes {
        experiment: "x".into(),
        unit: Stickiness::Header("x-user-id".into()),
        targets: vec![],
    };
    assert!(matches!(
        listeners.route_experiment(&unknown, routes),
        Err(RouteError::NoListener(_))
    ));
    listeners.shutdown(Duration::ZERO).await;
}
