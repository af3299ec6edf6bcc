#![allow(clippy::unwrap_used)]

//! The error paths of the Kubernetes adapters against a stand-in API server (a `tower-test`
//! mock behind a real `kube::Client`, as kube-rs tests itself): conflicts, refusals and an
//! API server that cannot be reached. What works is tested against the real control plane
//! (the e2e suite); what fails is easier to make fail here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};
use switchyard_control::ports::{RoutePlan, RouteTarget};
use switchyard_core::manifest::app::{GatewayApiRouting, K8sName, TrafficRouting};
use switchyard_core::ports::WorkloadRuntime;
use switchyard_core::{AppName, Release, Version, Workload};
use switchyard_kubernetes::{AppRouting, Cluster, KubeRouter, KubeRuntime};
use tokio_util::sync::CancellationToken;

/// What the fake API server answers, and what it was asked.
#[derive(Default)]
struct Fake {
    objects: HashMap<String, Value>,
    /// Answers forced for `METHOD path` (status, message), used once each.
    forced: HashMap<String, Vec<(u16, &'static str)>>,
    /// Every call, as `METHOD path`.
    calls: Vec<String>,
    /// Every call fails to connect.
    unreachable: bool,
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// A `kube::Client` whose calls the fake answers.
fn client(fake: Arc<Mutex<Fake>>) -> kube::Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, reply)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let path = parts.uri.path().to_string();
            let key = format!("{} {path}", parts.method);
            let mut f = fake.lock().unwrap();
            f.calls.push(key.clone());
            if f.unreachable {
                reply.send_error(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused",
                ));
                continue;
            }
            let forced = f
                .forced
                .get_mut(&key)
                .and_then(|v| (!v.is_empty()).then(|| v.remove(0)));
            let (code, value) = if let Some((code, message)) = forced {
                let reason = if code == 409 { "Conflict" } else { "Forbidden" };
                (code, status(code, reason, message))
            } else if parts.method == "GET" && path.ends_with("/endpointslices") {
                let slice = json!({"addressType": "IPv4", "metadata": {"name": "s"},
                    "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}]});
                (
                    200,
                    json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": [slice]}),
                )
            } else if parts.method == "GET" && path.ends_with("/pods") {
                let pod = json!({"metadata": {"name": "p"}, "status": {"podIP": "10.0.0.1",
                    "conditions": [{"type": "Ready", "status": "True"}]}});
                (
                    200,
                    json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": [pod]}),
                )
            } else if parts.method == "GET" {
                match f.objects.get(&path) {
                    Some(v) => (200, v.clone()),
                    None => (404, status(404, "NotFound", "not found")),
                }
            } else {
                // PATCH (server-side apply) and PUT keep what they are sent.
                let mut v: Value = serde_json::from_slice(&body).unwrap();
                v["metadata"]["resourceVersion"] = json!("1");
                f.objects.insert(path, v.clone());
                (200, v)
            };
            let response = Response::builder()
                .status(StatusCode::from_u16(code).unwrap())
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&value).unwrap()))
                .unwrap();
            reply.send_response(response);
        }
    });
    kube::Client::new(service, "default")
}

const ROUTE: &str = "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/shop";

fn fake_with_route() -> Arc<Mutex<Fake>> {
    let mut fake = Fake::default();
    fake.objects.insert(
        ROUTE.into(),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
               "metadata": {"name": "shop", "namespace": "shop", "resourceVersion": "1"},
               "spec": {"rules": [{"backendRefs": [{"name": "shop-stable", "port": 80}]}]}}),
    );
    Arc::new(Mutex::new(fake))
}

fn app() -> AppName {
    AppName::new("shop").unwrap()
}

fn router(fake: &Arc<Mutex<Fake>>) -> KubeRouter {
    let router = KubeRouter::new(
        Arc::new(Cluster::with_client(client(Arc::clone(fake)))),
        CancellationToken::new(),
    );
    router.register(
        &app(),
        AppRouting {
            namespace: "shop".into(),
            port: 8080,
            service_port: 80,
            traffic_routing: Some(TrafficRouting::GatewayApi(GatewayApiRouting {
                http_route: K8sName::new("shop").unwrap(),
            })),
            replicas: 1,
            sized_by_weight: false,
        },
    );
    router
}

fn plan(stable: u32, canary: u32) -> RoutePlan {
    let target = |v: &str, weight| RouteTarget {
        version: Version::new(v).unwrap(),
        weight,
        endpoints: Vec::<SocketAddr>::new(),
    };
    RoutePlan {
        targets: vec![target("v1", stable), target("v2", canary)],
        ..RoutePlan::default()
    }
}

fn weights(fake: &Arc<Mutex<Fake>>) -> Value {
    fake.lock().unwrap().objects[ROUTE]["spec"]["rules"][0]["backendRefs"].clone()
}

#[tokio::test]
async fn a_conflict_on_the_route_is_read_again_and_written_again() {
    let fake = fake_with_route();
    fake.lock().unwrap().forced.insert(
        format!("PUT {ROUTE}"),
        vec![(409, "the object has been modified")],
    );
    let router = router(&fake);
    router.route(&app(), plan(80, 20));
    assert!(
        router.applied(&app()).await,
        "{:?}",
        router.progress(&app())
    );
    let refs = weights(&fake);
    assert_eq!(refs[0]["weight"], 80, "{refs}");
    assert_eq!(refs[1]["weight"], 20, "{refs}");
    // All to stable before the canary Service is pointed at v2 (the route had no weights
    // yet), one write refused and written again, then 80/20.
    let puts = fake
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| c.starts_with("PUT"))
        .count();
    assert_eq!(puts, 3);
}

#[tokio::test(start_paused = true)]
async fn a_refused_write_is_reported_with_verb_resource_and_namespace_and_retried() {
    let fake = fake_with_route();
    let message = r#"httproutes.gateway.networking.k8s.io "shop" is forbidden: User "switchyard" cannot update resource "httproutes" in API group "gateway.networking.k8s.io" in the namespace "shop""#;
    fake.lock()
        .unwrap()
        .forced
        .insert(format!("PUT {ROUTE}"), vec![(403, message); 6]);
    let router = router(&fake);
    router.route(&app(), plan(90, 10));
    // Not in force, and the router says why, in the API server's words.
    assert!(!router.applied(&app()).await);
    let error = router.progress(&app()).unwrap().error.unwrap();
    assert!(
        error.contains("updating HTTPRoute shop in namespace shop"),
        "{error}"
    );
    assert!(error.contains("403"), "{error}");
    assert!(
        error.contains(r#"cannot update resource "httproutes""#),
        "{error}"
    );
    // Once the permission is there, the retry applies it and the error goes.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(router.applied(&app()).await);
    assert_eq!(router.progress(&app()).unwrap().error, None);
    assert_eq!(weights(&fake)[0]["weight"], 90);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_api_server_leaves_the_plan_unapplied_and_says_so() {
    let fake = fake_with_route();
    fake.lock().unwrap().unreachable = true;
    let router = router(&fake);
    router.route(&app(), plan(50, 50));
    assert!(!router.applied(&app()).await, "never a silent pass");
    let error = router.progress(&app()).unwrap().error.unwrap();
    assert!(error.contains("cannot be reached"), "{error}");
    // It keeps trying, with backoff, and gets there when the API server is back.
    let tried = fake.lock().unwrap().calls.len();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(fake.lock().unwrap().calls.len() > tried);
    fake.lock().unwrap().unreachable = false;
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(router.applied(&app()).await);
    assert_eq!(weights(&fake)[0]["weight"], 50);
}

#[tokio::test]
async fn a_forbidden_replicaset_fails_the_start_with_the_api_servers_words() {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let runtime = KubeRuntime::new(Arc::new(Cluster::with_client(client(Arc::clone(&fake)))));
    let release = Release {
        app: app(),
        version: Version::new("v1").unwrap(),
        workload: Workload::Kubernetes {
            namespace: "shop".into(),
            replicas: 1,
            port: 8080,
            template: Box::default(),
            start_timeout: Duration::from_secs(5),
            scale_down_delay: Duration::from_secs(1),
            sized_by_weight: false,
        },
        health_check: Default::default(),
    };
    let name = switchyard_kubernetes::objects::replica_set_name(
        &release.app,
        &switchyard_kubernetes::objects::template_hash(&release.version, &Default::default()),
    );
    let message = r#"replicasets.apps is forbidden: User "switchyard" cannot patch resource "replicasets" in API group "apps" in the namespace "shop""#;
    fake.lock().unwrap().forced.insert(
        format!("PATCH /apis/apps/v1/namespaces/shop/replicasets/{name}"),
        vec![(403, message)],
    );
    let e = runtime.start(&release).await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("applying ReplicaSet {name} in namespace shop")),
        "{e}"
    );
    assert!(e.contains(r#"cannot patch resource "replicasets""#), "{e}");

    // Allowed, it starts: the ReplicaSet applied once, the pods' readiness read.
    let endpoints = runtime.start(&release).await.unwrap();
    assert_eq!(
        endpoints,
        vec!["10.0.0.1:8080".parse::<SocketAddr>().unwrap()]
    );
}
