-- Metering: the write model for top-ups, and the projections the metering consumer
-- maintains from the event log (rebuilt exactly by `persql metering rebuild`).
-- Money is BIGINT nano-units (1e-9 of the currency), so sums are exact.

-- Who pays for a database's storage; NULL = its own namespace.
ALTER TABLE databases ADD COLUMN payer_namespace_id TEXT REFERENCES namespaces(id);

CREATE TABLE topups (
    namespace_id  TEXT NOT NULL REFERENCES namespaces(id),
    reference     TEXT NOT NULL,
    amount_nanos  BIGINT NOT NULL,
    event_id      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (namespace_id, reference)
);

-- One entry per charged or credited event; the primary key makes every effect idempotent.
CREATE TABLE ledger (
    event_id      TEXT PRIMARY KEY,
    namespace_id  TEXT NOT NULL,
    kind          TEXT NOT NULL,      -- query | database | storage | topup
    amount_nanos  BIGINT NOT NULL,    -- negative for charges, positive for credits
    database_id   TEXT,
    caller        TEXT,
    created_at    BIGINT NOT NULL     -- the event's time
);
CREATE INDEX ledger_namespace ON ledger (namespace_id, created_at);

CREATE TABLE balances (
    namespace_id   TEXT PRIMARY KEY,
    balance_nanos  BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE usage_daily (
    namespace_id   TEXT NOT NULL,
    day            TEXT NOT NULL,     -- YYYY-MM-DD, UTC
    database_id    TEXT NOT NULL,
    caller         TEXT NOT NULL,     -- token id, or provision / storage
    queries        BIGINT NOT NULL,
    rows_read      BIGINT NOT NULL,
    rows_written   BIGINT NOT NULL,
    storage_bytes  BIGINT NOT NULL,   -- largest sample of the day
    cost_nanos     BIGINT NOT NULL,
    PRIMARY KEY (namespace_id, day, database_id, caller)
);
