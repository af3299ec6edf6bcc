//! Values published in other projects' own tests and documentation, repeated
//! to the digits they publish (five decimals for GrowthBook, four for Statsig).

use serde_json::{Value, json};
use switchyard_stats::run_method;

fn run(method: &str, input: Value) -> Value {
    run_method(method, &input).unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn rounded(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// GrowthBook's planner test case: mean 10, variance 3909.9997749994377,
/// 400,000 users over 3 variations, α = 0.05 (growthbook/growthbook
/// `packages/shared/test/power.test.ts`: "calculates power correctly",
/// "calculates two-tailed mde correctly", "calculates sequential power
/// correctly", "calculates sequential mde correctly").
fn growthbook_case(extra: Value) -> Value {
    let mut input = json!({"mean": 10.0, "variance": 3909.9997749994377,
                           "n_total": 400000, "n_variations": 3});
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    input
}

#[test]
fn growthbook_power_and_mde_fixed_horizon() {
    let power = run("power", growthbook_case(json!({"effect": 0.05})));
    assert_eq!(rounded(power["power"].as_f64().unwrap(), 5), 0.52144);
    let mde = run("power", growthbook_case(json!({"power": 0.8})));
    assert_eq!(rounded(mde["mde_relative"].as_f64().unwrap(), 5), 0.07027);
}

#[test]
fn growthbook_power_and_mde_sequential() {
    let with = |extra: Value| {
        let mut input = growthbook_case(extra);
        input["sequential_tuning"] = json!(5000.0);
        input
    };
    let power = run("power", with(json!({"effect": 0.05})));
    assert_eq!(rounded(power["power"].as_f64().unwrap(), 5), 0.20596);
    let mde = run("power", with(json!({"power": 0.8})));
    assert_eq!(rounded(mde["mde_relative"].as_f64().unwrap(), 5), 0.12821);
}

/// GrowthBook's week-by-week table ("checks power", "checks sequential
/// power"): 4,500 users a week over 3 variations for 9 weeks, a binomial
/// metric (rate 0.1, effect 5 %) and a mean metric (mean 0.1, variance 0.5,
/// effect 30 %); per week the binomial metric then the mean metric.
#[test]
fn growthbook_weekly_power_and_mde() {
    let metrics = [(0.1, 0.1 * 0.9, 0.05), (0.1, 0.5, 0.3)];
    let table = |tuning: Option<f64>| {
        let (mut powers, mut mdes) = (Vec::new(), Vec::new());
        for week in 1..=9 {
            for (mean, variance, effect) in metrics {
                let mut input = json!({"mean": mean, "variance": variance,
                                       "n_total": 4500 * week, "n_variations": 3});
                if let Some(t) = tuning {
                    input["sequential_tuning"] = json!(t);
                }
                let mut p = input.clone();
                p["effect"] = json!(effect);
                powers.push(rounded(run("power", p)["power"].as_f64().unwrap(), 5));
                input["power"] = json!(0.8);
                mdes.push(rounded(
                    run("power", input)["mde_relative"].as_f64().unwrap(),
                    5,
                ));
            }
        }
        (powers, mdes)
    };
    let (powers, mdes) = table(None);
    assert_eq!(
        powers,
        [
            0.073, 0.17053, 0.0965, 0.29389, 0.1204, 0.41122, 0.14458, 0.51749, 0.16895, 0.61037,
            0.19342, 0.68938, 0.21791, 0.75513, 0.24235, 0.80886, 0.26666, 0.85213
        ]
    );
    assert_eq!(
        mdes,
        [
            0.36767, 1.26769, 0.24505, 0.71941, 0.19525, 0.54299, 0.16673, 0.4506, 0.14774,
            0.39208, 0.13394, 0.35099, 0.12336, 0.32018, 0.11491, 0.29603, 0.10796, 0.27647
        ]
    );
    let (powers, mdes) = table(Some(5000.0));
    assert_eq!(
        powers,
        [
            0.05936, 0.09832, 0.06912, 0.14992, 0.07849, 0.19972, 0.08761, 0.24784, 0.09657,
            0.29426, 0.10541, 0.33888, 0.11415, 0.38165, 0.12282, 0.42249, 0.13142, 0.46136
        ]
    );
    assert_eq!(
        mdes,
        [
            0.65545, 4.33868, 0.4112, 1.51846, 0.32394, 1.04943, 0.27607, 0.84084, 0.24484,
            0.71862, 0.22241, 0.63663, 0.20532, 0.577, 0.19172, 0.53123, 0.18058, 0.49473
        ]
    );
}

/// Statsig's mSPRT as its sequential-testing documentation defines it:
/// Δ ± Z*·√V with τ = z²·(σ²_t + σ²_c)/(n_t + n_c); means 10.5 and 10,
/// variances 4, 1,000 units each, α = 0.05 gives [0.1794, 0.8206].
#[test]
fn statsig_msprt_interval_with_the_default_tau() {
    let arm = |mean: f64| json!({"n": 1000, "mean": mean, "variance": 4.0});
    let out = run(
        "sequential",
        json!({"control": arm(10.0), "treatment": arm(10.5), "method": "msprt"}),
    );
    let ci = out["ci"].as_array().unwrap();
    assert_eq!(rounded(ci[0].as_f64().unwrap(), 4), 0.1794);
    assert_eq!(rounded(ci[1].as_f64().unwrap(), 4), 0.8206);
    // The same τ given explicitly: z²·8/2000.
    let z = 1.959963984540054_f64;
    let explicit = run(
        "sequential",
        json!({"control": arm(10.0), "treatment": arm(10.5), "method": "msprt",
               "tau": z * z * 8.0 / 2000.0}),
    );
    assert_eq!(explicit["ci"], out["ci"]);
    // The interval excludes 0, so the p-value is below α.
    assert!(out["p_value"].as_f64().unwrap() < 0.05, "{out}");
}
