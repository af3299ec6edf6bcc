#!/usr/bin/env python3
"""Generates golden-extra.json: reference values for switchyard-stats computed
with scipy / statsmodels / numpy and, for R-only semantics (wilcox.test
conf.int, power.prop.test, power.t.test, p.adjust), with Rscript.

Reproduce (outside the repo):
    python3 -m venv /tmp/statsenv
    /tmp/statsenv/bin/pip install scipy statsmodels numpy
    apt-get install -y r-base-core          # Debian's R (4.2.2 when generated)
    /tmp/statsenv/bin/python generate_extra.py > golden-extra.json

Each case: {name, method, input, expected, source}; `method` is the
`run_method` name and `input`/`expected` use the contract's field names.
"""
import json
import subprocess

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

VERSIONS = f"scipy {scipy.__version__}, statsmodels {statsmodels.__version__}, numpy {np.__version__}"
RNG = np.random.default_rng(20240601)
CASES = []


def add(name, method, input_, expected, source, tolerance=None):
    case = {"name": name, "method": method, "input": input_, "expected": expected,
            "source": f"{source} [{VERSIONS}]"}
    if tolerance is not None:
        case["tolerance"] = tolerance
    CASES.append(case)


def r(code):
    """Runs R code that prints one JSON object; returns it parsed."""
    out = subprocess.run(["Rscript", "-e", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def rvec(xs):
    return "c(" + ",".join(repr(float(x)) for x in xs) + ")"


def rnd(xs, digits=3):
    return [round(float(x), digits) for x in xs]


R_VERSION = r('cat(sprintf("{\\"v\\": \\"%s\\"}", R.version.string))')["v"]

# ---------------------------------------------------------------- Welch t tests
for k, (nc, nt, mc, mt, sc, st) in enumerate([(12, 15, 10.0, 11.0, 2.0, 3.0),
                                              (40, 35, 0.0, 0.3, 1.0, 1.0),
                                              (6, 9, 100.0, 95.0, 8.0, 15.0)]):
    c = rnd(RNG.normal(mc, sc, nc)); t = rnd(RNG.normal(mt, st, nt))
    for alt, scipy_alt in [("two-sided", "two-sided"), ("greater", "greater"), ("less", "less")]:
        res = stats.ttest_ind(t, c, equal_var=False, alternative=scipy_alt)
        ci = res.confidence_interval(0.95)
        lo = None if np.isinf(ci.low) else float(ci.low)
        hi = None if np.isinf(ci.high) else float(ci.high)
        add(f"welch_raw_{k}_{alt}", "ttest",
            {"control": c, "treatment": t, "alternative": alt},
            {"statistic": float(res.statistic), "p_value": float(res.pvalue), "df": float(res.df),
             "ci": [lo, hi], "point_estimate": float(np.mean(t) - np.mean(c))},
            f"scipy.stats.ttest_ind(treatment, control, equal_var=False, alternative='{scipy_alt}')"
            " and .confidence_interval(0.95)")

for k, (c, t) in enumerate([({"n": 1200, "mean": 3.2, "variance": 4.1}, {"n": 1150, "mean": 3.35, "variance": 4.6}),
                            ({"n": 30, "mean": -1.5, "variance": 0.8}, {"n": 45, "mean": -1.1, "variance": 2.2})]):
    res = stats.ttest_ind_from_stats(t["mean"], np.sqrt(t["variance"]), t["n"], c["mean"], np.sqrt(c["variance"]),
                                     c["n"], equal_var=False)
    a = c["variance"] / c["n"]; b = t["variance"] / t["n"]
    df = (a + b) ** 2 / (a * a / (c["n"] - 1) + b * b / (t["n"] - 1))
    se = np.sqrt(a + b); pe = t["mean"] - c["mean"]; h = stats.t.ppf(0.95, df) * se
    add(f"welch_moments_{k}_alpha10", "ttest", {"control": c, "treatment": t, "alpha": 0.1},
        {"statistic": float(res.statistic), "p_value": float(res.pvalue), "df": float(df),
         "std_error": float(se), "ci": [float(pe - h), float(pe + h)]},
        "scipy.stats.ttest_ind_from_stats(equal_var=False); CI pe ± scipy.stats.t.ppf(0.95, welch_df)·se")

for k, (c, t) in enumerate([({"n": 5000, "successes": 400}, {"n": 5100, "successes": 459}),
                            ({"n": 800, "successes": 120}, {"n": 790, "successes": 101})]):
    pc = c["successes"] / c["n"]; pt = t["successes"] / t["n"]
    res = stats.ttest_ind_from_stats(pt, np.sqrt(pt * (1 - pt)), t["n"], pc, np.sqrt(pc * (1 - pc)), c["n"],
                                     equal_var=False)
    add(f"welch_proportions_{k}", "ttest", {"control": c, "treatment": t},
        {"statistic": float(res.statistic), "p_value": float(res.pvalue), "point_estimate": pt - pc},
        "scipy.stats.ttest_ind_from_stats with std = sqrt(p(1-p)) (no n-1), equal_var=False")

def relative(c, t, alpha=0.05):
    mc, vc, nc = c; mt, vt, nt = t
    pe = (mt - mc) / abs(mc)
    var = vt / (mc ** 2 * nt) + vc * mt ** 2 / (mc ** 4 * nc)
    a = vc / nc; b = vt / nt
    df = (a + b) ** 2 / (a * a / (nc - 1) + b * b / (nt - 1))
    se = np.sqrt(var); h = stats.t.ppf(1 - alpha / 2, df) * se
    return pe, se, df, [pe - h, pe + h], 2 * stats.t.sf(abs(pe / se), df)

for k, (c, t) in enumerate([({"n": 3407, "sum": 1396.87, "sum_squares": 52377.9767},
                             {"n": 3461, "sum": 2422.7, "sum_squares": 134698.29}),
                            ({"n": 500, "sum": 2600.0, "sum_squares": 15500.0},
                             {"n": 520, "sum": 2850.0, "sum_squares": 17000.0})]):
    def mv(a):
        m = a["sum"] / a["n"]; return m, (a["sum_squares"] - a["sum"] ** 2 / a["n"]) / (a["n"] - 1), a["n"]
    pe, se, df, ci, p = relative(mv(c), mv(t))
    add(f"welch_relative_sums_{k}", "ttest", {"control": c, "treatment": t, "difference": "relative"},
        {"point_estimate": pe, "std_error": float(se), "df": float(df), "ci": [float(x) for x in ci],
         "p_value": float(p)},
        "numpy delta method var = v_t/(c^2 n_t) + v_c t^2/(c^4 n_c); Welch df; scipy.stats.t.ppf/sf")

# ---------------------------------------------------------------- proportions
for k, (sc, nc, st, nt) in enumerate([(45, 500, 62, 510), (300, 10000, 355, 10050),
                                      (12, 80, 4, 75), (900, 1000, 880, 1000)]):
    table = np.array([[sc, nc - sc], [st, nt - st]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    chi2y, py, _, _ = stats.chi2_contingency(table, correction=True)
    z, pz = proportions_ztest([st, sc], [nt, nc])
    lo, hi = confint_proportions_2indep(st, nt, sc, nc, method="wald", compare="diff")
    add(f"proportions_{k}", "proportions",
        {"control": {"n": nc, "successes": sc}, "treatment": {"n": nt, "successes": st}},
        {"z": float(z), "p_value": float(pz), "chi2": float(chi2), "chi2_p_value": float(p),
         "chi2_yates": float(chi2y), "chi2_yates_p_value": float(py), "ci": [float(lo), float(hi)]},
        "scipy.stats.chi2_contingency(correction=False/True); statsmodels proportions_ztest([s_t, s_c], [n_t, n_c]); "
        "statsmodels confint_proportions_2indep(s_t, n_t, s_c, n_c, method='wald', compare='diff')")

# ---------------------------------------------------------------- Mann-Whitney (R)
mw_sets = [
    (rnd(RNG.normal(0, 1, 25), 2), rnd(RNG.normal(0.5, 1, 30), 2), 0.95),
    (rnd(RNG.integers(0, 6, 40), 0), rnd(RNG.integers(1, 7, 35), 0), 0.95),
    (rnd(RNG.exponential(2.0, 60), 1), rnd(RNG.exponential(2.6, 55), 1), 0.9),
    (rnd(RNG.lognormal(3, 0.5, 15), 2), rnd(RNG.lognormal(3.2, 0.5, 12), 2), 0.99),
    (rnd(RNG.normal(100, 10, 200), 1), rnd(RNG.normal(101, 10, 180), 1), 0.98),
]
for k, (control, treatment, conf) in enumerate(mw_sets):
    out = r(f"""x <- {rvec(treatment)}; y <- {rvec(control)}
w <- wilcox.test(x, y, conf.int=TRUE, exact=FALSE, correct=TRUE, conf.level={conf})
cat(sprintf('{{"u": %.17g, "p": %.17g, "est": %.17g, "lo": %.17g, "hi": %.17g}}',
    w$statistic, w$p.value, w$estimate, w$conf.int[1], w$conf.int[2]))""")
    sp = stats.mannwhitneyu(treatment, control, use_continuity=True, alternative="two-sided", method="asymptotic")
    assert abs(sp.pvalue - out["p"]) < 1e-10 * max(1, out["p"]) and sp.statistic == out["u"]
    add(f"mann_whitney_{k}", "mann-whitney",
        {"control": control, "treatment": treatment, "confidence_level": conf},
        {"u": out["u"], "p_value": out["p"], "estimate": out["est"], "ci": [out["lo"], out["hi"]]},
        f"{R_VERSION}: wilcox.test(x=treatment, y=control, conf.int=TRUE, exact=FALSE, correct=TRUE, "
        f"conf.level={conf}); U and p cross-checked with scipy.stats.mannwhitneyu(method='asymptotic')")

# ---------------------------------------------------------------- canary judge (R interval + Kayenta rules)
for k, (control, experiment, direction, tol) in enumerate([
        (rnd(RNG.normal(100, 5, 40), 2), rnd(RNG.normal(112, 5, 40), 2), "either", 0.25),
        (rnd(RNG.normal(50, 4, 30), 2), rnd(RNG.normal(44, 4, 30), 2), "decrease", 0.25),
        (rnd(RNG.normal(50, 4, 30), 2), rnd(RNG.normal(44, 4, 30), 2), "increase", 0.25),
        (rnd(RNG.normal(10, 1, 50), 2), rnd(RNG.normal(10.1, 1, 50), 2), "either", 0.25)]):
    out = r(f"""x <- {rvec(experiment)}; y <- {rvec(control)}
w <- wilcox.test(x, y, conf.int=TRUE, exact=FALSE, correct=TRUE, conf.level=0.98)
cat(sprintf('{{"est": %.17g, "lo": %.17g, "hi": %.17g}}', w$estimate, w$conf.int[1], w$conf.int[2]))""")
    band = tol * abs(out["est"]); ratio = float(np.mean(experiment) / np.mean(control))
    if direction in ("increase", "either") and out["lo"] > band and ratio >= 1.0:
        cls = "High"
    elif direction in ("decrease", "either") and out["hi"] < -band and ratio <= 1.0:
        cls = "Low"
    else:
        cls = "Pass"
    add(f"canary_judge_{k}", "canary-judge",
        {"control": control, "experiment": experiment, "direction": direction},
        {"classification": cls, "estimate": out["est"], "ci": [out["lo"], out["hi"]], "mean_ratio": ratio,
         "bounds": [-band, band]},
        f"{R_VERSION}: wilcox.test(experiment, control, conf.int=TRUE, exact=FALSE, conf.level=0.98); "
        "classification by Kayenta MannWhitneyClassifier rules (tolerance 0.25, allowed ratio 1.0) in Python")

# ---------------------------------------------------------------- SRM
for k, (obs, w) in enumerate([([5050, 4950], [0.5, 0.5]), ([1000, 1100, 980], [1, 1, 1]),
                              ([812, 190], [0.8, 0.2]), ([300, 290, 310, 250], [0.25, 0.25, 0.25, 0.25])]):
    wn = np.array(w, float) / sum(w)
    res = stats.chisquare(obs, f_exp=wn * sum(obs))
    add(f"srm_{k}", "srm", {"observed": obs, "weights": w},
        {"chi2": float(res.statistic), "p_value": float(res.pvalue)},
        "scipy.stats.chisquare(observed, f_exp=weights/sum(weights)*sum(observed))")

# ---------------------------------------------------------------- p-value adjustment
for k, ps in enumerate([[0.01, 0.02, 0.03, 0.04, 0.05], [0.2, 0.001, 0.04, 0.04, 0.9, 0.013, 0.5]]):
    for ours, sm, rname in [("bonferroni", "bonferroni", "bonferroni"), ("holm", "holm", "holm"),
                            ("bh", "fdr_bh", "BH"), ("by", "fdr_by", "BY")]:
        adj = multipletests(ps, method=sm)[1]
        rr = r(f"cat(sprintf('{{\"a\": [%s]}}', paste(sprintf('%.17g', p.adjust({rvec(ps)}, method='{rname}')), collapse=',')))")
        assert np.allclose(adj, rr["a"], rtol=1e-12)
        add(f"adjust_{ours}_{k}", "adjust", {"p_values": ps, "method": ours}, {"adjusted": [float(a) for a in adj]},
            f"statsmodels multipletests(p, method='{sm}'); equals {R_VERSION} p.adjust(p, method='{rname}')")

# ---------------------------------------------------------------- power (R)
for k, (p1, p2, pw) in enumerate([(0.2, 0.25, 0.9), (0.5, 0.52, 0.8), (0.01, 0.015, 0.8)]):
    out = r(f"cat(sprintf('{{\"n\": %.17g}}', power.prop.test(p1={p1}, p2={p2}, power={pw}, sig.level=0.05, tol=1e-12)$n))")
    add(f"power_prop_n_{k}", "sample-size", {"kind": "proportion", "p1": p1, "p2": p2, "power": pw},
        {"n_per_arm": out["n"]}, f"{R_VERSION}: power.prop.test(p1={p1}, p2={p2}, power={pw}, sig.level=0.05, tol=1e-12)$n")
out = r("cat(sprintf('{\"p\": %.17g}', power.prop.test(n=2500, p1=0.3, p2=0.33, sig.level=0.01)$power))")
add("power_prop_power", "power", {"kind": "proportion", "p1": 0.3, "p2": 0.33, "n_per_arm": 2500, "alpha": 0.01},
    {"power": out["p"]}, f"{R_VERSION}: power.prop.test(n=2500, p1=0.3, p2=0.33, sig.level=0.01)$power")
for k, (delta, sd, pw, alpha) in enumerate([(1.0, 2.0, 0.8, 0.05), (0.2, 1.0, 0.9, 0.05), (5.0, 3.0, 0.95, 0.01)]):
    out = r(f"cat(sprintf('{{\"n\": %.17g}}', power.t.test(delta={delta}, sd={sd}, power={pw}, sig.level={alpha}, tol=1e-12)$n))")
    add(f"power_t_n_{k}", "sample-size", {"kind": "mean", "delta": delta, "sd": sd, "power": pw, "alpha": alpha},
        {"n_per_arm": out["n"]},
        f"{R_VERSION}: power.t.test(delta={delta}, sd={sd}, power={pw}, sig.level={alpha}, tol=1e-12)$n")
for k, (n, delta, sd) in enumerate([(20, 1.0, 1.5), (150, 0.25, 1.0)]):
    out = r(f"cat(sprintf('{{\"p\": %.17g}}', power.t.test(n={n}, delta={delta}, sd={sd}, sig.level=0.05)$power))")
    add(f"power_t_power_{k}", "power", {"kind": "mean", "delta": delta, "sd": sd, "n_per_arm": n},
        {"power": out["p"]}, f"{R_VERSION}: power.t.test(n={n}, delta={delta}, sd={sd}, sig.level=0.05)$power")
out = r("cat(sprintf('{\"d\": %.17g}', power.t.test(n=50, sd=2, power=0.8, sig.level=0.05, tol=1e-12)$delta))")
add("power_t_delta", "power", {"kind": "mean", "sd": 2.0, "n_per_arm": 50, "power": 0.8},
    {"delta": out["d"]}, f"{R_VERSION}: power.t.test(n=50, sd=2, power=0.8, sig.level=0.05, tol=1e-12)$delta")

# ---------------------------------------------------------------- GrowthBook variance-based planner
def gb_seq_var(variance, n, alpha, tuning):
    rho = np.sqrt((-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tuning)
    part = 2 * (n * rho ** 2 + 1) * np.log(np.sqrt(n * rho ** 2 + 1) / alpha) / (n * rho) ** 2
    zstar = stats.norm.ppf(1 - alpha / 2)
    return variance * n * part / zstar ** 2

# As packages/shared/src/power/power.ts: the sequential inflation applies to the relative
# variance (power) or the metric variance (MDE) over both arms' units, 2n.
def gb_power(effect, mean, variance, n_total, nvar, alpha, tuning):
    n = n_total / nvar
    mb = mean * (1 + effect)
    v_rel = variance / (mean ** 2 * n) + variance * mb ** 2 / (mean ** 4 * n)
    se = np.sqrt(gb_seq_var(v_rel, 2 * n, alpha, tuning) if tuning else v_rel)
    z = stats.norm.ppf(1 - alpha / 2); s = effect / se
    return 1 - stats.norm.cdf(z - s) + stats.norm.cdf(-z - s)

def gb_mde(power, mean, variance, n_total, nvar, alpha, tuning):
    n = n_total / nvar
    z = stats.norm.ppf(1 - alpha / 2) - stats.norm.ppf(1 - power)
    v = gb_seq_var(variance, 2 * n, alpha, tuning) if tuning else variance
    s2 = v / n; a = 1 - z ** 2 * s2 / mean ** 2; b = -2 * mean; c = mean ** 2 - z ** 2 * s2
    return ((-b + np.sqrt(b * b - 4 * a * c)) / (2 * a) - mean) / mean

for k, (mean, var, n, nv, tuning) in enumerate([(10.0, 25.0, 20000, 2, None), (0.1, 0.09, 50000, 3, 5000.0)]):
    inp = {"mean": mean, "variance": var, "n_total": n, "n_variations": nv}
    if tuning:
        inp["sequential_tuning"] = tuning
    add(f"gb_power_{k}", "power", {**inp, "effect": 0.05},
        {"power": float(gb_power(0.05, mean, var, n, nv, 0.05, tuning))},
        "GrowthBook packages/shared/src/power/power.ts powerEstFrequentist (two-tailed) re-implemented with numpy/scipy.stats.norm")
    add(f"gb_mde_{k}", "power", {**inp, "power": 0.8},
        {"mde_relative": float(gb_mde(0.8, mean, var, n, nv, 0.05, tuning))},
        "GrowthBook packages/shared/src/power/power.ts findMdeFrequentist re-implemented with numpy/scipy.stats.norm")

# ---------------------------------------------------------------- sequential (formulas)
def moments_of(a):
    m = a["sum"] / a["n"]; return m, (a["sum_squares"] - a["sum"] ** 2 / a["n"]) / (a["n"] - 1), a["n"]

for k, (c, t, tuning) in enumerate([({"n": 8000, "sum": 40400.0, "sum_squares": 300000.0},
                                     {"n": 8100, "sum": 41800.0, "sum_squares": 310000.0}, 5000.0),
                                    ({"n": 1500, "sum": 300.0, "sum_squares": 900.0},
                                     {"n": 1400, "sum": 330.0, "sum_squares": 1000.0}, 20000.0)]):
    (mc, vc, nc), (mt, vt, nt) = moments_of(c), moments_of(t)
    pe = mt - mc; se = np.sqrt(vc / nc + vt / nt); n = nc + nt; alpha = 0.05
    rho = np.sqrt((-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tuning)
    h = np.sqrt(se ** 2 * n) * np.sqrt(2 * (n * rho ** 2 + 1) * np.log(np.sqrt(n * rho ** 2 + 1) / alpha) / (n * rho) ** 2)
    st2 = pe ** 2 * n / se ** 2; tr = n * rho ** 2 + 1
    p = min(1.0, 1 / (np.exp(rho ** 2 * st2 / (2 * tr)) / np.sqrt(tr)))
    add(f"sequential_cs_{k}", "sequential", {"control": c, "treatment": t, "tuning": tuning},
        {"point_estimate": pe, "std_error": float(se), "ci": [float(pe - h), float(pe + h)], "p_value": float(p)},
        "GrowthBook gbstats SequentialTwoSidedTTest formulas (rho, halfwidth, e-value p) in numpy")
    # Statsig's documented mSPRT: tau = z^2 (var_t + var_c) / (n_t + n_c), alpha split between
    # the tails; p = 2 / Lambda so that p < alpha exactly when the interval excludes 0.
    tau = stats.norm.ppf(1 - alpha / 2) ** 2 * (vc + vt) / n; v = se ** 2
    hm = np.sqrt(v * (v + tau) / tau * (2 * np.log(2 / alpha) + np.log((v + tau) / v)))
    lam = np.sqrt(v / (v + tau)) * np.exp(tau * pe ** 2 / (2 * v * (v + tau)))
    add(f"sequential_msprt_{k}", "sequential", {"control": c, "treatment": t, "method": "msprt"},
        {"point_estimate": pe, "ci": [float(pe - hm), float(pe + hm)], "p_value": float(min(1.0, 2 / lam))},
        "mSPRT (Johari et al. 2017) as Statsig documents it, tau = z^2 (var_t + var_c)/(n_t + n_c), Lambda and interval in numpy")

# ---------------------------------------------------------------- CUPED / ratio / Bayes (formulas)
pre_c = rnd(RNG.normal(10, 3, 40), 2); post_c = rnd(np.array(pre_c) * 0.8 + RNG.normal(2, 1, 40), 2)
pre_t = rnd(RNG.normal(10, 3, 45), 2); post_t = rnd(np.array(pre_t) * 0.8 + RNG.normal(2.5, 1, 45), 2)
X = np.r_[pre_c, pre_t]; Y = np.r_[post_c, post_t]
theta = np.cov(Y, X)[0, 1] / np.var(X, ddof=1)
def adj(pre, post):
    pre, post = np.array(pre), np.array(post)
    v = np.var(post, ddof=1) + theta ** 2 * np.var(pre, ddof=1) - 2 * theta * np.cov(pre, post)[0, 1]
    return post.mean() - theta * pre.mean(), v, len(pre)
(ac, vc, nc), (at, vt, nt) = adj(pre_c, post_c), adj(pre_t, post_t)
a, b = vc / nc, vt / nt; df = (a + b) ** 2 / (a * a / (nc - 1) + b * b / (nt - 1)); se = np.sqrt(a + b); pe = at - ac
h = stats.t.ppf(0.975, df) * se
add("cuped_absolute_generated", "cuped",
    {"control": {"pre": pre_c, "post": post_c}, "treatment": {"pre": pre_t, "post": post_t}},
    {"theta": float(theta), "point_estimate": float(pe), "std_error": float(se), "df": float(df),
     "ci": [float(pe - h), float(pe + h)], "p_value": float(2 * stats.t.sf(abs(pe / se), df))},
    "numpy: pooled theta = cov(Y,X)/var(X) (ddof=1); adjusted var = var(Y)+theta^2 var(X)-2 theta cov; Welch via scipy.stats.t")
base = np.mean(post_c); cx, cy = np.array(pre_c), np.array(post_c)
g_y = -(pe + base) / base ** 2; g_x = theta / base
var_rel = vt / (base ** 2 * nt) + (g_y ** 2 * np.var(cy, ddof=1) + g_x ** 2 * np.var(cx, ddof=1)
                                   + 2 * g_y * g_x * np.cov(cx, cy)[0, 1]) / nc
lift = pe / abs(base); se_r = np.sqrt(var_rel); hr = stats.t.ppf(0.975, df) * se_r
add("cuped_relative_generated", "cuped",
    {"control": {"pre": pre_c, "post": post_c}, "treatment": {"pre": pre_t, "post": post_t}, "difference": "relative"},
    {"theta": float(theta), "point_estimate": float(lift), "std_error": float(se_r),
     "ci": [float(lift - hr), float(lift + hr)], "p_value": float(2 * stats.t.sf(abs(lift / se_r), df))},
    "numpy delta method of (dY - theta dX)/|mean Y_c| with theta fixed; Welch df of adjusted variances; scipy.stats.t")

num_c = rnd(RNG.poisson(3, 60), 0); den_c = rnd(np.array(num_c) + RNG.poisson(2, 60) + 1, 0)
num_t = rnd(RNG.poisson(3.4, 55), 0); den_t = rnd(np.array(num_t) + RNG.poisson(2, 55) + 1, 0)
def ratio_stats(m, d):
    m, d = np.array(m), np.array(d); mm, md = m.mean(), d.mean()
    v = np.var(m, ddof=1) / md ** 2 + np.var(d, ddof=1) * mm ** 2 / md ** 4 - 2 * np.cov(m, d)[0, 1] * mm / md ** 3
    return mm / md, v, len(m)
pe, se, df, ci, p = relative(ratio_stats(num_c, den_c), ratio_stats(num_t, den_t))
add("ratio_relative_generated", "ratio",
    {"control": {"numerator": num_c, "denominator": den_c}, "treatment": {"numerator": num_t, "denominator": den_t},
     "difference": "relative"},
    {"point_estimate": float(pe), "std_error": float(se), "df": float(df), "ci": [float(x) for x in ci],
     "p_value": float(p)},
    "numpy delta-method ratio variance per arm, relative delta method across arms, Welch df, scipy.stats.t")

c = {"n": 2000, "mean": 5.0, "variance": 9.0}; t = {"n": 2100, "mean": 5.2, "variance": 10.0}
lift = 0.04; var = 10.0 / (25 * 2100) + 9.0 * 5.2 ** 2 / (5 ** 4 * 2000)
pm, pv = 0.0, 0.01
prec = 1 / var + 1 / pv; mu = (lift / var + pm / pv) / prec; sd = np.sqrt(1 / prec)
lt = sd * stats.norm.pdf(mu / sd) - mu * stats.norm.cdf(-mu / sd)
z = stats.norm.ppf(0.975)
add("bayes_normal_prior", "bayes", {"control": c, "treatment": t, "prior": {"mean": pm, "variance": pv}},
    {"posterior_mean": float(mu), "posterior_sd": float(sd), "credible_interval": [float(mu - z * sd), float(mu + z * sd)],
     "chance_to_win": float(stats.norm.cdf(mu / sd)), "risk": [float(lt + mu), float(lt)]},
    "numpy precision-weighted normal posterior of the relative lift; scipy.stats.norm for ppf/cdf/pdf")

print(json.dumps(CASES, indent=1))
