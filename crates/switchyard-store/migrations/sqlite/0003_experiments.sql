-- Experiments, schema 3: applied Experiment manifests, their units, per-variant aggregates,
-- idempotency keys of ingested events and snapshots of results over time.

-- Applied Experiment manifests. `stopped_json` is NULL while the experiment runs.
CREATE TABLE experiments (
    name          TEXT     NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    updated_at    BIGINT   NOT NULL,
    started_at    BIGINT   NOT NULL,
    stopped_json  TEXT     NULL
);

-- One row per unit an event named. `variant` and `exposed_at` are NULL until its exposure;
-- `values_json` maps each metric to the unit's value {x, y, c}.
CREATE TABLE experiment_units (
    experiment    TEXT     NOT NULL REFERENCES experiments (name),
    unit          TEXT     NOT NULL,
    variant       TEXT     NULL,
    exposed_at    BIGINT   NULL,
    values_json   TEXT     NOT NULL,
    PRIMARY KEY (experiment, unit)
);

-- Per variant: exposed units, and per metric the sufficient statistics of their values.
CREATE TABLE experiment_variants (
    experiment    TEXT     NOT NULL REFERENCES experiments (name),
    variant       TEXT     NOT NULL,
    units         BIGINT   NOT NULL CHECK (units >= 0),
    metrics_json  TEXT     NOT NULL,
    PRIMARY KEY (experiment, variant)
);

-- Idempotency keys of every counted event; the event itself when raw events are kept.
CREATE TABLE experiment_event_ids (
    experiment    TEXT     NOT NULL REFERENCES experiments (name),
    id            TEXT     NOT NULL,
    received_at   BIGINT   NOT NULL,
    event_json    TEXT     NULL,
    PRIMARY KEY (experiment, id)
);

-- Results over time, for the report's cumulative lift plot.
CREATE TABLE experiment_snapshots (
    experiment    TEXT     NOT NULL REFERENCES experiments (name),
    at            BIGINT   NOT NULL,
    snapshot_json TEXT     NOT NULL,
    PRIMARY KEY (experiment, at)
);
