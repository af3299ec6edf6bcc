-- Schema 7: pipelines, deployment windows and pipeline runs (migrations/postgres/
-- 0007_pipelines.sql).

-- Applied Pipeline manifests.
CREATE TABLE pipelines (
    name          TEXT     NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    updated_at    BIGINT   NOT NULL
);

-- Applied DeploymentWindow manifests.
CREATE TABLE deployment_windows (
    name          TEXT     NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    updated_at    BIGINT   NOT NULL
);

-- Runs of a pipeline (`pipeline/NAME`) or of one app's release (`app/NAME`). `state_json`
-- belongs to the pipeline runner. Ids are never reused.
CREATE TABLE pipeline_runs (
    id            INTEGER  PRIMARY KEY AUTOINCREMENT,
    subject       TEXT     NOT NULL,
    version       TEXT     NOT NULL,
    phase         TEXT     NOT NULL,
    active        SMALLINT NOT NULL CHECK (active IN (0, 1)),
    state_json    TEXT     NOT NULL,
    created_at    BIGINT   NOT NULL,
    updated_at    BIGINT   NOT NULL
);
CREATE UNIQUE INDEX pipeline_runs_one_active ON pipeline_runs (subject) WHERE active = 1;
CREATE INDEX pipeline_runs_by_subject ON pipeline_runs (subject, id);
