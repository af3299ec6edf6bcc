"""Validates CDEvents against the specification's JSON schemas (v0.4.1, in ./schemas).

Reads a JSON array of CloudEvents (structured mode) on stdin; each one's `data` is the CDEvent,
checked against the schema its `context.type` names, with format checks on. Prints one line
per event and exits 1 when any does not validate.
"""

import json
import pathlib
import sys

import jsonschema
from referencing import Registry, Resource

HERE = pathlib.Path(__file__).parent / "schemas"
SCHEMAS = {
    "dev.cdevents.service.deployed.0.2.0": "servicedeployed.json",
    "dev.cdevents.service.upgraded.0.2.0": "serviceupgraded.json",
    "dev.cdevents.service.rolledback.0.2.0": "servicerolledback.json",
    "dev.cdevents.pipelinerun.started.0.2.0": "pipelinerunstarted.json",
    "dev.cdevents.pipelinerun.finished.0.2.0": "pipelinerunfinished.json",
}


def registry():
    resources = []
    for path in sorted(HERE.rglob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def main():
    events = json.load(sys.stdin)
    reg = registry()
    bad = 0
    for event in events:
        cdevent = event.get("data", {})
        kind = cdevent.get("context", {}).get("type")
        if event.get("type") != kind or event.get("specversion") != "1.0":
            print(f"NOT A CLOUDEVENT OF ITS CDEVENT: {json.dumps(event)}")
            bad += 1
            continue
        name = SCHEMAS.get(kind)
        if name is None:
            print(f"UNKNOWN TYPE {kind}")
            bad += 1
            continue
        schema = json.loads((HERE / name).read_text())
        validator = jsonschema.Draft202012Validator(
            schema,
            registry=reg,
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        errors = sorted(validator.iter_errors(cdevent), key=lambda e: list(e.path))
        if errors:
            bad += 1
            for e in errors:
                print(f"INVALID {kind} at /{'/'.join(map(str, e.path))}: {e.message}")
        else:
            print(f"valid {kind} {cdevent['context']['id']}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
