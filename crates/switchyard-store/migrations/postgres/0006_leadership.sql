-- Schema 6: the leader lease of the replicas sharing this database. One row at most: who leads
-- (`holder`), where its API answers (`api`, for followers to forward writes to), its fencing
-- token (`epoch`, raised at every change of leader and checked inside every write transaction)
-- when the lease runs out, by this server's clock (replicas never compare their own clocks), and
-- the schema version of the leader's build (a newer build refuses to migrate under it unless its
-- migrations say they are compatible).
CREATE TABLE leader_lease (
    id         SMALLINT    NOT NULL PRIMARY KEY CHECK (id = 1),
    holder     TEXT        NOT NULL,
    api        TEXT        NOT NULL,
    epoch      BIGINT      NOT NULL CHECK (epoch >= 1),
    expires_at TIMESTAMPTZ NOT NULL,
    schema     BIGINT      NOT NULL
);
