-- Schema 8: notifiers and the notification outbox (migrations/sqlite/0008_notifications.sql).
-- Only adds tables: replicas of schema 7 keep working beside it.
-- switchyard: compatible with the previous schema

CREATE TABLE notifiers (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    updated_at    BIGINT   NOT NULL
);

CREATE TABLE notifications (
    id              BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notifier        TEXT COLLATE "C" NOT NULL,
    event_id        BIGINT   NOT NULL,
    kind            TEXT     NOT NULL,
    idempotency_key TEXT     NOT NULL UNIQUE,
    sink            TEXT     NOT NULL,
    url             TEXT     NOT NULL,
    content_type    TEXT     NOT NULL,
    body            TEXT     NOT NULL,
    secret_env      TEXT     NULL,
    status          TEXT     NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT   NOT NULL CHECK (attempts >= 0),
    next_attempt_at BIGINT   NOT NULL,
    last_error      TEXT     NULL,
    created_at      BIGINT   NOT NULL,
    delivered_at    BIGINT   NULL
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at, id);

CREATE TABLE notification_cursor (
    id       BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    event_id BIGINT NOT NULL
);
