#!/usr/bin/env python3
"""The scenario grid as the Markdown tables of docs/benchmarks.md.

    switchyard sim canary --grid --runs 200 --duration 1800 --json > grid.json
    python3 bench/judge/grid.py grid.json

Prints one row per cell (the fixed-split judges side by side, ours first), then one row per
scenario comparing the adaptive canary with the fixed schedules (5 % and 20 %), and the cells
where a target of docs/decisions.md is missed.
"""

import json
import sys


def describe(c):
    text = f"{c['rps']:g} rps, {c['weight']:g} %: "
    if c["canary_latency_ms"] != c["baseline_latency_ms"]:
        text += f"latency ×{c['canary_latency_ms'] / c['baseline_latency_ms']:g}"
    else:
        text += f"{c['baseline_error'] * 100:g}→{c['canary_error'] * 100:g} %"
    if c["tail_share"] > 0:
        text += f", {c['tail_share'] * 100:g} % 20× slower"
    if c["bursts"] > 0:
        text += f", {c['bursts']:g} bursts/h"
    if c["diurnal"] > 0:
        text += f", traffic ±{c['diurnal'] * 100:g} %"
    return text


def when(j):
    if j["median_detection_s"] is None:
        return "never"
    return f"{j['median_detection_s']:.0f} s ({j['rollback_rate'] * 100:.0f} %)"


def rule(j):
    return f"{when(j)}, A/A {j['aa_rollback_rate'] * 100:.0f} %, bad {j['mean_bad_requests']:.1f}"


def faster(ours, other):
    """`other` is no more often wrong than ours and rolls back more runs, or as many sooner."""
    if other["aa_rollback_rate"] > ours["aa_rollback_rate"]:
        return False
    if other["rollback_rate"] != ours["rollback_rate"]:
        return other["rollback_rate"] > ours["rollback_rate"]
    a, b = other["median_detection_s"], ours["median_detection_s"]
    return a is not None and b is not None and a < b


def main():
    cells = json.load(open(sys.argv[1]))["cells"]
    print("| cell | switchyard: median (rolled back) | A/A | bad req | argo-1m | flagger | kayenta | comparable rules (A/A ≤ ours) faster than ours |")
    print("|---|---|---|---|---|---|---|---|")
    misses, false_rollbacks = [], []
    for cell in cells:
        j = {x["name"]: x for x in cell["judges"]}
        ours = j["switchyard"]
        quicker = [
            f"{n} {when(j[n])}" for n in ("argo", "argo-1m", "flagger", "kayenta") if faster(ours, j[n])
        ]
        if quicker:
            misses.append(describe(cell["config"]))
        for name in ("switchyard", "adaptive"):
            if j[name]["aa_rollback_rate"] > 0.01:
                false_rollbacks.append(f"{name} in {describe(cell['config'])}")
        print(
            f"| {describe(cell['config'])} | {when(ours)} | {ours['aa_rollback_rate'] * 100:.1f} % "
            f"| {ours['mean_bad_requests']:.1f} | {rule(j['argo-1m'])} | {rule(j['flagger'])} "
            f"| {rule(j['kayenta'])} | {', '.join(quicker) or '—'} |"
        )
    print()
    print("| scenario | fixed 5 %: median (rolled back), bad req | fixed 20 % | adaptive: median (rolled back), bad req, A/A | fewer bad requests than the best comparable fixed schedule |")
    print("|---|---|---|---|---|")
    per_weight = len(cells) // 6
    bad_misses = []
    for rps in range(3):
        for s in range(per_weight):
            five = {x["name"]: x for x in cells[rps * 2 * per_weight + s]["judges"]}
            twenty = {x["name"]: x for x in cells[rps * 2 * per_weight + per_weight + s]["judges"]}
            config = cells[rps * 2 * per_weight + s]["config"]
            adaptive = five["adaptive"]
            comparable = [
                f["mean_bad_requests"]
                for f in (five["switchyard"], twenty["switchyard"])
                if f["rollback_rate"] >= adaptive["rollback_rate"]
            ]
            if config["canary_error"] <= config["baseline_error"]:
                verdict = "no error regression (latency is judged, not budgeted)"
            elif not comparable:
                verdict = "yes: no fixed schedule rolls back as often"
            elif adaptive["mean_bad_requests"] < min(comparable):
                verdict = f"yes ({adaptive['mean_bad_requests']:.1f} < {min(comparable):.1f})"
            else:
                verdict = f"**no** ({adaptive['mean_bad_requests']:.1f} ≥ {min(comparable):.1f})"
                bad_misses.append(describe(config))
            scenario = describe(config).split(": ", 1)[1]
            fixed = lambda j: f"{when(j)}, {j['mean_bad_requests']:.1f}"
            print(
                f"| {config['rps']:g} rps: {scenario} | {fixed(five['switchyard'])} | {fixed(twenty['switchyard'])} "
                f"| {when(adaptive)}, {adaptive['mean_bad_requests']:.1f}, {adaptive['aa_rollback_rate'] * 100:.1f} % | {verdict} |"
            )
    print()
    print(f"A/A above 1 %: {false_rollbacks or 'none'}")
    print(f"a comparable rule faster than ours: {len(misses)} of {len(cells)}: {misses}")
    print(f"adaptive not fewer bad requests: {bad_misses}")


if __name__ == "__main__":
    main()
