-- Tokens can be listed per namespace (newest first, paged by id) and show when they were
-- last used (written at most once a minute per token per process).
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
CREATE INDEX tokens_namespace ON tokens (namespace_id, id);
