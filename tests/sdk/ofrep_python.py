"""The Python OFREP provider (openfeature-provider-ofrep), unmodified, pointed at a Switchyard
daemon with an SDK key: every case of expectations.json. Exits 1 listing every difference."""

import json
import os
import sys
from pathlib import Path

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

expectations = json.loads((Path(__file__).parent / "expectations.json").read_text())
key = os.environ["SWITCHYARD_SDK_KEY"]
api.set_provider(
    OFREPProvider(
        os.environ["SWITCHYARD_API"],
        headers_factory=lambda: {"Authorization": f"Bearer {key}"},
    )
)
client = api.get_client()
methods = {
    "boolean": client.get_boolean_details,
    "string": client.get_string_details,
    "number": client.get_float_details,
    "object": client.get_object_details,
}

problems = []
for case in expectations["cases"]:
    attributes = dict(expectations["contexts"][case["context"]])
    context = EvaluationContext(attributes.pop("targetingKey"), attributes)
    method = methods[case["type"]]
    if case["type"] == "number" and isinstance(case["value"], int):
        method = client.get_integer_details
    details = method(case["flag"], case["default"], context)
    label = f"python provider {case['flag']} ({case['type']}, {case['context']})"
    if details.value != case["value"]:
        problems.append(f"{label}: value {details.value!r} != {case['value']!r}")
    if "variant" in case and details.variant != case["variant"]:
        problems.append(f"{label}: variant {details.variant!r} != {case['variant']!r}")
    if "reason" in case and str(getattr(details.reason, "value", details.reason)) != case["reason"]:
        problems.append(f"{label}: reason {details.reason!r} != {case['reason']!r}")
    if "errorCode" in case:
        code = getattr(details.error_code, "value", details.error_code)
        if code != case["errorCode"]:
            problems.append(f"{label}: error code {code!r} != {case['errorCode']!r}")

checked = len(expectations["cases"])
print(f"python OFREP provider: {checked - len(problems)}/{checked} cases pass")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
