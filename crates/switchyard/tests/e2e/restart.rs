//! A daemon killed with SIGKILL resumes its rollouts where they stood, and its releases serve
//! throughout: their supervisors keep them for the next daemon, which adopts them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;

#[test]
fn sigkill_during_a_pause_then_restart_resumes_the_rollout() {
    let dir = tempfile::tempdir().unwrap();
    sigkill_during_a_pause_then_restart_resumes(dir.path(), &[]);
}

/// The same with the state in PostgreSQL: nothing but instance logs and lifelines is written to
/// the data directory, and the restarted daemon reads where the rollout stood from the database.
#[test]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
fn with_postgres_sigkill_during_a_pause_then_restart_resumes_the_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_postgres_database();
    sigkill_during_a_pause_then_restart_resumes(dir.path(), &["--database-url", &url]);
    assert!(
        !dir.path().join("switchyard.db").exists(),
        "the state is in PostgreSQL, not in the data directory"
    );
    let kinds = psql(
        &url,
        "SELECT kind || '=' || count(*) FROM events GROUP BY kind ORDER BY kind",
    );
    // Every transition once, across the kill: none lost, none applied twice.
    for expected in [
        "manifest_applied=1",
        "release_started=1",
        "rollout_started=1",
        "weight_changed=3",
        "paused=2",
    ] {
        assert!(
            kinds.lines().any(|l| l == expected),
            "{expected} in\n{kinds}"
        );
    }
}

fn sigkill_during_a_pause_then_restart_resumes(data_dir: &std::path::Path, extra: &[&str]) {
    let api_port = free_port();
    let app_port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    let mut d = Daemon::start_with(data_dir, api_port, extra);
    let steps = "        - setWeight: 30\n        - pause: {}\n        - setWeight: 60\n        - pause: {duration: 3s}\n";
    let file = write(
        data_dir,
        "shop.yaml",
        &manifest("shop", app_port, steps, ""),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "v1"]);
    d.ok(&["deploy", "shop", "--version", "v2"]);
    let before = d.wait_rollout("shop", "the indefinite pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 30
    });

    d.kill();
    // The proxy and the releases are processes of their own: the app answers without its
    // daemon.
    for _ in 0..20 {
        assert!(
            get(app, "/").is_some_and(|(status, _)| status == 200),
            "the app answers while its daemon is down"
        );
    }

    let d = Daemon::start_with(data_dir, api_port, extra);
    let after = d.rollout("shop");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["phase"], "Paused");
    assert_eq!(after["step"], before["step"]);
    assert_eq!(after["weight"], 30);
    // Both releases serve again behind the proxy.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        if let Some((200, text)) = get(app, "/") {
            seen.insert(if text.contains("hello from v2") {
                "v2"
            } else {
                "v1"
            });
        }
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen.len(),
        2,
        "traffic reaches both releases after the restart"
    );

    d.ok(&["promote", "shop"]);
    let done = d.wait_rollout("shop", "the timed pause and promotion", |r| {
        r["phase"] == "Succeeded"
    });
    assert_eq!(done["weight"], 100);
    let apps: serde_json::Value =
        serde_json::from_str(&d.ok(&["get", "apps", "-o", "json"])).unwrap();
    assert_eq!(apps[0]["stable"], "v2");
    assert!(get(app, "/").unwrap().1.contains("hello from v2"));
}

#[test]
fn sigkill_during_a_rolling_update_resumes_at_the_same_batch() {
    use crate::rolling::{pids_of, processes, rolling_manifest, wait_for};

    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let app_port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    let mut d = Daemon::start_on(dir.path(), api_port);
    // Long enough analyses that the kill lands in the first one.
    let text = rolling_manifest(app_port).replace("initialDelay: 1s", "initialDelay: 4s");
    let file = write(dir.path(), "shop.yaml", &text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "kill-a"]);
    d.ok(&["deploy", "shop", "--version", "kill-b"]);
    let before = d.wait_rollout("shop", "the first batch's analysis", |r| {
        r["phase"] == "Analyzing"
    });
    assert_eq!(before["step"], 1);

    let pids = (pids_of("kill-a"), pids_of("kill-b"));
    d.kill();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        (pids_of("kill-a"), pids_of("kill-b")),
        pids,
        "the instances outlive their daemon"
    );

    let d = Daemon::start_on(dir.path(), api_port);
    assert_eq!(
        (pids_of("kill-a"), pids_of("kill-b")),
        pids,
        "the restarted daemon adopted the same processes"
    );
    let after = d.rollout("shop");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["step"], 1, "{after:#}");
    assert_eq!(after["traffic"][0]["instances"], 2);
    assert_eq!(after["traffic"][1]["instances"], 1);
    assert_eq!(
        processes("kill-a"),
        2,
        "the old release at the batch's size"
    );
    assert_eq!(processes("kill-b"), 1);
    let answer = get(app, "/");
    assert!(
        answer.as_ref().is_some_and(|(status, _)| *status == 200),
        "{answer:?}"
    );

    let _traffic = crate::operations::Traffic::start(app);
    let done = d.wait_rollout("shop", "the rest of the batches", |r| {
        r["phase"] == "Succeeded"
    });
    assert_eq!(done["id"], before["id"]);
    wait_for("the old release to stop", || processes("kill-a") == 0);
    assert_eq!(processes("kill-b"), 3);
    let history = d.ok(&["history", "shop"]);
    assert_eq!(
        history
            .matches("batch to 1 instance(s) of kill-b and 2 of kill-a")
            .count(),
        1,
        "the batch is not run twice:\n{history}"
    );
}

#[test]
fn releases_left_without_a_daemon_stop_after_the_adoption_window() {
    use crate::rolling::{processes, wait_for};

    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let app_port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    let mut d = Daemon::start_with(dir.path(), api_port, &["--adopt-within", "1s"]);
    let file = write(
        dir.path(),
        "shop.yaml",
        &manifest("shop", app_port, "        - setWeight: 50\n", ""),
    );
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    d.ok(&["deploy", "shop", "--version", "orphan-a"]);
    assert_eq!(processes("orphan-a"), 1);

    d.kill();
    wait_for("the instance of the killed daemon to stop", || {
        processes("orphan-a") == 0
    });
    // The proxy outlives both and says so.
    let answer = get(app, "/");
    assert!(
        answer.as_ref().is_some_and(|(status, _)| *status >= 500),
        "{answer:?}"
    );

    // The next start finds nothing to adopt and starts the release anew.
    let d = Daemon::start_on(dir.path(), api_port);
    assert_eq!(processes("orphan-a"), 1);
    wait_for("the new instance to serve", || {
        get(app, "/").is_some_and(|(status, _)| status == 200)
    });
    drop(d);
}

/// Three replicas on one PostgreSQL database: the first leads, the others forward the API to
/// it; SIGKILL of the leader mid-rollout hands the rollout to another at the same step, and a
/// leader paused (SIGSTOP) past its lease is replaced and, resumed, writes nothing and stops.
#[test]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
fn with_postgres_replicas_follow_the_leader_and_take_over_its_rollouts() {
    let url = fresh_postgres_database();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let args = ["--database-url", &url, "--lease-ttl", "2s", "--no-proxy"];
    let mut replicas = vec![Daemon::start_with(dirs[0].path(), ports[0], &args)];
    for i in 1..3 {
        share_admin_token(dirs[0].path(), dirs[i].path());
        replicas.push(Daemon::start_with(dirs[i].path(), ports[i], &args));
    }
    assert_eq!(leader_port(&url), Some(ports[0]), "the first replica leads");

    // Everything through followers: forwarded to the leader.
    let app_port = free_port();
    let steps = "        - setWeight: 30\n        - pause: {}\n        - setWeight: 60\n        - pause: {}\n";
    let file = write(
        dirs[1].path(),
        "shop.yaml",
        &manifest("shop", app_port, steps, ""),
    );
    replicas[1].ok(&["apply", "-f", file.to_str().unwrap()]);
    replicas[2].ok(&["deploy", "shop", "--version", "v1"]);
    replicas[1].ok(&["deploy", "shop", "--version", "v2"]);
    let before = replicas[2].wait_rollout("shop", "the first pause", |r| {
        r["phase"] == "Paused" && r["weight"] == 30
    });

    // SIGKILL the leader: another replica takes the lease over and resumes the rollout.
    replicas[0].kill();
    let mut new_leader = 0;
    wait_for_condition("another replica to lead", || {
        new_leader = leader_port(&url).unwrap_or(0);
        new_leader == ports[1] || new_leader == ports[2]
    });
    let (leader, follower) = if new_leader == ports[1] {
        (1, 2)
    } else {
        (2, 1)
    };
    let after = rollout_through(&replicas[follower], |r| r["phase"] == "Paused");
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["step"], before["step"]);
    assert_eq!(after["weight"], 30);
    replicas[follower].ok(&["promote", "shop"]);
    rollout_through(&replicas[follower], |r| {
        r["phase"] == "Paused" && r["weight"] == 60
    });

    // SIGSTOP the leader past its lease: the last replica takes over; resumed, the old leader
    // finds it was deposed and stops (exit 75) without writing.
    let stopped = replicas[leader].child.id().to_string();
    let signal = |sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &stopped])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    wait_for_condition("the last replica to lead", || {
        leader_port(&url) == Some(ports[follower])
    });
    rollout_through(&replicas[follower], |r| r["phase"] == "Paused");
    replicas[follower].ok(&["promote", "shop"]);
    let done = rollout_through(&replicas[follower], |r| r["phase"] == "Succeeded");
    assert_eq!(done["weight"], 100);
    signal("-CONT");
    let mut status = None;
    wait_for_condition("the deposed leader to stop", || {
        status = replicas[leader].child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(
        status.unwrap().code(),
        Some(75),
        "the deposed leader stops with 75"
    );

    // Every transition once, whatever the leader changes: none lost, none applied twice.
    let kinds = psql(
        &url,
        "SELECT kind || '=' || count(*) FROM events GROUP BY kind ORDER BY kind",
    );
    for expected in ["rollout_started=1", "release_started=1", "weight_changed=3"] {
        assert!(
            kinds.lines().any(|l| l == expected),
            "{expected} in\n{kinds}"
        );
    }
    let epochs = psql(&url, "SELECT epoch FROM leader_lease");
    assert_eq!(epochs.trim(), "3", "three leaders, three epochs");
    let verified = replicas[follower].ok(&["audit", "--verify"]);
    assert!(!verified.contains("BROKEN"), "{verified}");
}

/// A restart of PostgreSQL cuts every replica's connections mid-rollout: the replicas reconnect,
/// one leads (the same or, if its lease ran out meanwhile, the other), and the rollout goes on
/// from where the event log says, every transition logged once.
#[test]
#[ignore = "needs PostgreSQL (scripts/postgres); scripts/test runs it"]
fn with_postgres_a_database_restart_mid_rollout_loses_nothing() {
    let pg = OwnPostgres::start();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let args = ["--database-url", &pg.url, "--lease-ttl", "2s", "--no-proxy"];
    let mut replicas = vec![Daemon::start_with(dirs[0].path(), ports[0], &args)];
    share_admin_token(dirs[0].path(), dirs[1].path());
    replicas.push(Daemon::start_with(dirs[1].path(), ports[1], &args));
    let app_port = free_port();
    let steps = "        - setWeight: 30\n        - pause: {}\n        - setWeight: 60\n        - pause: {}\n";
    let file = write(
        dirs[0].path(),
        "shop.yaml",
        &manifest("shop", app_port, steps, ""),
    );
    replicas[1].ok(&["apply", "-f", file.to_str().unwrap()]);
    replicas[1].ok(&["deploy", "shop", "--version", "v1"]);
    replicas[1].ok(&["deploy", "shop", "--version", "v2"]);
    let before = rollout_through(&replicas[1], |r| {
        r["phase"] == "Paused" && r["weight"] == 30
    });

    pg.restart();
    // Whichever replica answers: through the follower, or the new leader itself.
    let answering = || {
        replicas.iter().position(|d| {
            d.cli(&["rollout", "status", "shop", "-o", "json"])
                .status
                .success()
        })
    };
    let mut which = None;
    wait_for_condition("a replica to answer after the restart", || {
        which = answering();
        which.is_some()
    });
    let d = &replicas[which.unwrap()];
    let after = rollout_through(d, |r| r["phase"] == "Paused");
    assert_eq!(
        (&after["id"], &after["step"], &after["weight"]),
        (&before["id"], &before["step"], &before["weight"])
    );
    // A command right after the restart may meet a takeover: it is retried until accepted.
    wait_for_condition("the promotion to be accepted", || {
        replicas
            .iter()
            .any(|d| d.cli(&["promote", "shop"]).status.success())
    });
    let which = answering().unwrap();
    rollout_through(&replicas[which], |r| {
        r["phase"] == "Paused" && r["weight"] == 60
    });
    let kinds = psql(
        &pg.url,
        "SELECT kind || '=' || count(*) FROM events GROUP BY kind ORDER BY kind",
    );
    for expected in ["rollout_started=1", "release_started=1", "weight_changed=2"] {
        assert!(
            kinds.lines().any(|l| l == expected),
            "{expected} in\n{kinds}"
        );
    }
    assert!(
        !replicas[which]
            .ok(&["audit", "--verify"])
            .contains("BROKEN"),
        "the chain verifies"
    );
    drop(replicas);
}

/// Followers answer SDKs themselves: a flag changed through the leader reaches a follower's
/// OFREP through the database's notifications, a token created on the leader authenticates on
/// the follower, and when the leader dies the follower keeps serving flags before any replica
/// leads again (what it forwards answers 503 meanwhile).
#[test]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
fn with_postgres_followers_serve_flags_themselves_even_while_no_replica_leads() {
    use crate::flags::{addr, http, json_of};

    let url = fresh_postgres_database();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let args = ["--database-url", &url, "--lease-ttl", "10s", "--no-proxy"];
    let mut leader = Daemon::start_with(dirs[0].path(), ports[0], &args);
    share_admin_token(dirs[0].path(), dirs[1].path());
    let follower = Daemon::start_with(dirs[1].path(), ports[1], &args);
    let flags = write(
        dirs[0].path(),
        "flags.yaml",
        "flags:\n  - key: banner\n    type: string\n    variants: {plain: plain, fancy: fancy}\n    defaultVariant: plain\n",
    );
    leader.ok(&["flags", "apply", "-f", flags.to_str().unwrap()]);
    let evaluate = |token: &str| {
        let (status, _, text) = http(
            addr(&follower),
            "POST",
            "/ofrep/v1/evaluate/flags/banner",
            &[("Authorization", &format!("Bearer {token}"))],
            "{\"context\": {}}",
        );
        (status, json_of(&text))
    };
    let admin = follower.token.clone();
    // Until the follower serves `value`, with the last answer in the failure.
    let serves = |token: &str, value: &str| {
        let mut last = None;
        let served = (0..600).any(|_| {
            let answer = evaluate(token);
            let done = answer.0 == 200 && answer.1["value"] == value;
            last = Some(answer);
            if !done {
                std::thread::sleep(Duration::from_millis(100));
            }
            done
        });
        assert!(served, "the follower never served `{value}`: {last:?}");
    };
    serves(&admin, "plain");
    let changed = flags.with_file_name("fancy.yaml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(&flags)
            .unwrap()
            .replace("defaultVariant: plain", "defaultVariant: fancy"),
    )
    .unwrap();
    leader.ok(&["flags", "apply", "-f", changed.to_str().unwrap()]);
    serves(&admin, "fancy");
    let created: serde_json::Value = serde_json::from_str(&leader.ok(&[
        "token",
        "create",
        "--name",
        "web",
        "--role",
        "sdk",
        "--env",
        "production",
        "-o",
        "json",
    ]))
    .unwrap();
    let sdk = created["token"].as_str().unwrap().to_owned();
    wait_for_condition("the new token to authenticate on the follower", || {
        evaluate(&sdk).0 == 200
    });

    // From the kill until the follower takes over (the lease runs out first: seconds), what it
    // forwards fails, and what it answers itself does not.
    leader.kill();
    let mut seen = None;
    wait_for_condition("the follower serving flags while no replica leads", || {
        let forwarded = get(addr(&follower), "/api/v1/apps").map(|(status, _)| status);
        let (status, body) = evaluate(&sdk);
        seen = Some((forwarded, status, body["value"].clone()));
        forwarded == Some(503) && status == 200 && body["value"] == "fancy"
    });
    // And once it leads, it answers as the leader.
    wait_for_condition("the follower to lead", || {
        leader_port(&url) == Some(ports[1])
    });
    wait_for_condition("the new leader to answer", || {
        get(addr(&follower), "/api/v1/apps").is_some_and(|(status, _)| status == 200)
    });
    assert_eq!(evaluate(&sdk).1["value"], "fancy", "{seen:?}");
}

/// Proxied traffic and API writes through every fault, one after the other, on three replicas:
/// a proxy follows one replica (its table requests forwarded to whichever leads), clients keep
/// requesting the app through it, and a client keeps changing a flag through whichever replica
/// answers, while the leader is SIGKILLed, PostgreSQL restarts, and the next leader is paused
/// (SIGSTOP) past its lease and resumed (it stops; it is started again, as a service manager
/// would, and follows). No proxied request fails; every change the API acknowledged is stored,
/// and nothing beyond what was sent.
#[test]
#[ignore = "needs a PostgreSQL server of its own (scripts/postgres); scripts/test runs it"]
fn with_postgres_proxied_traffic_and_api_writes_lose_nothing_through_every_fault() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use crate::dataplane::Load;

    let pg = OwnPostgres::start();
    let url = pg.url.clone();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let args = ["--database-url", &url, "--lease-ttl", "2s", "--no-proxy"];
    let start = |i: usize| Daemon::start_with(dirs[i].path(), ports[i], &args);
    let mut replicas = vec![start(0)];
    for i in 1..3 {
        share_admin_token(dirs[0].path(), dirs[i].path());
        replicas.push(start(i));
    }
    let leader = || -> Option<usize> {
        let port = leader_port(&url)?;
        ports.iter().position(|p| *p == port)
    };
    assert_eq!(leader(), Some(0));
    let followed = 2;

    let _proxy = proxy_following(&replicas[followed], dirs[followed].path());
    let app_port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    let steps = "        - setWeight: 30\n        - pause: {}\n        - setWeight: 100\n";
    let file = write(
        dirs[1].path(),
        "shop.yaml",
        &manifest("shop", app_port, steps, ""),
    );
    replicas[1].ok(&["apply", "-f", file.to_str().unwrap()]);
    replicas[1].ok(&["deploy", "shop", "--version", "v1"]);
    replicas[1].ok(&["deploy", "shop", "--version", "v2"]);
    rollout_through(&replicas[1], |r| {
        r["phase"] == "Paused" && r["weight"] == 30
    });
    wait_for_condition("the app to answer through the proxy", || {
        get(app, "/").is_some_and(|(status, _)| status == 200)
    });

    // Flag changes, each different (its number in the flag's metadata), through whichever
    // replica answers.
    let apis: Vec<SocketAddr> = replicas
        .iter()
        .map(|d| d.api.trim_start_matches("http://").parse().unwrap())
        .collect();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let sent = std::sync::Arc::new(AtomicU64::new(0));
    let acknowledged = std::sync::Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, sent, acknowledged) = (stop.clone(), sent.clone(), acknowledged.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let content = format!(
                    "flags:\n  - key: k\n    type: boolean\n    variants: {{on: true, off: false}}\n    defaultVariant: off\n    metadata: {{n: \"{i}\"}}\n"
                );
                let body = serde_json::json!({"format": "native", "content": content}).to_string();
                sent.store(i, Ordering::Relaxed);
                let api = apis[usize::try_from(i).unwrap() % apis.len()];
                if request(api, "PUT", "/api/v1/flags", &body).is_some_and(|(s, _)| s == 200) {
                    acknowledged.store(i, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let load = Load::start(app);
    load.wait_for_more(300);

    // 1. SIGKILL of the leader.
    replicas[0].kill();
    wait_for_condition("another replica to lead", || {
        leader().is_some_and(|l| l != 0)
    });
    rollout_through(&replicas[followed], |r| r["phase"] == "Paused");
    load.wait_for_more(300);

    // 2. PostgreSQL restarts.
    pg.restart();
    rollout_through(&replicas[followed], |r| r["phase"] == "Paused");
    load.wait_for_more(300);
    // A leader that could not renew its lease while PostgreSQL was away (a loaded machine) was
    // deposed and stopped (75): started again, as a service manager would.
    for (i, replica) in replicas.iter_mut().enumerate().skip(1) {
        if let Some(status) = replica.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(75), "replica {i} stopped otherwise");
            *replica = start(i);
        }
    }

    // 3. The leader paused past its lease, then resumed: it stops (75) and is started again.
    let paused = loop {
        if let Some(l) = leader().filter(|l| *l != 0) {
            break l;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let pid = replicas[paused].child.id().to_string();
    let signal = |sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    let other = (1..3).find(|i| *i != paused).unwrap();
    wait_for_condition("the third replica to lead", || {
        // A leader deposed while PostgreSQL was away notices it at its next renewal, which on a
        // loaded machine can come after the check above: it stops (75) then, and is started
        // again here, as a service manager would.
        if let Some(status) = replicas[other].child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(75), "replica {other} stopped otherwise");
            replicas[other] = start(other);
        }
        leader().is_some_and(|l| l != 0 && l != paused)
    });
    load.wait_for_more(300);
    signal("-CONT");
    let mut status = None;
    wait_for_condition("the deposed leader to stop", || {
        status = replicas[paused].child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(75));
    replicas[paused] = start(paused);
    let now = (0..3).find(|i| *i != 0 && *i != paused).unwrap();
    rollout_through(&replicas[now], |r| {
        r["phase"] == "Paused" && r["weight"] == 30
    });
    replicas[now].ok(&["promote", "shop"]);
    rollout_through(&replicas[followed], |r| r["phase"] == "Succeeded");
    wait_for_condition("v2 to answer through the proxy", || {
        get(app, "/").is_some_and(|(_, text)| text.contains("hello from v2"))
    });
    load.wait_for_more(300);
    let counts = load.finish();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let (sent, acknowledged) = (
        sent.load(Ordering::Relaxed),
        acknowledged.load(Ordering::Relaxed),
    );
    eprintln!(
        "every fault under load: {} proxied requests answered 200, {} failed; {sent} flag changes sent, the last acknowledged {acknowledged}",
        counts.ok,
        counts.failed.len(),
    );
    assert!(counts.failed.is_empty(), "failed: {:?}", counts.failed);
    let stored: u64 = psql(
        &url,
        "SELECT document_json::json->'metadata'->>'n' FROM flag_documents WHERE key = 'k'",
    )
    .trim()
    .parse()
    .unwrap();
    assert!(
        (acknowledged..=sent).contains(&stored),
        "the stored change ({stored}) is the last acknowledged ({acknowledged}) or a later one sent"
    );
    let kinds = psql(
        &url,
        "SELECT kind || '=' || count(*) FROM events GROUP BY kind ORDER BY kind",
    );
    for expected in ["rollout_started=1", "weight_changed=2"] {
        assert!(
            kinds.lines().any(|l| l == expected),
            "{expected} in\n{kinds}"
        );
    }
    assert!(
        !replicas[now].ok(&["audit", "--verify"]).contains("BROKEN"),
        "the chains verify"
    );
}

/// A `switchyard proxy` following `d`, with a proxy token created through it; its state in
/// `dir`.
fn proxy_following(d: &Daemon, dir: &std::path::Path) -> KillOnDrop {
    let created: serde_json::Value = serde_json::from_str(&d.ok(&[
        "token", "create", "--name", "edge", "--role", "proxy", "-o", "json",
    ]))
    .unwrap();
    let token = dir.join("edge.token");
    std::fs::write(&token, created["token"].as_str().unwrap()).unwrap();
    KillOnDrop(
        std::process::Command::new(BIN)
            .args(["proxy", "--control", &d.api, "--id", "edge"])
            .arg("--token-file")
            .arg(&token)
            .arg("--state-dir")
            .arg(dir.join("edge"))
            .env("SWITCHYARD_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

/// The database's disk fills up mid-rollout, under proxied traffic and writes, on three
/// replicas: the write that finds no room fails (PostgreSQL cannot extend its WAL and stops),
/// nothing is half-applied, the proxy keeps serving; once the disk has room and the server runs
/// again, the replicas carry on (one that stepped down is started again, as a service manager
/// would) — every change the API acknowledged is there, the rollout goes on from its step.
#[test]
#[ignore = "needs root and PostgreSQL (scripts/postgres); scripts/test runs it"]
fn with_postgres_a_full_database_disk_loses_no_acknowledged_write() {
    use crate::dataplane::Load;

    let pg = OwnPostgres::start_on_tmpfs(64);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let args = ["--database-url", &pg.url, "--lease-ttl", "2s", "--no-proxy"];
    let start = |i: usize| Daemon::start_with(dirs[i].path(), ports[i], &args);
    let mut replicas = vec![start(0)];
    for i in 1..3 {
        share_admin_token(dirs[0].path(), dirs[i].path());
        replicas.push(start(i));
    }
    let followed = 2;
    let _proxy = proxy_following(&replicas[followed], dirs[followed].path());
    let app_port = free_port();
    let app: SocketAddr = format!("127.0.0.1:{app_port}").parse().unwrap();
    let steps = "        - setWeight: 30\n        - pause: {}\n        - setWeight: 60\n        - pause: {}\n";
    let file = write(
        dirs[0].path(),
        "shop.yaml",
        &manifest("shop", app_port, steps, ""),
    );
    replicas[1].ok(&["apply", "-f", file.to_str().unwrap()]);
    replicas[1].ok(&["deploy", "shop", "--version", "v1"]);
    replicas[1].ok(&["deploy", "shop", "--version", "v2"]);
    let before = rollout_through(&replicas[1], |r| {
        r["phase"] == "Paused" && r["weight"] == 30
    });
    wait_for_condition("the app to answer through the proxy", || {
        get(app, "/").is_some_and(|(status, _)| status == 200)
    });
    let load = Load::start(app);
    load.wait_for_more(300);

    // Flag changes of some 64 KiB each (hex of a counter's hash: little for compression to
    // win back), through the follower, until one fails.
    let api: SocketAddr = replicas[followed]
        .api
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let change = |i: u64| {
        let mut state = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let note: String = (0..32 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("{:02x}", state & 0xff)
            })
            .collect();
        let content = format!(
            "flags:\n  - key: k\n    type: boolean\n    variants: {{on: true, off: false}}\n    defaultVariant: off\n    metadata: {{note: \"{i}-{note}\"}}\n"
        );
        let body = serde_json::json!({"format": "native", "content": content}).to_string();
        request(api, "PUT", "/api/v1/flags", &body).map(|(status, _)| status)
    };
    assert_eq!(change(0), Some(200));
    let filled = pg.fill();
    let mut acknowledged = 0u64;
    let mut refused = None;
    for i in 1..=400 {
        match change(i) {
            Some(200) => acknowledged = i,
            other => {
                refused = Some((i, other));
                break;
            }
        }
    }
    eprintln!(
        "disk filled with {filled} bytes; {acknowledged} changes acknowledged, then {refused:?}"
    );
    assert!(refused.is_some(), "a write fails once the disk is full");
    load.wait_for_more(300);

    pg.free();
    pg.restart();
    // A replica that stepped down meanwhile (its renewals failed for a whole lease) is started
    // again, as a service manager would.
    for (i, replica) in replicas.iter_mut().enumerate() {
        if let Some(status) = replica.child.try_wait().unwrap() {
            assert_eq!(
                status.code(),
                Some(75),
                "replica {i} stopped as a deposed leader"
            );
            *replica = start(i);
        }
    }
    wait_for_condition("a replica to take a command again", || {
        replicas
            .iter()
            .any(|d| d.cli(&["promote", "shop"]).status.success())
    });
    let after = rollout_through(&replicas[followed], |r| {
        r["phase"] == "Paused" && r["weight"] == 60
    });
    assert_eq!(after["id"], before["id"]);
    load.wait_for_more(300);
    let counts = load.finish();
    eprintln!(
        "full disk under load: {} proxied requests answered 200, {} failed",
        counts.ok,
        counts.failed.len()
    );
    assert!(counts.failed.is_empty(), "failed: {:?}", counts.failed);
    let note = psql(
        &pg.url,
        "SELECT split_part(document_json::json->'metadata'->>'note', '-', 1) FROM flag_documents WHERE key = 'k'",
    );
    let last: u64 = note.trim().parse().unwrap();
    assert!(
        last >= acknowledged,
        "the last acknowledged change ({acknowledged}) is stored (found {last})"
    );
    let kinds = psql(
        &pg.url,
        "SELECT kind || '=' || count(*) FROM events GROUP BY kind ORDER BY kind",
    );
    for expected in ["rollout_started=1", "weight_changed=2"] {
        assert!(
            kinds.lines().any(|l| l == expected),
            "{expected} in\n{kinds}"
        );
    }
    assert!(
        !replicas[followed]
            .ok(&["audit", "--verify"])
            .contains("BROKEN"),
        "the chains verify"
    );
}

/// The rollout of `shop` once `d` answers with one that satisfies `done`; answers that fail
/// (503 `no_leader` while a takeover is under way) are waited out.
fn rollout_through(d: &Daemon, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_for_condition("the rollout through a replica", || {
        let out = d.cli(&["rollout", "status", "shop", "-o", "json"]);
        if !out.status.success() {
            return false;
        }
        last = serde_json::from_slice(&out.stdout).unwrap();
        done(&last)
    });
    last
}

/// Waits up to 60 s for `done`, checking every 100 ms.
fn wait_for_condition(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// A database URL with a wrong password is refused at start, naming the server and the reason,
/// never the password.
#[test]
#[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
fn with_postgres_a_wrong_password_is_refused_at_start() {
    let url = fresh_postgres_database();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--no-proxy", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .env(
            "SWITCHYARD_DATABASE_URL",
            url.replacen("switchyard:switchyard@", "switchyard:hunter2@", 1),
        )
        .output()
        .unwrap();
    assert!(!out.status.success(), "refused");
    let wrong = String::from_utf8_lossy(&out.stderr);
    assert!(wrong.contains("password authentication failed"), "{wrong}");
    assert!(
        wrong.contains("postgres://switchyard@127.0.0.1:"),
        "{wrong}"
    );
    assert!(
        !wrong.contains("hunter2"),
        "the password never shows: {wrong}"
    );
}
