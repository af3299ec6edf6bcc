-- Switchyard state on PostgreSQL, schema 5: the same tables, columns and guarantees as SQLite
-- schemas 1 to 5 (migrations/sqlite), in one file. Versions mean the same on both backends: a
-- later schema is one new file numbered 0006 in each directory.
--
-- What differs from SQLite: identity columns instead of AUTOINCREMENT, trigger functions, text
-- keys in the "C" collation (they sort by code point, as SQLite's BINARY does), TRUNCATE refused
-- as well as UPDATE and DELETE. Timestamps are BIGINT milliseconds since the Unix epoch; *_json
-- columns hold serde_json text.

-- Refuses the change a trigger guards, with the trigger's first argument as the message.
CREATE FUNCTION switchyard_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END;
$$;

-- Applied App manifests and each app's stable release (NULL before its first deploy).
CREATE TABLE apps (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    stable_json   TEXT     NULL,
    updated_at    BIGINT   NOT NULL
);

-- Applied AnalysisTemplate manifests.
CREATE TABLE templates (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    updated_at    BIGINT   NOT NULL
);

-- Rollouts, active or finished. `state_json` belongs to the rollout engine. Identity values are
-- never reused, so "the latest rollout" is the largest id.
CREATE TABLE rollouts (
    id            BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app           TEXT COLLATE "C" NOT NULL REFERENCES apps (name),
    version       TEXT     NOT NULL,
    phase         TEXT     NOT NULL,
    active        BIGINT   NOT NULL CHECK (active IN (0, 1)),
    state_json    TEXT     NOT NULL,
    created_at    BIGINT   NOT NULL,
    updated_at    BIGINT   NOT NULL
);

-- At most one active rollout per app, whatever the code above the store does.
CREATE UNIQUE INDEX rollouts_one_active_per_app ON rollouts (app) WHERE active = 1;
CREATE INDEX rollouts_by_app ON rollouts (app, id);

-- The event log, hash-chained. No foreign keys: the log records what happened and must never
-- refuse history. Ids are assigned by the writer, consecutive from 1, inside the write lock.
CREATE TABLE events (
    id            BIGINT   NOT NULL PRIMARY KEY,
    at            BIGINT   NOT NULL,
    app           TEXT COLLATE "C" NULL,
    rollout       BIGINT   NULL,
    kind          TEXT     NOT NULL,
    actor         TEXT COLLATE "C" NOT NULL,
    reason        TEXT     NOT NULL,
    data_json     TEXT     NOT NULL,
    source        TEXT     NULL,
    prev_hash     TEXT     NULL,
    hash          TEXT     NULL
);
CREATE INDEX events_by_app ON events (app, id);
CREATE INDEX events_by_rollout ON events (rollout, id);
CREATE INDEX events_by_actor ON events (actor, id);

-- Append-only: the log cannot be rewritten through SQL, by Switchyard or by hand.
CREATE TRIGGER events_are_never_updated BEFORE UPDATE ON events FOR EACH ROW
    EXECUTE FUNCTION switchyard_refuse_change('the event log is append-only: events cannot be updated');
CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events FOR EACH ROW
    EXECUTE FUNCTION switchyard_refuse_change('the event log is append-only: events cannot be deleted');
CREATE TRIGGER events_are_never_truncated BEFORE TRUNCATE ON events FOR EACH STATEMENT
    EXECUTE FUNCTION switchyard_refuse_change('the event log is append-only: events cannot be deleted');

-- Feature flags: one JSON document per flag and per segment, in order of first appearance.
CREATE TABLE flag_documents (
    kind          TEXT     NOT NULL CHECK (kind IN ('flag', 'segment')),
    key           TEXT COLLATE "C" NOT NULL,
    document_json TEXT     NOT NULL,
    position      BIGINT   NOT NULL,
    updated_at    BIGINT   NOT NULL,
    PRIMARY KEY (kind, key)
);

-- The flag audit log: ids consecutive from 1 (the writer assigns them), `hash` SHA-256 over the
-- canonical serialisation of the other columns, `prev_hash` the previous entry's.
CREATE TABLE flag_audit (
    id            BIGINT   NOT NULL PRIMARY KEY,
    at            BIGINT   NOT NULL,
    actor         TEXT     NOT NULL,
    reason        TEXT     NOT NULL,
    kind          TEXT     NOT NULL,
    key           TEXT COLLATE "C" NOT NULL,
    before_json   TEXT     NULL,
    after_json    TEXT     NULL,
    prev_hash     TEXT     NOT NULL,
    hash          TEXT     NOT NULL
);
CREATE INDEX flag_audit_by_key ON flag_audit (key, id);

CREATE TRIGGER flag_audit_is_never_updated BEFORE UPDATE ON flag_audit FOR EACH ROW
    EXECUTE FUNCTION switchyard_refuse_change('the flag audit log is append-only: entries cannot be updated');
CREATE TRIGGER flag_audit_is_never_deleted BEFORE DELETE ON flag_audit FOR EACH ROW
    EXECUTE FUNCTION switchyard_refuse_change('the flag audit log is append-only: entries cannot be deleted');
CREATE TRIGGER flag_audit_is_never_truncated BEFORE TRUNCATE ON flag_audit FOR EACH STATEMENT
    EXECUTE FUNCTION switchyard_refuse_change('the flag audit log is append-only: entries cannot be deleted');

-- Applied Experiment manifests. `stopped_json` is NULL while the experiment runs.
CREATE TABLE experiments (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    updated_at    BIGINT   NOT NULL,
    started_at    BIGINT   NOT NULL,
    stopped_json  TEXT     NULL
);

-- One row per unit an event named; `variant` and `exposed_at` NULL until its exposure.
CREATE TABLE experiment_units (
    experiment    TEXT COLLATE "C" NOT NULL REFERENCES experiments (name),
    unit          TEXT COLLATE "C" NOT NULL,
    variant       TEXT     NULL,
    exposed_at    BIGINT   NULL,
    values_json   TEXT     NOT NULL,
    PRIMARY KEY (experiment, unit)
);

-- Per variant: exposed units, and per metric the sufficient statistics of their values.
CREATE TABLE experiment_variants (
    experiment    TEXT COLLATE "C" NOT NULL REFERENCES experiments (name),
    variant       TEXT COLLATE "C" NOT NULL,
    units         BIGINT   NOT NULL CHECK (units >= 0),
    metrics_json  TEXT     NOT NULL,
    PRIMARY KEY (experiment, variant)
);

-- Idempotency keys of every counted event; the event itself when raw events are kept.
CREATE TABLE experiment_event_ids (
    experiment    TEXT COLLATE "C" NOT NULL REFERENCES experiments (name),
    id            TEXT COLLATE "C" NOT NULL,
    received_at   BIGINT   NOT NULL,
    event_json    TEXT     NULL,
    PRIMARY KEY (experiment, id)
);

-- Results over time, for the report's cumulative lift plot.
CREATE TABLE experiment_snapshots (
    experiment    TEXT COLLATE "C" NOT NULL REFERENCES experiments (name),
    at            BIGINT   NOT NULL,
    snapshot_json TEXT     NOT NULL,
    PRIMARY KEY (experiment, at)
);

-- API tokens: only the SHA-256 of a secret is stored; revoked, never deleted.
CREATE TABLE tokens (
    id                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name              TEXT     NOT NULL,
    role              TEXT     NOT NULL,
    apps_json         TEXT     NULL,
    environments_json TEXT     NULL,
    secret_hash       TEXT     NOT NULL CHECK (length(secret_hash) = 64),
    created_at        BIGINT   NOT NULL,
    created_by        TEXT     NOT NULL,
    revoked_at        BIGINT   NULL,
    revoked_by        TEXT     NULL
);

CREATE TRIGGER tokens_are_never_deleted BEFORE DELETE ON tokens FOR EACH ROW
    EXECUTE FUNCTION switchyard_refuse_change('tokens are revoked, never deleted');
CREATE TRIGGER tokens_are_never_truncated BEFORE TRUNCATE ON tokens FOR EACH STATEMENT
    EXECUTE FUNCTION switchyard_refuse_change('tokens are revoked, never deleted');
