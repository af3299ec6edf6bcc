//! GrowthBook's statistics engine as the oracle of experiment results: seeded users go through
//! the daemon (exposures over OFREP, purchases through `POST /api/v1/events`), and the results
//! the daemon computes are compared with those of gbstats (PyPI) on the same users' data, for
//! a conversion, a continuous and a ratio metric, both differences and the three methods.
//! Equal to 1e-6 where the methods are the same; docs/experiments.md lists where they are not.

use std::process::Command;

use serde_json::{Value, json};

use crate::experiments::{Users, comparison, experiment, post_events, results_with_units};
use crate::flags::ofrep;
use crate::support::*;

const TOLERANCE: f64 = 1e-6;
const USERS: usize = 800;

/// The flag experiment of experiments.rs with a ratio metric and the analysis under test.
fn manifest(key: &str, method: &str, difference: &str) -> String {
    const REVENUE: &str = "    - {name: revenue, continuous: {event: purchase}}\n";
    let text = experiment(key, "---\n")
        .replace(
            REVENUE,
            &format!(
                "{REVENUE}    - name: order-value\n      \
                 ratio: {{numerator: {{sum: purchase}}, denominator: {{count: purchase}}}}\n"
            ),
        )
        .replace(
            "analysis: {method: sequential, alpha: 0.05}",
            &format!(
                "analysis: {{method: {method}, alpha: 0.05, correction: none, cuped: false, \
                 difference: {difference}}}"
            ),
        );
    assert!(
        text.contains("order-value") && text.contains(difference),
        "{text}"
    );
    text
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
    for chunk in events.chunks(500) {
        let (status, report) = post_events(d, chunk);
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["accepted"], chunk.len(), "{report}");
    }
    users
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
        .map(|(key, method, difference)| manifest(key, method, difference))
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
            let tested = &ours[*difference];
            assert_close(&what("estimate"), &tested["estimate"], &gb["estimate"]);
            assert_close(&what("ci[0]"), &tested["ci"][0], &gb["ci"][0]);
            assert_close(&what("ci[1]"), &tested["ci"][1], &gb["ci"][1]);
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
            let gb_other = &theirs[metric][other][*method];
            assert_close(
                &what(other),
                &ours[other]["estimate"],
                &gb_other["estimate"],
            );
            assert_close(
                &what(&format!("{other} ci[0]")),
                &ours[other]["ci"][0],
                &gb_other["ci"][0],
            );
            assert_close(
                &what(&format!("{other} ci[1]")),
                &ours[other]["ci"][1],
                &gb_other["ci"][1],
            );
        }
    }
}
