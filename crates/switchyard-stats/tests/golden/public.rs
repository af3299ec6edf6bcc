//! Every case of `golden-public.json` (shared reference values). Inputs are
//! mapped onto the `run_method` contract where the case uses other names.

use serde_json::{Value, json};
use switchyard_stats::{dist, run_method, sequential::confidence_sequence};

use crate::{TOLERANCE, assert_close, assert_json_close, case, load};

fn cases() -> Vec<Value> {
    load("golden-public.json")
}

fn run(method: &str, input: Value) -> Value {
    run_method(method, &input).unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn check(out: &Value, expected: &Value, pairs: &[(&str, &str)]) {
    for (ours, theirs) in pairs {
        assert_json_close(ours, &out[*ours], &expected[*theirs], TOLERANCE);
    }
}

#[test]
fn gb_welch_mean_absolute() {
    let c = case(&cases(), "gb_welch_mean_absolute").clone();
    let i = &c["input"];
    let out = run(
        "ttest",
        json!({"control": i["control"], "treatment": i["treatment"],
               "difference": i["difference_type"], "alpha": i["alpha"]}),
    );
    check(
        &out,
        &c["expected"],
        &[
            ("point_estimate", "point_estimate"),
            ("std_error", "std_error"),
            ("ci", "ci"),
            ("p_value", "p_value"),
            ("df", "welch_df"),
        ],
    );
}

#[test]
fn gb_binomial_relative() {
    let c = case(&cases(), "gb_binomial_relative").clone();
    let i = &c["input"];
    let out = run(
        "ttest",
        json!({"control": i["control"], "treatment": i["treatment"],
               "difference": i["difference_type"]}),
    );
    check(
        &out,
        &c["expected"],
        &[
            ("point_estimate", "point_estimate"),
            ("std_error", "std_error"),
            ("ci", "ci"),
            ("p_value", "p_value"),
            ("df", "welch_df"),
        ],
    );
}

#[test]
fn gb_sequential_absolute_n5000() {
    let c = case(&cases(), "gb_sequential_absolute_N5000").clone();
    let i = &c["input"];
    let out = run(
        "sequential",
        json!({"control": i["control"], "treatment": i["treatment"],
               "difference": i["difference_type"], "alpha": i["alpha"],
               "tuning": i["tuning_N_star"]}),
    );
    check(
        &out,
        &c["expected"],
        &[
            ("point_estimate", "point_estimate"),
            ("std_error", "std_error"),
            ("ci", "ci"),
            ("p_value", "p_value"),
        ],
    );
    let rho = confidence_sequence::rho(0.05, 5000.0, true);
    assert_close(
        "rho",
        rho,
        c["expected"]["rho"].as_f64().unwrap(),
        TOLERANCE,
    );
}

#[test]
fn cuped_absolute_rawdata() {
    let c = case(&cases(), "cuped_absolute_rawdata").clone();
    let i = &c["input"];
    let out = run(
        "cuped",
        json!({"control": i["control"], "treatment": i["treatment"],
               "difference": i["difference_type"]}),
    );
    check(
        &out,
        &c["expected"],
        &[
            ("theta", "theta"),
            ("point_estimate", "point_estimate"),
            ("std_error", "std_error"),
            ("ci", "ci"),
            ("p_value", "p_value"),
            ("df", "welch_df"),
        ],
    );
}

#[test]
fn ratio_metric_delta_method_absolute() {
    let c = case(&cases(), "ratio_metric_delta_method_absolute").clone();
    let i = &c["input"];
    let out = run(
        "ratio",
        json!({"control": i["control"], "treatment": i["treatment"],
               "difference": i["difference_type"]}),
    );
    check(
        &out,
        &c["expected"],
        &[
            ("point_estimate", "point_estimate"),
            ("std_error", "std_error"),
            ("ci", "ci"),
            ("p_value", "p_value"),
            ("df", "welch_df"),
        ],
    );
    let e = &c["expected"];
    for (arm, ratio, var) in [
        ("control", "ratio_control", "unit_var_control"),
        ("treatment", "ratio_treatment", "unit_var_treatment"),
    ] {
        let num: Vec<f64> = serde_json::from_value(i[arm]["numerator"].clone()).unwrap();
        let den: Vec<f64> = serde_json::from_value(i[arm]["denominator"].clone()).unwrap();
        let s = switchyard_stats::ratio::ratio_summary(
            "/x",
            &switchyard_stats::RatioArm {
                numerator: &num,
                denominator: &den,
            },
        )
        .unwrap();
        assert_close(ratio, s.mean, e[ratio].as_f64().unwrap(), TOLERANCE);
        assert_close(var, s.variance, e[var].as_f64().unwrap(), TOLERANCE);
    }
}

#[test]
fn gb_bayes_mean_flat() {
    let c = case(&cases(), "gb_bayes_mean_flat").clone();
    let i = &c["input"];
    let out = run(
        "bayes",
        json!({"control": i["control"], "treatment": i["treatment"]}),
    );
    check(
        &out,
        &c["expected"],
        &[
            ("posterior_mean", "posterior_mean"),
            ("posterior_sd", "posterior_sd"),
            ("credible_interval", "credible_interval"),
            ("chance_to_win", "chance_to_win"),
            ("risk", "risk_control_treatment"),
        ],
    );
}

#[test]
fn srm_two_arms() {
    let c = case(&cases(), "srm_two_arms").clone();
    let out = run("srm", c["input"].clone());
    check(
        &out,
        &c["expected"],
        &[("chi2", "chi2"), ("p_value", "p_value")],
    );
}

#[test]
fn holm_and_bh_adjust() {
    let cs = cases();
    for (name, method) in [("holm_adjust", "holm"), ("bh_adjust", "bh")] {
        let c = case(&cs, name);
        let out = run(
            "adjust",
            json!({"p_values": c["input"]["p_values"], "method": method}),
        );
        check(&out, &c["expected"], &[("adjusted", "adjusted")]);
    }
}

#[test]
fn kayenta_mw_tiny_and_classification() {
    let c = case(&cases(), "kayenta_mw_tiny_and_classification").clone();
    let out = run("canary-judge", c["input"].clone());
    check(
        &out,
        &c["expected"],
        &[
            ("ci", "ci"),
            ("estimate", "estimate"),
            ("bounds", "bounds"),
            ("mean_ratio", "mean_ratio"),
            ("classification", "classification"),
        ],
    );
}

#[test]
fn welch_ttest_raw() {
    let c = case(&cases(), "welch_ttest_raw").clone();
    let i = &c["input"];
    let e = &c["expected"];
    let out = run(
        "ttest",
        json!({"control": i["control"], "treatment": i["treatment"]}),
    );
    check(
        &out,
        e,
        &[
            ("statistic", "t"),
            ("df", "df"),
            ("p_value", "p_value"),
            ("ci", "ci95"),
        ],
    );
    let control: Vec<f64> = serde_json::from_value(i["control"].clone()).unwrap();
    let treatment: Vec<f64> = serde_json::from_value(i["treatment"].clone()).unwrap();
    let s = switchyard_stats::t_test::student_t_test(
        &switchyard_stats::ArmSummary::from_samples("/control", &control).unwrap(),
        &switchyard_stats::ArmSummary::from_samples("/treatment", &treatment).unwrap(),
        switchyard_stats::Alternative::TwoSided,
        0.05,
    )
    .unwrap();
    assert_close(
        "student t",
        s.statistic,
        e["student_t_equal_var"].as_f64().unwrap(),
        TOLERANCE,
    );
    assert_close(
        "student p",
        s.p_value,
        e["student_p"].as_f64().unwrap(),
        TOLERANCE,
    );
}

#[test]
fn mann_whitney_r_example_data() {
    let c = case(&cases(), "mann_whitney_R_example_data").clone();
    let i = &c["input"];
    let out = run(
        "mann-whitney",
        json!({"treatment": i["x"], "control": i["y"]}),
    );
    check(
        &out,
        &c["expected"],
        &[
            ("u", "U"),
            ("p_value", "p_asymptotic"),
            ("ci", "ci95"),
            ("estimate", "estimate"),
        ],
    );
}

#[test]
fn two_proportion_tests() {
    let c = case(&cases(), "two_proportion_tests").clone();
    let i = &c["input"];
    let e = &c["expected"];
    let out = run(
        "proportions",
        json!({"control": {"n": i["n"][0], "successes": i["successes"][0]},
               "treatment": {"n": i["n"][1], "successes": i["successes"][1]}}),
    );
    check(
        &out,
        e,
        &[
            ("chi2", "chi2"),
            ("chi2_p_value", "p"),
            ("chi2_yates", "chi2_yates"),
            ("chi2_yates_p_value", "p_yates"),
            ("z", "z_pooled_150_vs_120"),
        ],
    );
    // The reference interval is control − treatment; ours is treatment − control.
    let ci = &e["ci95_p1_minus_p2"];
    let flipped = json!([-ci[1].as_f64().unwrap(), -ci[0].as_f64().unwrap()]);
    assert_json_close("ci", &out["ci"], &flipped, TOLERANCE);
}

#[test]
fn power_prop_test() {
    let c = case(&cases(), "power_prop_test").clone();
    let e = &c["expected"];
    let cs = &c["input"]["cases"];
    let n1 = run(
        "sample-size",
        json!({"kind": "proportion", "p1": cs[0]["p1"], "p2": cs[0]["p2"],
                                        "power": cs[0]["power"], "alpha": 0.05}),
    );
    assert_json_close("n_per_arm", &n1["n_per_arm"], &e["n_per_arm"], TOLERANCE);
    let p = run(
        "power",
        json!({"kind": "proportion", "p1": cs[1]["p1"], "p2": cs[1]["p2"],
                                 "n_per_arm": cs[1]["n"], "alpha": 0.05}),
    );
    assert_json_close("power", &p["power"], &e["power"], TOLERANCE);
    let n2 = run(
        "sample-size",
        json!({"kind": "proportion", "p1": cs[2]["p1"], "p2": cs[2]["p2"],
                                        "power": cs[2]["power"]}),
    );
    assert_json_close(
        "n_per_arm_2",
        &n2["n_per_arm"],
        &e["n_per_arm_2"],
        TOLERANCE,
    );
}

#[test]
fn distribution_quantiles() {
    let c = case(&cases(), "distribution_quantiles").clone();
    let e = &c["expected"];
    let f = |v: &Value| v.as_f64().unwrap();
    assert_close(
        "norm_ppf 0.975",
        dist::norm_quantile("p", 0.975).unwrap(),
        f(&e["norm_ppf"][0]),
        TOLERANCE,
    );
    assert_close(
        "norm_ppf 0.8",
        dist::norm_quantile("p", 0.8).unwrap(),
        f(&e["norm_ppf"][1]),
        TOLERANCE,
    );
    assert_close("norm_sf", dist::norm_sf(3.0), f(&e["norm_sf"]), TOLERANCE);
    assert_close(
        "t_ppf",
        dist::t_quantile("p", 0.975, 10.0).unwrap(),
        f(&e["t_ppf"]),
        TOLERANCE,
    );
    assert_close(
        "t_ppf_df3",
        dist::t_quantile("p", 0.975, 3.0).unwrap(),
        f(&e["t_ppf_df3"]),
        TOLERANCE,
    );
    assert_close(
        "chi2_sf",
        dist::chi2_sf(3.84, 1.0).unwrap(),
        f(&e["chi2_sf"]),
        TOLERANCE,
    );
    assert_close(
        "beta_cdf",
        dist::beta_cdf(0.3, 51.0, 49.0).unwrap(),
        f(&e["beta_cdf"]),
        TOLERANCE,
    );
}

#[test]
fn eppo_confidence_sequence_multiplier() {
    let c = case(&cases(), "eppo_confidence_sequence_multiplier").clone();
    let e = &c["expected"];
    let rho = confidence_sequence::eppo_rho(0.95, 10000.0);
    assert_close("rho", rho, e["rho"].as_f64().unwrap(), TOLERANCE);
    let b1 = confidence_sequence::eppo_multiplier(10000.0, 0.95, rho);
    let b2 = confidence_sequence::eppo_multiplier(2000.0, 0.95, rho);
    assert_close("B_t10000", b1, e["B_t10000"].as_f64().unwrap(), TOLERANCE);
    assert_close("B_t2000", b2, e["B_t2000"].as_f64().unwrap(), TOLERANCE);
}

#[test]
fn every_public_case_is_covered() {
    let covered = [
        "gb_welch_mean_absolute",
        "gb_binomial_relative",
        "gb_sequential_absolute_N5000",
        "cuped_absolute_rawdata",
        "ratio_metric_delta_method_absolute",
        "gb_bayes_mean_flat",
        "srm_two_arms",
        "holm_adjust",
        "bh_adjust",
        "kayenta_mw_tiny_and_classification",
        "welch_ttest_raw",
        "mann_whitney_R_example_data",
        "two_proportion_tests",
        "power_prop_test",
        "distribution_quantiles",
        "eppo_confidence_sequence_multiplier",
    ];
    for c in cases() {
        let name = c["name"].as_str().unwrap();
        assert!(covered.contains(&name), "golden case {name} has no test");
    }
}
