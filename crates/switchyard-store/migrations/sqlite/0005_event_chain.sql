-- The event log as an audit log, schema 5: the client address of the request behind each event,
-- and a SHA-256 hash chain over the whole log (`switchyard audit --verify`). Events written
-- before this schema have no stored hash; the chain still covers them, because every later hash
-- depends on them.

ALTER TABLE events ADD COLUMN source    TEXT NULL;
ALTER TABLE events ADD COLUMN prev_hash TEXT NULL;
ALTER TABLE events ADD COLUMN hash      TEXT NULL;

CREATE INDEX events_by_actor ON events (actor, id);
