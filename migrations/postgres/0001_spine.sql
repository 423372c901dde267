-- Control plane for the spine: namespaces, tokens, the database registry, the event log.
-- Times are unix milliseconds (BIGINT) so the same queries run on SQLite and Postgres.

CREATE TABLE namespaces (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE databases (
    id            TEXT PRIMARY KEY,
    namespace_id  TEXT NOT NULL REFERENCES namespaces(id),
    slug          TEXT NOT NULL,
    template_id   TEXT REFERENCES databases(id),
    subject_hash  TEXT,
    state         TEXT NOT NULL,           -- pending | ready | failed
    error         TEXT,
    created_at    BIGINT NOT NULL,
    ready_at      BIGINT,
    UNIQUE (namespace_id, slug)
);

CREATE TABLE tokens (
    id                   TEXT PRIMARY KEY,
    hash                 TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the secret; the secret is never stored
    kind                 TEXT NOT NULL,         -- operator | workspace | database
    namespace_id         TEXT REFERENCES namespaces(id),
    database_id          TEXT REFERENCES databases(id),
    role                 TEXT,                  -- read | write | admin (database tokens)
    billed_namespace_id  TEXT REFERENCES namespaces(id),
    expires_at           BIGINT,
    revoked_at           BIGINT,
    created_at           BIGINT NOT NULL
);
CREATE INDEX tokens_database ON tokens (database_id);

-- The event log and outbox: every control-plane change appends its event in the same
-- transaction. `seq` orders the log; `published_at` is set once the relay has handed the
-- event to NATS JetStream (unused in embedded mode, where this table is the bus).
CREATE TABLE events (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    namespace     TEXT NOT NULL,
    type          TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    published_at  BIGINT
);
CREATE INDEX events_unpublished ON events (seq) WHERE published_at IS NULL;

-- Durable consumers: position in the embedded log, and the ids of events whose effect has
-- committed (written in the same transaction as the effect, so each applies once).
CREATE TABLE consumer_offsets (
    consumer  TEXT PRIMARY KEY,
    seq       BIGINT NOT NULL
);
CREATE TABLE processed_events (
    consumer  TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
