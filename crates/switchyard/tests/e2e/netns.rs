//! Several proxies, each on a host of its own (a network namespace the test makes, on a bridge),
//! serving the same listen address from one control plane (`serve --no-proxy`): every proxy
//! applies each weight, the time until the last one has it is measured and printed, and a
//! stopped proxy holds the acknowledgement back until it runs again.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};

use crate::rolling::wait_for;
use crate::support::*;

const PROXIES: usize = 3;

/// Runs `ip ARGS`; panics with its stderr when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bridge in the test's namespace and `PROXIES` namespaces on it, removed on drop.
struct Hosts {
    bridge: String,
    namespaces: Vec<String>,
    /// The test's address on the bridge: what the namespaces reach it at.
    gateway: Ipv4Addr,
}

impl Hosts {
    fn make() -> Hosts {
        // Unique per process and per call: two tests of one run make hosts of their own.
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = std::process::id() % 100_000 * 10 + made % 10;
        let subnet = u8::try_from((id / 10 + made * 37) % 250).unwrap() + 1;
        let gateway = Ipv4Addr::new(10, 201, subnet, 1);
        let bridge = format!("sy{id}br");
        ip(&["link", "add", &bridge, "type", "bridge"]);
        let mut hosts = Hosts {
            bridge: bridge.clone(),
            namespaces: Vec::new(),
            gateway,
        };
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        for i in 1..=PROXIES {
            let ns = format!("sy{id}-{i}");
            ip(&["netns", "add", &ns]);
            hosts.namespaces.push(ns.clone());
            let (outside, inside) = (format!("sy{id}v{i}"), format!("sy{id}p{i}"));
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ]);
            ip(&["link", "set", &inside, "netns", &ns]);
            ip(&["link", "set", &outside, "master", &bridge]);
            ip(&["link", "set", &outside, "up"]);
            let address = format!("10.201.{subnet}.{}/24", 10 + i);
            ip(&["-n", &ns, "addr", "add", &address, "dev", &inside]);
            ip(&["-n", &ns, "link", "set", &inside, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        hosts
    }

    /// `curl` of `url` inside namespace `ns`: the body, or `None`.
    fn fetch(ns: &str, url: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "curl", "-sf", "--max-time", "5", url])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// A proxy process inside a namespace, stopped on drop.
struct NsProxy(Child);

impl NsProxy {
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for NsProxy {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.signal("-TERM");
        let _ = self.0.wait();
    }
}

fn routes(d: &Daemon) -> (u64, u64, u64) {
    let r = d.rollout("web");
    (
        r["weight"].as_u64().unwrap(),
        r["routes"]["applied"].as_u64().unwrap_or(0),
        r["routes"]["proxies"].as_u64().unwrap_or(0),
    )
}

/// A value of the control plane's `/metrics`.
fn metric(d: &Daemon, series: &str) -> Option<f64> {
    let api: std::net::SocketAddr = d.api.trim_start_matches("http://").parse().unwrap();
    let (_, text) = get(api, "/metrics")?;
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn proxies_on_several_hosts_apply_every_weight_and_a_stopped_one_holds_the_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let d = Daemon::start_listening(
        dir.path(),
        &format!("0.0.0.0:{api_port}"),
        api_port,
        &["--no-proxy"],
    );
    proxies_on_several_hosts(&d, api_port, dir.path());
}

/// The same with two replicas on PostgreSQL: the proxies follow the follower, which forwards
/// their table requests and reports to the leader; every command goes through the follower too.
/// The propagation time printed is the leader's, through the forwarding.
#[test]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
fn with_postgres_proxies_following_a_follower_apply_every_weight() {
    let url = fresh_postgres_database();
    let (leader_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader_port, api_port) = (free_port(), free_port());
    let replica = |port: u16| {
        vec![
            "--no-proxy".to_owned(),
            "--database-url".to_owned(),
            url.clone(),
            "--lease-ttl".to_owned(),
            "2s".to_owned(),
            "--advertise-url".to_owned(),
            format!("http://127.0.0.1:{port}"),
        ]
    };
    let args = replica(leader_port);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _leader = Daemon::start_listening(
        leader_dir.path(),
        &format!("0.0.0.0:{leader_port}"),
        leader_port,
        &args,
    );
    share_admin_token(leader_dir.path(), dir.path());
    let args = replica(api_port);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let follower =
        Daemon::start_listening(dir.path(), &format!("0.0.0.0:{api_port}"), api_port, &args);
    proxies_on_several_hosts(&follower, api_port, dir.path());
}

/// `PROXIES` proxies in namespaces following `d` (at `api_port` on every address).
fn proxies_on_several_hosts(d: &Daemon, api_port: u16, data_dir: &std::path::Path) {
    let hosts = Hosts::make();
    let dir = data_dir;
    let control = format!("http://{}:{api_port}", hosts.gateway);

    let mut proxies = Vec::new();
    for (i, ns) in hosts.namespaces.iter().enumerate() {
        let id = format!("edge-{i}");
        let created: serde_json::Value = serde_json::from_str(&d.ok(&[
            "token", "create", "--name", &id, "--role", "proxy", "-o", "json",
        ]))
        .unwrap();
        let token = dir.join(format!("{id}.token"));
        std::fs::write(&token, created["token"].as_str().unwrap()).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                BIN,
                "proxy",
                "--control",
                &control,
                "--id",
                &id,
            ])
            .arg("--token-file")
            .arg(&token)
            .arg("--state-dir")
            .arg(dir.join(&id))
            .env("SWITCHYARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        proxies.push(NsProxy(child));
    }
    wait_for("every proxy to report", || {
        let list: serde_json::Value =
            serde_json::from_str(&d.ok(&["proxies", "-o", "json"])).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .filter(|p| p["live"] == true)
            .count()
            == PROXIES
    });

    // Two releases on the test's host, which every namespace reaches through the bridge.
    let mut backends = Vec::new();
    let mut addresses = Vec::new();
    for version in ["v1", "v2"] {
        let port = free_port();
        backends.push(KillOnDrop(
            Command::new(BIN)
                .args(["demo-app", "--host", &hosts.gateway.to_string()])
                .args(["--port", &port.to_string(), "--version", version])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        addresses.push(format!("{}:{port}", hosts.gateway));
    }
    let app_port = free_port();
    let changes = std::env::var("SWITCHYARD_PROPAGATION_CHANGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(9u32);
    let mut steps = String::new();
    for i in 1..=changes {
        // Below 95, the weight the promotion below sets: that one must be a change.
        let weight = 1 + (i * 90 / (changes + 1));
        steps.push_str(&format!(
            "        - setWeight: {weight}\n        - pause: {{duration: 200ms}}\n"
        ));
    }
    steps.push_str("        - pause: {}\n        - setWeight: 95\n        - pause: {}\n");
    let manifest = format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: App\nmetadata: {{name: web}}\nspec:\n  \
         listen: 0.0.0.0:{app_port}\n  runtime: {{static: {{releases: {{v1: ['{}'], v2: ['{}']}}}}}}\n  \
         healthCheck: {{path: /health, interval: 1s}}\n  strategy:\n    canary:\n      steps:\n{steps}",
        addresses[0], addresses[1]
    );
    let file = write(dir, "web.yaml", &manifest);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "web", "--version", "v1"]);
    for ns in &hosts.namespaces {
        let url = format!("http://127.0.0.1:{app_port}/");
        wait_for("every host to serve v1", || {
            Hosts::fetch(ns, &url).is_some_and(|b| b.contains("hello from v1"))
        });
    }

    // Every weight of the canary reaches every proxy before the next step.
    d.ok(&["deploy", "web", "--version", "v2"]);
    d.wait_rollout("web", "the canary's weights", |r| {
        r["phase"] == "Paused" && r["paused_until"].is_null()
    });
    let (weight, applied, of) = routes(d);
    assert_eq!(
        (applied, of),
        (PROXIES as u64, PROXIES as u64),
        "at {weight}%"
    );
    let count = metric(d, "switchyard_dataplane_propagation_seconds_count").unwrap();
    let p50 = metric(
        d,
        "switchyard_dataplane_propagation_seconds{quantile=\"0.5\"}",
    )
    .unwrap();
    let p99 = metric(
        d,
        "switchyard_dataplane_propagation_seconds{quantile=\"0.99\"}",
    )
    .unwrap();
    eprintln!(
        "propagation to {PROXIES} proxies in network namespaces: {count} changes, p50 {:.1} ms, p99 {:.1} ms",
        p50 * 1000.0,
        p99 * 1000.0
    );
    assert!(count >= f64::from(changes), "{count}");

    // A stopped proxy is still live (it reported lately): the next weight waits for it.
    proxies[2].signal("-STOP");
    let promote = {
        let (server, token) = (d.api.clone(), d.token.clone());
        std::thread::spawn(move || {
            Command::new(BIN)
                .args(["promote", "web", "--force"])
                .env("SWITCHYARD_SERVER", server)
                .env("SWITCHYARD_TOKEN", token)
                .env("SWITCHYARD_CONFIG", "/nonexistent")
                .output()
                .unwrap()
        })
    };
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = routes(d);
        if now == (95, PROXIES as u64 - 1, PROXIES as u64) {
            break;
        }
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new weight, applied by two proxies of three: seen {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    proxies[2].signal("-CONT");
    wait_for("the third proxy to apply it", || {
        routes(d) == (95, PROXIES as u64, PROXIES as u64)
    });
    let out = promote.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(proxies);
    drop(hosts);
}
