-- Switchyard state, schema 1.
--
-- Kept to SQL that PostgreSQL also reads where it can: BIGINT/SMALLINT/TEXT columns, CHECKs,
-- a partial unique index. What a PostgreSQL adapter changes (identity
-- columns, trigger syntax) is listed in docs/store.md. Timestamps are INTEGER milliseconds since
-- the Unix epoch; *_json columns hold serde_json text.

-- Applied App manifests and each app's stable release (NULL before its first deploy).
CREATE TABLE apps (
    name          TEXT     NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    stable_json   TEXT     NULL,
    updated_at    BIGINT   NOT NULL
);

-- Applied AnalysisTemplate manifests.
CREATE TABLE templates (
    name          TEXT     NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    updated_at    BIGINT   NOT NULL
);

-- Rollouts, active or finished. `state_json` belongs to the rollout engine.
-- AUTOINCREMENT: ids are never reused, so "the latest rollout" is the largest id.
CREATE TABLE rollouts (
    id            INTEGER  PRIMARY KEY AUTOINCREMENT,
    app           TEXT     NOT NULL REFERENCES apps (name),
    version       TEXT     NOT NULL,
    phase         TEXT     NOT NULL,
    active        SMALLINT NOT NULL CHECK (active IN (0, 1)),
    state_json    TEXT     NOT NULL,
    created_at    BIGINT   NOT NULL,
    updated_at    BIGINT   NOT NULL
);

-- At most one active rollout per app, whatever the code above the store does.
CREATE UNIQUE INDEX rollouts_one_active_per_app ON rollouts (app) WHERE active = 1;
CREATE INDEX rollouts_by_app ON rollouts (app, id);

-- The event log. No foreign keys: the log records what happened and must never refuse history.
-- AUTOINCREMENT: ids only grow, so a reader can follow the log with "after id".
CREATE TABLE events (
    id            INTEGER  PRIMARY KEY AUTOINCREMENT,
    at            BIGINT   NOT NULL,
    app           TEXT     NULL,
    rollout       BIGINT   NULL,
    kind          TEXT     NOT NULL,
    actor         TEXT     NOT NULL,
    reason        TEXT     NOT NULL,
    data_json     TEXT     NOT NULL
);
CREATE INDEX events_by_app ON events (app, id);
CREATE INDEX events_by_rollout ON events (rollout, id);

-- Append-only: the log cannot be rewritten through SQL, by Switchyard or by hand.
CREATE TRIGGER events_are_never_updated BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: events cannot be updated');
END;

CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: events cannot be deleted');
END;
