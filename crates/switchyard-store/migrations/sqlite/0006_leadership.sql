-- Schema 6: the leader lease of replicas sharing a PostgreSQL database (migrations/postgres/
-- 0006_leadership.sql). A SQLite store has one daemon and never uses it; the table exists so
-- that schema versions mean the same on both backends (backups carry the version).
CREATE TABLE leader_lease (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    holder     TEXT    NOT NULL,
    api        TEXT    NOT NULL,
    epoch      BIGINT  NOT NULL CHECK (epoch >= 1),
    expires_at BIGINT  NOT NULL,
    schema     BIGINT  NOT NULL
);
