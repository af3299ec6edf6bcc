-- Schema 8: notifiers and the notification outbox (migrations/postgres/0008_notifications.sql).

-- Applied Notifier manifests.
CREATE TABLE notifiers (
    name          TEXT     NOT NULL PRIMARY KEY,
    manifest_json TEXT     NOT NULL,
    generation    BIGINT   NOT NULL CHECK (generation >= 1),
    updated_at    BIGINT   NOT NULL
);

-- The outbox: one row per notifier and event, rendered once, kept after delivery.
CREATE TABLE notifications (
    id              INTEGER  PRIMARY KEY AUTOINCREMENT,
    notifier        TEXT     NOT NULL,
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

-- The last event rendered into the outbox.
CREATE TABLE notification_cursor (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    event_id BIGINT  NOT NULL
);
