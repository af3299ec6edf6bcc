-- API tokens, schema 4. The secret part of a token is never stored, only its SHA-256. Revoking
-- a token marks it; rows are never deleted, so the audit log's token ids always resolve.

CREATE TABLE tokens (
    id                TEXT     NOT NULL PRIMARY KEY,
    name              TEXT     NOT NULL,
    role              TEXT     NOT NULL,
    -- JSON arrays; NULL means every app (environment).
    apps_json         TEXT     NULL,
    environments_json TEXT     NULL,
    secret_hash       TEXT     NOT NULL CHECK (length(secret_hash) = 64),
    created_at        BIGINT   NOT NULL,
    created_by        TEXT     NOT NULL,
    revoked_at        BIGINT   NULL,
    revoked_by        TEXT     NULL
);

CREATE TRIGGER tokens_are_never_deleted BEFORE DELETE ON tokens
BEGIN
    SELECT RAISE(ABORT, 'tokens are revoked, never deleted');
END;
