//! Flagger-style webhook gates against a real HTTP endpoint.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::operations::Traffic;
use crate::support::*;

/// A webhook endpoint: `/confirm` and `/rollback` answer the status set in `confirm`/`rollback`;
/// `/post` counts its calls.
struct Hooks {
    addr: SocketAddr,
    confirm: Arc<AtomicU16>,
    rollback: Arc<AtomicU16>,
    posts: Arc<AtomicUsize>,
}

impl Hooks {
    fn start() -> Hooks {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (confirm, rollback, posts) = (
            Arc::new(AtomicU16::new(503)),
            Arc::new(AtomicU16::new(500)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (c, r, p) = (
            Arc::clone(&confirm),
            Arc::clone(&rollback),
            Arc::clone(&posts),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 8192];
                let n = stream.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let status = if head.starts_with("POST /confirm") {
                    c.load(Ordering::SeqCst)
                } else if head.starts_with("POST /rollback") {
                    r.load(Ordering::SeqCst)
                } else {
                    p.fetch_add(1, Ordering::SeqCst);
                    200
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Hooks {
            addr,
            confirm,
            rollback,
            posts,
        }
    }
}

#[test]
fn webhook_gates_hold_open_and_roll_back() {
    let hooks = Hooks::start();
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let h = hooks.addr;
    let webhooks = format!(
        "  webhooks:\n    - {{name: gate, type: confirm-rollout, url: 'http://{h}/confirm', timeout: 2s}}\n    - {{name: stop, type: rollback, url: 'http://{h}/rollback', timeout: 2s}}\n    - {{name: notify, type: post-rollout, url: 'http://{h}/post', timeout: 2s}}\n"
    );
    let text = manifest(
        "shop",
        port,
        "        - setWeight: 30\n        - pause: {}\n",
        "",
    )
    .replace("  healthCheck:", &format!("{webhooks}  healthCheck:"));
    let file = write(dir.path(), "shop.yaml", &text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    let _traffic = Traffic::start(app);
    d.ok(&["deploy", "shop", "--version", "v2"]);

    // The confirm-rollout gate is closed: no traffic moves.
    let r = d.wait_rollout("shop", "the closed gate", |r| {
        r["phase"] == "AwaitingWebhook" && r["reason"].is_string()
    });
    assert_eq!(r["weight"], 0);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("webhook `gate` answered 503"),
        "{r:#}"
    );
    hooks.confirm.store(200, Ordering::SeqCst);
    let r = d.wait_rollout("shop", "the open gate", |r| r["phase"] == "Paused");
    assert_eq!(r["weight"], 30);

    // The rollback hook says yes: rolled back, and the post-rollout hook hears of it.
    hooks.rollback.store(200, Ordering::SeqCst);
    let r = d.wait_rollout("shop", "the rollback", |r| r["phase"] == "RolledBack");
    assert_eq!(r["reason"], "a rollback webhook asked to roll back");
    let deadline = Instant::now() + Duration::from_secs(20);
    while hooks.posts.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the post-rollout hook was not called"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let history = d.ok(&["history", "shop"]);
    assert!(
        history.contains("post-rollout webhook notify answered 2xx"),
        "{history}"
    );
}
