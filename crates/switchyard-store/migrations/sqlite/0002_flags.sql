-- Feature flags, schema 2.
--
-- One JSON document per flag and per segment (the native model of `switchyard-flags`; the store
-- does not read it), and the append-only, hash-chained audit log of every change to them.

CREATE TABLE flag_documents (
    kind          TEXT     NOT NULL CHECK (kind IN ('flag', 'segment')),
    key           TEXT     NOT NULL,
    document_json TEXT     NOT NULL,
    -- Order of first appearance, kept so a set reads back in the order it was written.
    position      BIGINT   NOT NULL,
    updated_at    BIGINT   NOT NULL,
    PRIMARY KEY (kind, key)
);

-- Ids are consecutive from 1 (the writer assigns them), so a removed entry shows as a gap even
-- if the triggers below were dropped. `hash` is SHA-256 over the canonical serialisation of the
-- other columns; `prev_hash` is the previous entry's hash (64 zeros for the first).
CREATE TABLE flag_audit (
    id            INTEGER  PRIMARY KEY,
    at            BIGINT   NOT NULL,
    actor         TEXT     NOT NULL,
    reason        TEXT     NOT NULL,
    kind          TEXT     NOT NULL,
    key           TEXT     NOT NULL,
    before_json   TEXT     NULL,
    after_json    TEXT     NULL,
    prev_hash     TEXT     NOT NULL,
    hash          TEXT     NOT NULL
);
CREATE INDEX flag_audit_by_key ON flag_audit (key, id);

CREATE TRIGGER flag_audit_is_never_updated BEFORE UPDATE ON flag_audit
BEGIN
    SELECT RAISE(ABORT, 'the flag audit log is append-only: entries cannot be updated');
END;

CREATE TRIGGER flag_audit_is_never_deleted BEFORE DELETE ON flag_audit
BEGIN
    SELECT RAISE(ABORT, 'the flag audit log is append-only: entries cannot be deleted');
END;
