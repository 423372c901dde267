-- The ledger as one B-tree keyed by event id (`WITHOUT ROWID`). As a rowid table, each
-- charged query cost two B-tree inserts: the row, and the index behind `event_id`'s
-- PRIMARY KEY. Event ids are UUIDv7, so new entries land at the end of the key order.
-- Rows are ~160 bytes, under the twentieth of a 4 KiB page below which SQLite's documentation
-- says WITHOUT ROWID pays.
CREATE TABLE ledger_by_event (
    event_id      TEXT PRIMARY KEY,
    namespace_id  TEXT NOT NULL,
    kind          TEXT NOT NULL,      -- query | database | storage | topup
    amount_nanos  BIGINT NOT NULL,    -- negative for charges, positive for credits
    database_id   TEXT,
    caller        TEXT,
    created_at    BIGINT NOT NULL     -- the event's time
) WITHOUT ROWID;
INSERT INTO ledger_by_event
    SELECT event_id, namespace_id, kind, amount_nanos, database_id, caller, created_at FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_by_event RENAME TO ledger;
