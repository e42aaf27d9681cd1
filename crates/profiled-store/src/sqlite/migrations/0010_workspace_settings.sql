-- A workspace's settings, one JSON document per name (the profile schema, the end users'
-- rules, trusted identity providers, verification).
CREATE TABLE workspace_settings (
    workspace_id INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

-- End users' sessions: an opaque token (only its SHA-256 kept) for one profile, with its
-- CSRF token (also hashed). A revoked or expired session authenticates nobody.
CREATE TABLE sessions (
    id           TEXT    NOT NULL PRIMARY KEY,
    workspace_id INTEGER NOT NULL,
    profile_id   TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL,
    csrf_hash    BLOB    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX sessions_by_profile ON sessions (workspace_id, profile_id);

-- A change an end user asked for that waits for a code (one per profile: a new one replaces
-- it), and the codes sent, for rate limiting.
CREATE TABLE verifications (
    workspace_id INTEGER NOT NULL,
    profile_id   TEXT    NOT NULL,
    change_hash  BLOB    NOT NULL,
    code_hash    BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, profile_id)
);
CREATE TABLE verification_sends (
    workspace_id INTEGER NOT NULL,
    profile_id   TEXT    NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX verification_sends_by_profile ON verification_sends (workspace_id, profile_id, at);
