-- Schema 7: pipelines, deployment windows and pipeline runs (migrations/sqlite/
-- 0007_pipelines.sql). Only adds tables: replicas of schema 6 keep working beside it.
-- switchyard: compatible with the previous schema

CREATE TABLE pipelines (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    updated_at    BIGINT   NOT NULL
);

CREATE TABLE deployment_windows (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    updated_at    BIGINT   NOT NULL
);

CREATE TABLE pipeline_runs (
    id            BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject       TEXT COLLATE "C" NOT NULL,
    version       TEXT     NOT NULL,
    phase         TEXT     NOT NULL,
    active        BIGINT   NOT NULL CHECK (active IN (0, 1)),
    state_json    TEXT     NOT NULL,
    created_at    BIGINT   NOT NULL,
    updated_at    BIGINT   NOT NULL
);
CREATE UNIQUE INDEX pipeline_runs_one_active ON pipeline_runs (subject) WHERE active = 1;
CREATE INDEX pipeline_runs_by_subject ON pipeline_runs (subject, id);
