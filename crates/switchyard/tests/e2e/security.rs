//! The security table through the real binary and sockets: tokens made with the CLI, a
//! deployer that tries to run a shell or reach the metadata address, a request that is not
//! authenticated, a foreign Host, a cross-site form. Each refused, and nothing changed: no file
//! written by a shell, no app applied, the rollout where it was.

use std::process::Command;

use crate::support::*;

#[test]
fn a_deployer_token_cannot_run_a_shell_or_reach_a_forbidden_address() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let token = d.ok(&["token", "create", "--name", "ci", "--role", "deployer"]);
    let deployer = token.trim();
    let as_deployer = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("SWITCHYARD_SERVER", &d.api)
            .env("SWITCHYARD_TOKEN", deployer)
            .env("SWITCHYARD_CONFIG", "/nonexistent")
            .output()
            .unwrap()
    };
    let pwned = dir.path().join("pwned");
    let port = free_port();
    let shop = manifest("shop", port, "        - setWeight: 50\n", "");
    let file = write(dir.path(), "shop.yaml", &shop);
    let out = as_deployer(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A manifest whose command is a shell.
    let evil = shop
        .replace("name: shop", "name: evil")
        .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:0")
        .replace(
            &format!("[\"{BIN}\", \"demo-app\""),
            &format!(
                "[\"/bin/bash\", \"-c\", \"touch {}\", \"demo-app\"",
                pwned.display()
            ),
        );
    let file = write(dir.path(), "evil.yaml", &evil);
    let out = as_deployer(&["apply", "-f", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("does not let `/bin/bash` run"),
        "{stderr}"
    );

    // A deploy whose command, or environment, would run one.
    let out = as_deployer(&[
        "deploy",
        "shop",
        "--version",
        "v1",
        "--command",
        "/bin/bash",
        "-c",
        &format!("touch {}", pwned.display()),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("may not run"),
        "{stderr}"
    );
    let out = as_deployer(&[
        "deploy",
        "shop",
        "--version",
        "v1",
        "--env",
        "LD_PRELOAD=/tmp/x.so",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("LD_PRELOAD"),
        "{stderr}"
    );

    // A webhook to the cloud's metadata address.
    let hook = shop.replace(
        "  healthCheck:",
        "  webhooks: [{name: steal, type: pre-rollout, url: 'http://169.254.169.254/latest'}]\n  healthCheck:",
    );
    let file = write(dir.path(), "hook.yaml", &hook);
    let out = as_deployer(&["apply", "-f", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("169.254.169.254"),
        "{stderr}"
    );

    // A deployer cannot make itself an admin.
    let out = as_deployer(&["token", "create", "--name", "me", "--role", "admin"]);
    assert!(!out.status.success());

    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!pwned.exists(), "a shell ran");
    let apps = d.ok(&["get", "apps", "-o", "json"]);
    assert!(!apps.contains("evil"), "{apps}");
    let tokens = d.ok(&["token", "list", "-o", "json"]);
    assert!(!tokens.contains("\"me\""), "{tokens}");

    // The audit log names who did what from where, and its chain verifies.
    let audit: serde_json::Value =
        serde_json::from_str(&d.ok(&["audit", "--actor", "ci", "-o", "json"])).unwrap();
    let applied = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "manifest_applied")
        .unwrap_or_else(|| panic!("{audit:#}"));
    assert_eq!(applied["actor"], "ci");
    assert_eq!(applied["source"], "127.0.0.1");
    let created: serde_json::Value =
        serde_json::from_str(&d.ok(&["audit", "--kind", "token_created", "-o", "json"])).unwrap();
    let names: Vec<&str> = created["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["name"].as_str().unwrap())
        .collect();
    // `local`: the proxy token the daemon made for its own proxy.
    assert_eq!(names, ["admin", "local", "ci"]);
    let verified = d.ok(&["audit", "--verify"]);
    assert!(verified.contains("chain verifies"), "{verified}");
}

#[test]
fn unauthenticated_rebinding_and_cross_site_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let api: std::net::SocketAddr = d.api.trim_start_matches("http://").parse().unwrap();
    let raw = |head: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(api).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let no_token = raw(&format!(
        "GET /api/v1/apps HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
    ));
    assert!(no_token.starts_with("HTTP/1.1 401"), "{no_token}");
    let rebound = raw(&format!(
        "GET /api/v1/apps HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        d.token
    ));
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    let form = raw(&format!(
        "POST /api/v1/apps/shop/emergency-stop HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\nConnection: close\r\n\r\nreason=no"
    ));
    assert!(form.starts_with("HTTP/1.1 415"), "{form}");
    let health = raw(&format!(
        "GET /health HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
    ));
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

#[test]
fn without_authentication_only_loopback_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--insecure-no-auth",
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("without authentication"),
        "{stderr}"
    );
}
