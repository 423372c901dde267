-- Readers that skip `query.executed` (the provisioner, the migration-rollout trigger, every
-- API process's cache-invalidation tail) read the log through this index: one query event per
-- query makes up nearly the whole log, and stepping over those rows cost each such reader a
-- row per query.
CREATE INDEX events_without_queries ON events (seq) WHERE type <> 'query.executed';
