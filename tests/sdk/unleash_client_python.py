"""Unleash's Python server SDK (UnleashClient), unmodified, against Switchyard's client API with an
SDK key: every case of the Unleash client specification, each file's flags imported into the
daemon and served back as Unleash features; then the SDK's registration and usage counts.
tests/sdk/unleash-spec.mjs does the same for the Node SDK."""

import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from UnleashClient import UnleashClient

API = os.environ["SWITCHYARD_API"]
ADMIN = os.environ["SWITCHYARD_ADMIN_TOKEN"]
SPEC = os.environ["SWITCHYARD_UNLEASH_SPEC"]
APP = "switchyard-sdk-tests-python"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        API + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def replace_flags(state):
    """Deletes every flag (a flag others depend on goes once they are gone), imports `state`."""
    keys = [f["key"] for f in call("GET", "/api/v1/flags")[1]["flags"]]
    while keys:
        left = [
            k
            for k in keys
            if call("DELETE", "/api/v1/flags/" + urllib.parse.quote(k, safe=""), {"reason": "sdk tests"})[0]
            != 200
        ]
        if len(left) == len(keys):
            raise RuntimeError(f"cannot delete flags {left}")
        keys = left
    status, body = call(
        "PUT",
        "/api/v1/flags",
        {"format": "unleash", "content": json.dumps(state), "reason": "sdk tests"},
    )
    if status != 200:
        raise RuntimeError(f"import failed: {body}")


def same_variant(got, expected):
    return (
        got.get("name") == expected["name"]
        and got.get("enabled") == expected["enabled"]
        and ("feature_enabled" not in expected or got.get("feature_enabled") == expected["feature_enabled"])
        and got.get("payload") == expected.get("payload")
    )


def client(instance_id):
    c = UnleashClient(
        url=API + "/api",
        app_name=APP,
        instance_id=instance_id,
        custom_headers={"Authorization": os.environ["SWITCHYARD_SDK_KEY"]},
        refresh_interval=60,
        metrics_interval=1,
        cache_directory=tempfile.mkdtemp(),
    )
    c.initialize_client()
    return c


def main():
    with open(os.path.join(SPEC, "index.json"), encoding="utf-8") as f:
        files = json.load(f)
    problems = []
    cases = 0
    last = None
    for name in files:
        with open(os.path.join(SPEC, name), encoding="utf-8") as f:
            spec = json.load(f)
        replace_flags(spec["state"])
        c = client(f"spec-{name}")
        for t in spec.get("tests", []):
            cases += 1
            got = c.is_enabled(t["toggleName"], t["context"])
            if got != t["expectedResult"]:
                problems.append(f"{name}: {t['description']}: is_enabled = {got}, expected {t['expectedResult']}")
        for t in spec.get("variantTests", []):
            cases += 1
            got = c.get_variant(t["toggleName"], t["context"])
            if not same_variant(got, t["expectedResult"]):
                problems.append(f"{name}: {t['description']}: get_variant = {got}, expected {t['expectedResult']}")
        if last is not None:
            last.destroy()
        last = c
    # Metrics go every second; wait (bounded) until the last instance's counts arrive.
    deadline = time.monotonic() + 60
    instance = None
    while time.monotonic() < deadline:
        seen = [i for i in call("GET", "/api/v1/flags/clients")[1]["instances"] if i["appName"] == APP]
        instance = next((i for i in seen if i["instanceId"].startswith("spec-22")), None)
        if instance and instance["registered"] and instance["toggles"]:
            break
        time.sleep(0.2)
    last.destroy()
    if not (instance and instance["registered"] and instance.get("sdkVersion")):
        problems.append(f"registration not recorded: {instance}")
    elif not instance["toggles"]:
        problems.append(f"usage counts not recorded: {instance}")
    print(f"python UnleashClient: {cases} specification cases, {len(problems)} problems")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


main()
