//! `runtime: kubernetes` against a real control plane (`scripts/kube-cluster`: etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler, KWOK nodes, the Gateway API CRDs).
//! Each test works in a namespace of its own and reads what Switchyard did back from the API
//! server with kubectl. Run by `scripts/test` with `SWITCHYARD_TEST_KUBECONFIG` and
//! `SWITCHYARD_TEST_KUBECTL` set; ignored otherwise.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

struct Kube {
    kubeconfig: String,
    kubectl: String,
    namespace: String,
}

impl Kube {
    /// The test cluster, and a fresh namespace in it.
    fn new(test: &str) -> Kube {
        let kubeconfig = std::env::var("SWITCHYARD_TEST_KUBECONFIG")
            .expect("SWITCHYARD_TEST_KUBECONFIG names the test cluster's kubeconfig");
        let kubectl = std::env::var("SWITCHYARD_TEST_KUBECTL")
            .expect("SWITCHYARD_TEST_KUBECTL names kubectl");
        let namespace = format!("{test}-{}", free_port());
        let kube = Kube {
            kubeconfig,
            kubectl,
            namespace,
        };
        kube.ok(&["create", "namespace", &kube.namespace]);
        kube
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        self.run_in(&self.namespace, args, stdin)
    }

    fn run_in(&self, namespace: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["-n", namespace])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn apply(&self, yaml: &str) {
        self.apply_in(&self.namespace, yaml);
    }

    fn apply_in(&self, namespace: &str, yaml: &str) {
        let out = self.run_in(namespace, &["apply", "-f", "-"], Some(yaml));
        assert!(
            out.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// `(stable, canary)` weights of the first rule of HTTPRoute `name` that routes to
    /// `APP-stable`.
    fn weights(&self, name: &str, app: &str) -> (u64, u64) {
        let route = self.json(&["get", "httproute", name]);
        let stable = format!("{app}-stable");
        let canary = format!("{app}-canary");
        for rule in route["spec"]["rules"].as_array().unwrap() {
            let refs = rule["backendRefs"].as_array().unwrap();
            let weight = |n: &str| {
                refs.iter()
                    .find(|r| r["name"] == n)
                    .map(|r| r["weight"].as_u64().unwrap_or(1))
            };
            if let Some(s) = weight(&stable) {
                return (s, weight(&canary).unwrap_or(0));
            }
        }
        panic!("no rule routes to {stable}: {route:#}");
    }

    /// The size of the ReplicaSet of `app`'s release `version`, if there is one.
    fn replicas(&self, app: &str, version: &str) -> Option<i64> {
        let selector = format!("switchyard.dev/app={app},switchyard.dev/release={version}");
        let rs = self.json(&["get", "rs", "-l", &selector]);
        rs["items"]
            .as_array()
            .unwrap()
            .first()
            .map(|r| r["spec"]["replicas"].as_i64().unwrap())
    }

    /// The sizes of `app`'s ReplicaSets of `versions` (0 where there is none), from one list
    /// call: one moment's sizes, where reading them one by one could pair sizes from before and
    /// after a scaling step.
    fn sizes<const N: usize>(&self, app: &str, versions: [&str; N]) -> [i64; N] {
        let all = self.json(&["get", "rs", "-l", &format!("switchyard.dev/app={app}")]);
        let items = all["items"].as_array().unwrap();
        versions.map(|version| {
            items
                .iter()
                .find(|r| r["metadata"]["labels"]["switchyard.dev/release"] == version)
                .map_or(0, |r| r["spec"]["replicas"].as_i64().unwrap())
        })
    }

    /// The release a Service selects.
    fn selects(&self, service: &str) -> String {
        let s = self.json(&["get", "service", service]);
        s["spec"]["selector"]["switchyard.dev/release"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls until `done` holds for what `read` returns.
    fn wait_for<T: std::fmt::Debug>(
        &self,
        what: &str,
        read: impl Fn() -> T,
        done: impl Fn(&T) -> bool,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let value = read();
            if done(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {value:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Kube {
    fn drop(&mut self) {
        let _ = self.run(
            &["delete", "namespace", &self.namespace, "--wait=false"],
            None,
        );
    }
}

fn httproute(name: &str, app: &str) -> String {
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}}}
spec:
  parentRefs: [{{name: gateway}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /}}}}]
    backendRefs: [{{name: {app}-stable, port: 80}}]
"#
    )
}

fn kube_manifest(app: &str, namespace: &str, routing: &str, strategy: &str) -> String {
    format!(
        r#"apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {{name: {app}}}
spec:
  runtime:
    kubernetes:
      namespace: {namespace}
      replicas: 2
      port: 8080
      startTimeout: 60s
      scaleDownDelay: 1s
{routing}
      template:
        metadata: {{labels: {{team: shop}}}}
        spec:
          containers:
          - name: web
            image: registry.example/shop:{{version}}
            ports: [{{containerPort: 8080}}]
            readinessProbe: {{httpGet: {{path: /health, port: 8080}}, periodSeconds: 2}}
  strategy:
{strategy}
"#
    )
}

const GATEWAY: &str = "      trafficRouting: {gatewayAPI: {httpRoute: shop}}";

/// Writes `text` to `name` in `dir` and applies it.
fn apply_file(d: &Daemon, dir: &std::path::Path, name: &str, text: &str) {
    let file = write(dir, name, text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
}

/// A namespace with HTTPRoute `shop`, a daemon with app `shop` routed by it (`steps` as its
/// strategy, `extra` documents beside it) and v1 deployed. Dropped in reverse: the daemon
/// first, the namespace last.
fn shop_on_httproute(test: &str, steps: &str, extra: &str) -> (Kube, tempfile::TempDir, Daemon) {
    let kube = Kube::new(test);
    kube.apply(&httproute("shop", "shop"));
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(&kube, dir.path());
    let text = kube_manifest("shop", &kube.namespace, GATEWAY, steps) + extra;
    apply_file(&d, dir.path(), "shop.yaml", &text);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    (kube, dir, d)
}

fn daemon(kube: &Kube, dir: &std::path::Path) -> Daemon {
    Daemon::start_with(dir, free_port(), &["--kubeconfig", &kube.kubeconfig])
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_a_canary_moves_the_httproute_weights_step_by_step_and_abort_restores_them() {
    let steps =
        "    canary:\n      steps: [{setWeight: 20}, {pause: {}}, {setWeight: 50}, {pause: {}}]";
    let (kube, _dir, d) = shop_on_httproute("canary", steps, "");

    // The first release: its ReplicaSet, Ready pods, the stable Service, 100/0.
    let rs = kube.json(&["get", "rs", "-l", "switchyard.dev/app=shop"]);
    let items = rs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{rs:#}");
    assert_eq!(items[0]["spec"]["replicas"], 2);
    assert_eq!(
        items[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/shop:v1"
    );
    assert_eq!(
        items[0]["metadata"]["labels"]["switchyard.dev/release"],
        "v1"
    );
    let pods = kube.json(&[
        "get",
        "pods",
        "-l",
        "switchyard.dev/app=shop,switchyard.dev/release=v1",
    ]);
    assert_eq!(pods["items"].as_array().unwrap().len(), 2, "{pods:#}");
    assert_eq!(kube.selects("shop-stable"), "v1");
    assert_eq!(kube.weights("shop", "shop"), (100, 0));

    // A canary: each step's weight is on the route before the rollout waits on it.
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the first pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 20
    });
    assert_eq!(kube.selects("shop-canary"), "v2");
    assert_eq!(kube.selects("shop-stable"), "v1");
    assert_eq!(kube.weights("shop", "shop"), (80, 20));
    let status = d.ok(&["rollout", "status", "shop"]);
    let in_force = format!(
        "routes: HTTPRoute shop in namespace {}: in force",
        kube.namespace
    );
    assert!(status.contains(&in_force), "{status}");
    d.ok(&["promote", "shop"]);
    d.wait_rollout("shop", "the second pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 50
    });
    assert_eq!(kube.weights("shop", "shop"), (50, 50));

    // Abort: everything back on the stable release, and the canary's ReplicaSet goes.
    d.ok(&["abort", "shop", "--reason", "test"]);
    d.wait_rollout("shop", "the abort", |r| r["phase"] == "Aborted");
    assert_eq!(kube.weights("shop", "shop"), (100, 0));
    kube.wait_for(
        "the canary's ReplicaSet to be deleted",
        || {
            kube.json(&[
                "get",
                "rs",
                "-l",
                "switchyard.dev/app=shop,switchyard.dev/release=v2",
            ])["items"]
                .as_array()
                .map_or(0, Vec::len)
        },
        |n| *n == 0,
    );

    // A canary promoted to the end: the stable Service moves to it, 100/0 again, one
    // ReplicaSet per release and never a second one.
    d.ok(&["deploy", "shop", "--version", "v3"]);
    d.wait_rollout("shop", "the first pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 20
    });
    assert_eq!(kube.selects("shop-canary"), "v3");
    d.ok(&["promote", "shop", "--full"]);
    d.wait_rollout("shop", "the promotion", |r| r["phase"] == "Succeeded");
    kube.wait_for(
        "the stable Service to select v3",
        || kube.selects("shop-stable"),
        |s| s == "v3",
    );
    assert_eq!(kube.weights("shop", "shop"), (100, 0));
    kube.wait_for(
        "v1's ReplicaSet to be deleted",
        || kube.ok(&["get", "rs", "-l", "switchyard.dev/app=shop", "-o", "name"]),
        |names| names.lines().count() == 1,
    );
}

/// The rule Switchyard adds for a header route, if the route has it.
fn header_rule(route: &Value) -> Option<Value> {
    route["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "switchyard-header-route")
        .cloned()
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_a_header_route_and_a_mirror_are_added_to_the_httproute_and_removed() {
    let steps = "    canary:\n      steps:\n      - setHeaderRoute: {match: [{header: x-canary, exact: \"yes\"}]}\n      - setMirror: {percent: 30}\n      - pause: {}\n      - setWeight: 10\n      - pause: {}";
    let (kube, _dir, d) = shop_on_httproute("header", steps, "");
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the first pause", |r| r["phase"] == "Paused");
    let route = kube.json(&["get", "httproute", "shop"]);
    let rule = header_rule(&route).unwrap_or_else(|| panic!("no header rule: {route:#}"));
    assert_eq!(
        rule["matches"][0]["headers"],
        serde_json::json!([{"type": "Exact", "name": "x-canary", "value": "yes"}])
    );
    assert_eq!(
        rule["backendRefs"],
        serde_json::json!([{"group": "", "kind": "Service", "name": "shop-canary", "port": 80, "weight": 1}])
    );
    assert_eq!(kube.selects("shop-canary"), "v2");
    let main = route["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] != "switchyard-header-route")
        .unwrap();
    assert_eq!(
        main["filters"],
        serde_json::json!([{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"group": "", "kind": "Service", "name": "shop-canary", "port": 80}, "percent": 30}}])
    );
    assert_eq!(kube.weights("shop", "shop"), (100, 0));

    // Aborting takes the header rule and the mirror away; the user's rule stays as written.
    d.ok(&["abort", "shop", "--reason", "test"]);
    d.wait_rollout("shop", "the abort", |r| r["phase"] == "Aborted");
    let route = kube.wait_for(
        "the header rule to go",
        || kube.json(&["get", "httproute", "shop"]),
        |r| header_rule(r).is_none(),
    );
    let rules = route["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{route:#}");
    assert!(rules[0].get("filters").is_none(), "{route:#}");
    assert_eq!(
        rules[0]["matches"],
        serde_json::json!([{"path": {"type": "PathPrefix", "value": "/"}}])
    );
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_blue_green_points_the_preview_service_then_switches_the_active_one() {
    let kube = Kube::new("bluegreen");
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(&kube, dir.path());
    // No router: blue-green is the Services' selectors alone.
    apply_file(
        &d,
        dir.path(),
        "shop.yaml",
        &kube_manifest(
            "shop",
            &kube.namespace,
            "",
            "    blueGreen: {scaleDownDelay: 1s}",
        ),
    );
    d.ok(&["deploy", "shop", "--version", "v1"]);
    assert_eq!(kube.selects("shop-stable"), "v1");
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the wait for promotion", |r| {
        r["phase"] == "AwaitingApproval" || r["phase"] == "Paused"
    });
    kube.wait_for(
        "the preview Service to select v2",
        || kube.selects("shop-preview"),
        |s| s == "v2",
    );
    assert_eq!(kube.selects("shop-stable"), "v1");
    d.ok(&["promote", "shop", "--full"]);
    d.wait_rollout("shop", "the switch", |r| r["phase"] == "Succeeded");
    kube.wait_for(
        "the active Service to select v2",
        || kube.selects("shop-stable"),
        |s| s == "v2",
    );
    kube.wait_for(
        "v1's ReplicaSet to go",
        || kube.ok(&["get", "rs", "-l", "switchyard.dev/app=shop", "-o", "name"]),
        |names| names.lines().count() == 1,
    );
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_a_rolling_update_sizes_the_replicasets_batch_by_batch() {
    let kube = Kube::new("rolling");
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(&kube, dir.path());
    let text = kube_manifest(
        "shop",
        &kube.namespace,
        "",
        "    rolling: {maxSurge: 1, maxUnavailable: 0}",
    )
    .replace("replicas: 2", "replicas: 3");
    apply_file(&d, dir.path(), "shop.yaml", &text);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    // Every size the two ReplicaSets go through, read from the API server while it runs.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let [old, new] = kube.sizes("shop", ["v1", "v2"]);
        let pair = (old, new);
        if seen.last() != Some(&pair) {
            seen.push(pair);
        }
        if d.rollout("shop")["phase"] == "Succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rolling update did not finish: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Never more than one pod over the size (maxSurge 1), whatever the samples caught.
    for (old, new) in &seen {
        assert!(old + new <= 4, "{seen:?}");
    }
    assert_eq!(seen.last().map(|p| p.1), Some(3), "{seen:?}");
    // Batch by batch: the sizes the controller scaled to, from its events (sampling the API
    // server may miss a batch that a loaded machine runs through quickly).
    let history: serde_json::Value =
        serde_json::from_str(&d.ok(&["history", "shop", "-o", "json"])).unwrap();
    let batches: Vec<(u64, u64)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let t = &e["data"]["target"];
            Some((t["stable"].as_u64()?, t["canary"].as_u64()?))
        })
        .collect();
    assert!(batches.len() >= 3, "{batches:?}");
    for (old, new) in &batches {
        assert!(old + new <= 4 && old + new >= 3, "{batches:?}");
    }
    assert!(
        batches.iter().any(|(old, new)| *old > 0 && *new > 0),
        "{batches:?}"
    );
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_a_killed_daemon_leaves_the_weights_and_resumes_without_a_second_replicaset() {
    let kube = Kube::new("crash");
    kube.apply(&httproute("shop", "shop"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut d = Daemon::start_with(dir.path(), port, &["--kubeconfig", &kube.kubeconfig]);
    let steps =
        "    canary:\n      steps: [{setWeight: 30}, {pause: {}}, {setWeight: 60}, {pause: {}}]";
    apply_file(
        &d,
        dir.path(),
        "shop.yaml",
        &kube_manifest("shop", &kube.namespace, GATEWAY, steps),
    );
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the first pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 30
    });
    let before = kube.ok(&["get", "rs", "-l", "switchyard.dev/app=shop", "-o", "name"]);

    d.kill();
    // The cluster keeps routing without the daemon.
    assert_eq!(kube.weights("shop", "shop"), (70, 30));
    let d = Daemon::start_with(dir.path(), port, &["--kubeconfig", &kube.kubeconfig]);
    assert_eq!(d.rollout("shop")["weight"], 30);
    d.ok(&["promote", "shop"]);
    d.wait_rollout("shop", "the second pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 60
    });
    assert_eq!(kube.weights("shop", "shop"), (40, 60));
    let after = kube.ok(&["get", "rs", "-l", "switchyard.dev/app=shop", "-o", "name"]);
    assert_eq!(before, after, "the restart made other ReplicaSets");
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_weights_edited_by_hand_pause_the_rollout_and_say_what_changed() {
    let steps = "    canary:\n      steps: [{setWeight: 20}, {bake: {duration: 1h}}, {setWeight: 60}, {pause: {}}]";
    let (kube, _dir, d) = shop_on_httproute("drift", steps, "");
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the bake", |r| r["phase"] == "Baking");
    assert_eq!(kube.weights("shop", "shop"), (80, 20));

    // Someone sets 50/50 with kubectl.
    let patch = r#"[{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 50},
                    {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 50}]"#;
    kube.ok(&["patch", "httproute", "shop", "--type", "json", "-p", patch]);
    d.wait_rollout("shop", "the pause for the drift", |r| {
        r["phase"] == "Paused"
    });
    // The hand-set weights stay until an operator decides, and the history says what changed.
    assert_eq!(kube.weights("shop", "shop"), (50, 50));
    let history = d.ok(&["history", "shop"]);
    assert!(
        history.contains(
            "the weights of shop-stable/shop-canary are 50/50 where Switchyard wrote 80/20"
        ),
        "{history}"
    );
    // Resuming takes the rollout's routes back.
    d.ok(&["resume", "shop"]);
    kube.wait_for(
        "the weights to be the rollout's again",
        || kube.weights("shop", "shop"),
        |w| *w == (80, 20),
    );
    d.wait_rollout("shop", "the bake again", |r| r["phase"] == "Baking");
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_an_istio_virtualservice_gets_the_weights_header_route_and_mirror() {
    let kube = Kube::new("istio");
    kube.apply(
        r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: [shop.example]
  http:
  - name: primary
    match: [{uri: {prefix: /}}]
    route: [{destination: {host: shop-stable, port: {number: 80}}}]
  - name: untouched
    route: [{destination: {host: other}}]
"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(&kube, dir.path());
    let steps = "    canary:\n      steps:\n      - setWeight: 25\n      - setHeaderRoute: {match: [{header: x-canary, exact: \"yes\"}]}\n      - setMirror: {percent: 10}\n      - pause: {}";
    let routing = "      trafficRouting: {istio: {virtualService: shop, routes: [primary]}}";
    apply_file(
        &d,
        dir.path(),
        "shop.yaml",
        &kube_manifest("shop", &kube.namespace, routing, steps),
    );
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the pause", |r| r["phase"] == "Paused");
    let vs = kube.json(&["get", "virtualservice", "shop"]);
    let http = vs["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 3, "{vs:#}");
    assert_eq!(http[0]["name"], "switchyard-header-route");
    assert_eq!(http[0]["match"][0]["headers"]["x-canary"]["exact"], "yes");
    assert_eq!(http[0]["route"][0]["destination"]["host"], "shop-canary");
    assert_eq!(http[1]["name"], "primary");
    assert_eq!(
        http[1]["route"],
        serde_json::json!([
            {"destination": {"host": "shop-stable", "port": {"number": 80}}, "weight": 75},
            {"destination": {"host": "shop-canary", "port": {"number": 80}}, "weight": 25}])
    );
    assert_eq!(http[1]["mirror"]["host"], "shop-canary");
    assert_eq!(http[1]["mirrorPercentage"]["value"], 10.0);
    assert_eq!(
        http[2]["route"],
        serde_json::json!([{"destination": {"host": "other"}}])
    );

    d.ok(&["abort", "shop", "--reason", "test"]);
    d.wait_rollout("shop", "the abort", |r| r["phase"] == "Aborted");
    let vs = kube.wait_for(
        "the header route and mirror to go",
        || kube.json(&["get", "virtualservice", "shop"]),
        |vs| vs["spec"]["http"].as_array().unwrap().len() == 2,
    );
    let primary = &vs["spec"]["http"][0];
    assert_eq!(primary["route"][0]["weight"], 100);
    assert_eq!(primary["route"][1]["weight"], 0);
    assert!(primary.get("mirror").is_none(), "{vs:#}");
}

/// A kubeconfig for the test cluster that authenticates with `token`, written into `dir`.
fn kubeconfig_with_token(kube: &Kube, dir: &std::path::Path, token: &str) -> String {
    let admin = std::fs::read_to_string(&kube.kubeconfig).unwrap();
    let field = |name: &str| {
        admin
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: switchyard\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context: {{cluster: test, user: switchyard}}\ncurrent-context: test\n",
        field("server:"),
        field("certificate-authority:")
    );
    write(dir, "switchyard.kubeconfig", &text)
        .display()
        .to_string()
}

fn deploy_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/kubernetes")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_the_shipped_rbac_is_enough_and_a_forbidden_call_is_named() {
    let kube = Kube::new("rbac");
    // The shipped manifests, the RoleBinding in the app's namespace.
    for file in [
        "namespace.yaml",
        "serviceaccount.yaml",
        "clusterrole.yaml",
        "deployment.yaml",
    ] {
        kube.apply_in("switchyard", &deploy_file(file));
    }
    kube.apply(
        &deploy_file("rolebinding.yaml")
            .replace("namespace: shop", &format!("namespace: {}", kube.namespace)),
    );
    kube.apply(&httproute("shop", "shop"));
    let token = kube.ok(&[
        "create",
        "token",
        "switchyard",
        "-n",
        "switchyard",
        "--duration",
        "1h",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig_with_token(&kube, dir.path(), token.trim());
    let d = Daemon::start_with(dir.path(), free_port(), &["--kubeconfig", &config]);

    // A whole canary with exactly those permissions.
    let steps = "    canary:\n      steps: [{setWeight: 20}, {pause: {}}]";
    apply_file(
        &d,
        dir.path(),
        "shop.yaml",
        &kube_manifest("shop", &kube.namespace, GATEWAY, steps),
    );
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 20
    });
    assert_eq!(kube.weights("shop", "shop"), (80, 20));
    d.ok(&["promote", "shop", "--full"]);
    d.wait_rollout("shop", "the promotion", |r| r["phase"] == "Succeeded");
    kube.wait_for(
        "the stable Service to select v2",
        || kube.selects("shop-stable"),
        |s| s == "v2",
    );

    // A namespace nobody bound the role in: the error names verb, resource and namespace.
    let other = format!("{}-unbound", kube.namespace);
    kube.ok(&["create", "namespace", &other]);
    let text = kube_manifest(
        "cart",
        &other,
        "",
        "    canary:\n      steps: [{setWeight: 20}]",
    );
    apply_file(&d, dir.path(), "cart.yaml", &text);
    let err = d.fails(&["deploy", "cart", "--version", "v1"]);
    assert!(err.contains(&format!("in namespace {other}")), "{err}");
    assert!(err.contains("403"), "{err}");
    assert!(
        err.contains(r#"cannot get resource "replicasets" in API group "apps" in the namespace"#),
        "{err}"
    );
    kube.ok(&["delete", "namespace", &other, "--wait=false"]);
}

/// A metrics page whose counters grow every 100 ms: canary `v2` fails 10 % of its requests,
/// stable `v1` none. Serves until the test ends.
fn growing_exporter() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Instant::now();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let ticks = started.elapsed().as_millis() as u64 / 100;
            let (canary, stable) = (ticks * 30, ticks * 270);
            let body = format!(
                "# TYPE http_requests_total counter\n\
                 http_requests_total{{version=\"v2\",code=\"200\"}} {}\n\
                 http_requests_total{{version=\"v2\",code=\"500\"}} {}\n\
                 http_requests_total{{version=\"v1\",code=\"200\"}} {stable}\n",
                canary - canary / 10,
                canary / 10,
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// `/usr/bin/prometheus` scraping `target` every second; killed when dropped.
struct Prometheus {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    address: String,
}

impl Prometheus {
    fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: shop\n    static_configs: [{{targets: ['{target}']}}]\n"),
        )
        .unwrap();
        let listen = format!("127.0.0.1:{}", free_port());
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("/usr/bin/prometheus (scripts/test installs it)");
        Prometheus {
            child,
            _dir: dir,
            address: format!("http://{listen}"),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_the_judge_reads_prometheus_and_rolls_a_bad_canary_back() {
    let prometheus = Prometheus::start(growing_exporter());
    let steps = "    canary:\n      steps: [{setWeight: 10}, {analysis: {templates: [errors]}}, {setWeight: 50}, {pause: {}}]";
    let template = format!(
        r#"---
apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: errors}}
spec:
  metrics:
    - name: error-rate
      interval: 2s
      judge:
        compare: error_rate
        maxDuration: 5m
        source:
          prometheus:
            address: {}
            requests: 'sum(http_requests_total{{version="{{{{version}}}}"}})'
            errors: 'sum(http_requests_total{{version="{{{{version}}}}",code=~"5.."}})'
"#,
        prometheus.address
    );
    let (kube, _dir, d) = shop_on_httproute("judge", steps, &template);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    let r = d.wait_rollout("shop", "the judge's verdict", |r| {
        r["phase"] == "RolledBack" || r["phase"] == "Succeeded" || r["phase"] == "Paused"
    });
    assert_eq!(r["phase"], "RolledBack", "{r:#}");
    kube.wait_for(
        "the route back on stable",
        || kube.weights("shop", "shop"),
        |w| *w == (100, 0),
    );
    let analysis = d.ok(&["analysis", "shop"]);
    assert!(analysis.contains("error-rate"), "{analysis}");
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_a_canary_without_a_router_is_weighted_by_replica_counts() {
    let kube = Kube::new("replicas");
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(&kube, dir.path());
    let steps = "    canary:\n      steps: [{setWeight: 25}, {pause: {}}]";
    let text =
        kube_manifest("shop", &kube.namespace, "", steps).replace("replicas: 2", "replicas: 4");
    apply_file(&d, dir.path(), "shop.yaml", &text);
    // -1: no ReplicaSet (any more).
    let size = |v: &str| kube.replicas("shop", v).unwrap_or(-1);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    kube.wait_for("v1 at full size", || size("v1"), |n| *n == 4);
    // The stable Service selects every pod of the app: the sizes are the split.
    let selector = kube.json(&["get", "service", "shop-stable"])["spec"]["selector"].clone();
    assert_eq!(selector, serde_json::json!({"switchyard.dev/app": "shop"}));

    d.ok(&["deploy", "shop", "--version", "v2"]);
    d.wait_rollout("shop", "the pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 25
    });
    kube.wait_for(
        "1 canary pod, 3 stable",
        || (size("v1"), size("v2")),
        |s| *s == (3, 1),
    );
    let status = d.ok(&["rollout", "status", "shop"]);
    assert!(
        status.contains("weights approximated by replica counts"),
        "{status}"
    );
    assert!(status.contains("v1 3, v2 1"), "{status}");

    d.ok(&["promote", "shop", "--full"]);
    d.wait_rollout("shop", "the promotion", |r| r["phase"] == "Succeeded");
    kube.wait_for(
        "v2 at full size, v1 gone",
        || (size("v1"), size("v2")),
        |s| s.1 == 4 && s.0 <= 0,
    );
}

#[test]
#[ignore = "needs the test cluster: scripts/test starts it"]
fn with_kubernetes_a_judge_without_a_source_is_refused_rather_than_left_waiting() {
    let steps = "    canary:\n      steps: [{setWeight: 10}, {analysis: {templates: [errors]}}]";
    let template = "---\napiVersion: switchyard.dev/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: errors}\nspec:\n  metrics:\n    - name: error-rate\n      interval: 2s\n      judge: {compare: error_rate}\n";
    let (kube, _dir, d) = shop_on_httproute("nosource", steps, template);
    let err = d.fails(&["deploy", "shop", "--version", "v2"]);
    assert!(
        err.contains("metric `error-rate` of analysis template `errors`"),
        "{err}"
    );
    assert!(err.contains("give its judge a `source`"), "{err}");
    // Nothing moved: no canary ReplicaSet, the route all on stable.
    assert_eq!(kube.weights("shop", "shop"), (100, 0));
    let sets = kube.ok(&["get", "rs", "-l", "switchyard.dev/app=shop", "-o", "name"]);
    assert_eq!(sets.lines().count(), 1, "{sets}");
}
