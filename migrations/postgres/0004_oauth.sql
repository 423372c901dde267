-- Accounts (people who own their data), browser sessions, OAuth apps, authorization codes,
-- the durable (account, app) grants, and the ID-token signing key.

-- A person: signs in through an identity provider (`password` today) and owns a namespace.
CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,          -- lower-cased
    provider       TEXT NOT NULL,                 -- password | (later) github, google, oidc:<issuer>
    subject        TEXT NOT NULL,                 -- the provider's stable id for the person
    password_hash  TEXT,                          -- argon2id PHC string (password provider only)
    namespace_id   TEXT NOT NULL REFERENCES namespaces(id),
    created_at     BIGINT NOT NULL,
    UNIQUE (provider, subject)
);

-- Browser sessions: the cookie carries a random id; only its SHA-256 is stored.
CREATE TABLE sessions (
    hash        TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE oauth_apps (
    client_id      TEXT PRIMARY KEY,              -- psqlrp_…
    namespace_id   TEXT NOT NULL REFERENCES namespaces(id),  -- the developer's; billed for app calls
    name           TEXT NOT NULL,
    client_type    TEXT NOT NULL,                 -- public | confidential
    secret_hash    TEXT,                          -- SHA-256 of the secret (confidential only)
    redirect_uris  TEXT NOT NULL,                 -- JSON array, matched exactly
    created_at     BIGINT NOT NULL
);

-- Authorization codes: stored hashed, single use, short-lived. `token_id` is the token the
-- code was exchanged for, revoked if the code is presented again.
CREATE TABLE oauth_codes (
    hash            TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oauth_apps(client_id),
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,
    scope           TEXT NOT NULL,
    nonce           TEXT,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    token_id        TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);

-- The durable link between an account and an app: one database in the account's namespace,
-- kept across disconnects; `token_id` is the app's current token for it. `database_id` has no
-- foreign key: the owner may delete the database, and the next approval creates it again.
CREATE TABLE oauth_grants (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    namespace_id  TEXT NOT NULL REFERENCES namespaces(id),
    client_id     TEXT NOT NULL REFERENCES oauth_apps(client_id),
    database_id   TEXT NOT NULL,
    token_id      TEXT,
    connected_at  BIGINT NOT NULL,              -- since the last (re)connection
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    UNIQUE (account_id, client_id)
);
CREATE INDEX oauth_grants_token ON oauth_grants (token_id);

-- The ID-token signing key (ES256, PKCS#8 DER in hex), created on first start. `slot` makes
-- concurrent first starts of several API processes agree on one key.
CREATE TABLE oauth_signing_keys (
    slot         TEXT PRIMARY KEY,                -- current
    kid          TEXT NOT NULL,
    alg          TEXT NOT NULL,
    private_der  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
