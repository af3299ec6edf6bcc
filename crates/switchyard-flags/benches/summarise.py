#!/usr/bin/env python3
"""Prints the Markdown table of ns per evaluation from criterion's estimates (run after the bench)."""
import json, math, os, sys

root = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "target", "criterion")
spec_dir = os.path.join(os.path.dirname(__file__), "..", "tests", "unleash-client-specification")
rows, ratios = [], []
for file in json.load(open(os.path.join(spec_dir, "index.json"))):
    name = file[:-5]
    spec = json.load(open(os.path.join(spec_dir, file)))
    cases = len(spec.get("tests", [])) + len(spec.get("variantTests", []))
    ns = {}
    for engine in ("switchyard", "yggdrasil"):
        path = os.path.join(root, name, engine, "new", "estimates.json")
        ns[engine] = json.load(open(path))["median"]["point_estimate"] / cases
    ratio = ns["switchyard"] / ns["yggdrasil"]
    ratios.append(ratio)
    rows.append(f"| {name} | {cases} | {ns['switchyard']:.0f} | {ns['yggdrasil']:.0f} | {ratio:.2f} |")
print("| flag set | cases | switchyard ns/eval | yggdrasil ns/eval | ratio |")
print("|---|---:|---:|---:|---:|")
print("\n".join(rows))
print(f"| **geometric mean** | | | | **{math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}** |")
