//! GrowthBook's statistics engine as the oracle of experiment results: seeded users go through
//! the daemon (exposures over OFREP, purchases through `POST /api/v1/events`), and the results
//! the daemon computes are compared with those of gbstats (PyPI) on the same users' data, for
//! a conversion, a continuous and a ratio metric, both differences and the three methods.
//! Equal to 1e-6 where the methods are the same; docs/experiments.md lists where they are not.
//! A second test sends each user's raw events, before and after the exposure, to both: CUPED
//! with a lookback and caps at a percentile, which GrowthBook applies in its SQL, are computed
//! by the oracle script from the events, independently of the daemon.

use std::process::Command;

use serde_json::{Value, json};

use crate::experiments::{Users, comparison, experiment, post_events, results_with_units};
use crate::flags::ofrep;
use crate::support::*;

const TOLERANCE: f64 = 1e-6;
const USERS: usize = 800;

/// The flag experiment of experiments.rs with `metrics` (YAML list items) and
/// `analysis: {alpha: 0.05, correction: none, ANALYSIS}`.
fn manifest(key: &str, metrics: &str, analysis: &str) -> String {
    const METRICS: &str = "    - {name: purchased, conversion: {event: purchase}}\n    \
                           - {name: revenue, continuous: {event: purchase}}\n";
    let analysis = format!("analysis: {{alpha: 0.05, correction: none, {analysis}}}");
    let text = experiment(key, "---\n")
        .replace(METRICS, metrics)
        .replace("analysis: {method: sequential, alpha: 0.05}", &analysis);
    assert!(text.contains(metrics) && text.contains(&analysis), "{text}");
    text
}

/// A conversion, a continuous and a ratio metric, under `method` and `difference`, no CUPED.
fn plain_manifest(key: &str, method: &str, difference: &str) -> String {
    manifest(
        key,
        "    - {name: purchased, conversion: {event: purchase}}\n    \
         - {name: revenue, continuous: {event: purchase}}\n    \
         - name: order-value\n      \
         ratio: {numerator: {sum: purchase}, denominator: {count: purchase}}\n",
        &format!("method: {method}, cuped: false, difference: {difference}"),
    )
}

/// One user's variant and purchase values.
struct User {
    treated: bool,
    purchases: Vec<f64>,
}

/// Exposes `USERS` users over OFREP and, once every exposure is stored (a purchase that
/// arrives before its unit's exposure is a pre-exposure covariate), sends their purchases:
/// none, one or two, the redesign buying a little more often and a little more.
fn drive(d: &Daemon, key: &str, seed: u64) -> Vec<User> {
    let mut random = Users(seed);
    let mut users = Vec::with_capacity(USERS);
    let mut events = Vec::new();
    for i in 0..USERS {
        let unit = format!("{key}-user-{i}");
        let (status, body) = ofrep(d, key, json!({"userId": unit}), &[]);
        assert_eq!(status, 200, "{body}");
        let treated = body["variant"] != "control";
        let (rate, base) = if treated { (0.30, 22.0) } else { (0.25, 20.0) };
        let mut purchases = Vec::new();
        if random.next() < rate {
            let count = if random.next() < 0.4 { 2 } else { 1 };
            for j in 0..count {
                let value = base + 30.0 * random.next();
                events.push(json!({
                    "id": format!("purchase-{unit}-{j}"),
                    "experiment": key,
                    "unit": unit,
                    "event": "purchase",
                    "value": value,
                }));
                purchases.push(value);
            }
        }
        users.push(User { treated, purchases });
    }
    results_with_units(d, key, USERS as u64);
    post_all(d, &events);
    users
}

/// Posts `events` in batches of 500; every one must be counted.
fn post_all(d: &Daemon, events: &[Value]) {
    for chunk in events.chunks(500) {
        let (status, report) = post_events(d, chunk);
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["accepted"], chunk.len(), "{report}");
    }
}

/// The per-variant sums gbstats takes, for each metric.
fn cases(users: &[User]) -> Value {
    let arm = |treated: bool, per_unit: &dyn Fn(&User) -> (f64, f64)| {
        let (mut n, mut m, mut m2, mut d, mut d2, mut md) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for u in users.iter().filter(|u| u.treated == treated) {
            let (x, y) = per_unit(u);
            n += 1.0;
            m += x;
            m2 += x * x;
            d += y;
            d2 += y * y;
            md += x * y;
        }
        json!({"n": n, "sum": m, "sum_squares": m2, "m_sum": m, "m_sum_squares": m2,
               "d_sum": d, "d_sum_squares": d2, "m_d_sum_of_products": md})
    };
    let converted = |u: &User| (f64::from(u8::from(!u.purchases.is_empty())), 0.0);
    let revenue = |u: &User| (u.purchases.iter().sum::<f64>(), 0.0);
    let order = |u: &User| (u.purchases.iter().sum::<f64>(), u.purchases.len() as f64);
    let case = |name: &str, kind: &str, per_unit: &dyn Fn(&User) -> (f64, f64)| json!({"name": name, "kind": kind, "control": arm(false, per_unit), "treatment": arm(true, per_unit)});
    json!({"alpha": 0.05, "n_star": 5000, "cases": [
        case("purchased", "proportion", &converted),
        case("revenue", "mean", &revenue),
        case("order-value", "ratio", &order),
    ]})
}

fn oracle(python: &str, request: &Value) -> Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gbstats-oracle");
    let out = with_stdin(
        Command::new(python).arg(script),
        request.to_string().as_bytes(),
    );
    assert!(
        out.status.success(),
        "gbstats-oracle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_close(what: &str, ours: &Value, theirs: &Value) {
    let (a, b) = (ours.as_f64(), theirs.as_f64());
    let (Some(a), Some(b)) = (a, b) else {
        panic!("{what}: ours {ours}, gbstats {theirs}");
    };
    assert!((a - b).abs() <= TOLERANCE, "{what}: ours {a}, gbstats {b}");
}

/// An estimate and its interval.
fn assert_lift(what: &str, ours: &Value, theirs: &Value) {
    assert_close(
        &format!("{what} estimate"),
        &ours["estimate"],
        &theirs["estimate"],
    );
    assert_close(&format!("{what} ci[0]"), &ours["ci"][0], &theirs["ci"][0]);
    assert_close(&format!("{what} ci[1]"), &ours["ci"][1], &theirs["ci"][1]);
}

#[test]
#[ignore = "needs gbstats: SWITCHYARD_TEST_GBSTATS names a Python that has it (scripts/test sets it)"]
fn with_gbstats_every_method_and_difference_agrees_with_growthbook() {
    let python = std::env::var("SWITCHYARD_TEST_GBSTATS")
        .expect("SWITCHYARD_TEST_GBSTATS: a Python with gbstats (scripts/test sets it)");
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let runs = [
        ("gb-fixed-relative", "fixed", "relative"),
        ("gb-fixed-absolute", "fixed", "absolute"),
        ("gb-sequential-relative", "sequential", "relative"),
        ("gb-sequential-absolute", "sequential", "absolute"),
        ("gb-bayesian-relative", "bayesian", "relative"),
        ("gb-bayesian-absolute", "bayesian", "absolute"),
    ];
    let text: String = runs
        .iter()
        .map(|(key, method, difference)| plain_manifest(key, method, difference))
        .collect();
    let file = write(dir.path(), "experiments.yaml", &text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    for (i, (key, method, difference)) in runs.iter().enumerate() {
        let users = drive(&d, key, 17 + i as u64);
        let results = results_with_units(&d, key, USERS as u64);
        let theirs = oracle(&python, &cases(&users));
        for metric in ["purchased", "revenue", "order-value"] {
            let ours = comparison(&results, metric);
            let gb = &theirs[metric][*difference][*method];
            let what = |field: &str| format!("{key} {metric} {field}");
            assert_lift(&what(difference), &ours[*difference], gb);
            match *method {
                "bayesian" => assert_close(
                    &what("chance to win"),
                    &ours["chance_to_win"],
                    &gb["chance_to_win"],
                ),
                _ => assert_close(&what("p"), &ours["p_value"], &gb["p_value"]),
            }
            // The other difference is reported from the same kind of test.
            let other = if *difference == "relative" {
                "absolute"
            } else {
                "relative"
            };
            assert_lift(&what(other), &ours[other], &theirs[metric][other][*method]);
        }
    }
}

/// CUPED with a lookback and percentile caps under `method`: two continuous metrics of the
/// same event, one capped at the 90th percentile, one at the 80th with zeros left out.
fn cuped_manifest(key: &str, method: &str) -> String {
    manifest(
        key,
        "    - {name: revenue, continuous: {event: purchase}, cap: {percentile: 0.9}}\n    \
         - {name: spend, continuous: {event: purchase}, \
         cap: {percentile: 0.8, ignoreZeros: true}}\n",
        &format!("method: {method}, cuped: true, cupedLookback: 14days, difference: absolute"),
    )
}

/// One user's variant and events, in seconds from the exposure.
struct Shopper {
    treated: bool,
    events: Vec<(f64, f64)>,
}

/// Each user spends at a level of their own, before and after the exposure; a few spend twenty
/// times more. Purchases 3 days before the exposure count in the covariate, 20 days before do
/// not. Half the pre-exposure purchases are sent before the exposure (kept until it), half after
/// it (late arrivals); every purchase after the exposure is sent after it.
fn drive_shoppers(d: &Daemon, key: &str, seed: u64) -> Vec<Shopper> {
    const DAY: f64 = 86_400.0;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let before = |days: f64| {
        switchyard_core::Timestamp::from_millis(now - (days * DAY * 1000.0) as u64).to_rfc3339()
    };
    let mut random = Users(seed);
    let mut early = Vec::new();
    let mut late = Vec::new();
    let mut shoppers = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let unit = format!("{key}-user-{i}");
        let level = 10.0 + 40.0 * random.next();
        let mut events = Vec::new();
        let purchase = |id: String, value: f64, timestamp: Option<String>| {
            let mut e = json!({"id": id, "experiment": key, "unit": unit,
                               "event": "purchase", "value": value});
            if let Some(t) = timestamp {
                e["timestamp"] = json!(t);
            }
            e
        };
        for (j, days) in [3.0, 20.0].into_iter().enumerate() {
            if random.next() < 0.5 {
                let value = level * (0.5 + random.next());
                let e = purchase(format!("pre-{unit}-{j}"), value, Some(before(days)));
                if random.next() < 0.5 {
                    early.push(e);
                } else {
                    late.push(e);
                }
                events.push((-days * DAY, value));
            }
        }
        shoppers.push((unit, level, events));
    }
    post_all(d, &early);
    let mut users = Vec::with_capacity(USERS);
    for (unit, level, mut events) in shoppers {
        let (status, body) = ofrep(d, key, json!({"userId": unit}), &[]);
        assert_eq!(status, 200, "{body}");
        let treated = body["variant"] != "control";
        let lift = if treated { 1.15 } else { 1.0 };
        for j in 0..2 {
            if random.next() < 0.6 {
                let whale = if random.next() < 0.05 { 20.0 } else { 1.0 };
                let value = level * lift * whale * (0.5 + random.next());
                late.push(json!({"id": format!("post-{unit}-{j}"), "experiment": key,
                                 "unit": unit, "event": "purchase", "value": value}));
                events.push((1.0, value));
            }
        }
        users.push(Shopper { treated, events });
    }
    results_with_units(d, key, USERS as u64);
    post_all(d, &late);
    users
}

#[test]
#[ignore = "needs gbstats: SWITCHYARD_TEST_GBSTATS names a Python that has it (scripts/test sets it)"]
fn with_gbstats_cuped_with_a_lookback_and_percentile_caps_agree_with_growthbook() {
    let python = std::env::var("SWITCHYARD_TEST_GBSTATS")
        .expect("SWITCHYARD_TEST_GBSTATS: a Python with gbstats (scripts/test sets it)");
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let runs = [
        ("gb-cuped-fixed", "fixed"),
        ("gb-cuped-sequential", "sequential"),
        ("gb-cuped-bayesian", "bayesian"),
    ];
    let text: String = runs
        .iter()
        .map(|(key, method)| cuped_manifest(key, method))
        .collect();
    let file = write(dir.path(), "experiments.yaml", &text);
    d.ok(&["apply", "-f", file.to_str().unwrap()]);
    for (i, (key, method)) in runs.iter().enumerate() {
        let users = drive_shoppers(&d, key, 41 + i as u64);
        let results = results_with_units(&d, key, USERS as u64);
        let case = |name: &str, percentile: f64, ignore_zeros: bool| {
            let users: Vec<Value> = users
                .iter()
                .map(|u| json!({"treated": u.treated, "events": u.events}))
                .collect();
            json!({"name": name, "kind": "mean", "cuped": true, "lookback_s": 14 * 86_400,
                   "cap": {"percentile": percentile, "ignore_zeros": ignore_zeros},
                   "users": users})
        };
        let request = json!({"alpha": 0.05, "n_star": 5000, "cases": [
            case("revenue", 0.9, false),
            case("spend", 0.8, true),
        ]});
        let theirs = oracle(&python, &request);
        for metric in ["revenue", "spend"] {
            let what = |field: &str| format!("{key} {metric} {field}");
            let m = results["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == metric)
                .unwrap();
            assert_close(&what("cap"), &m["cap"]["value"], &theirs[metric]["cap"]);
            let ours = comparison(&results, metric);
            assert!(
                ours["cuped_theta"].as_f64().is_some_and(|t| t > 0.1),
                "{}: CUPED applied: {ours:#}",
                what("theta")
            );
            let gb = &theirs[metric]["absolute"][*method];
            assert_lift(&what("absolute"), &ours["absolute"], gb);
            match *method {
                "bayesian" => assert_close(
                    &what("chance to win"),
                    &ours["chance_to_win"],
                    &gb["chance_to_win"],
                ),
                _ => assert_close(&what("p"), &ours["p_value"], &gb["p_value"]),
            }
            // The relative lift is the same; its interval differs on purpose (docs).
            assert_close(
                &what("relative"),
                &ours["relative"]["estimate"],
                &theirs[metric]["relative"][*method]["estimate"],
            );
        }
    }
}
