-- A workspace's settings, one JSON document per name (the profile schema, the end users'
-- rules, trusted identity providers, verification).
CREATE TABLE workspace_settings (
    workspace_id BIGINT NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    value        JSONB  NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

-- End users' sessions: an opaque token (only its SHA-256 kept) for one profile, with its
-- CSRF token (also hashed). A revoked or expired session authenticates nobody.
CREATE TABLE sessions (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    workspace_id BIGINT NOT NULL,
    profile_id   TEXT COLLATE "C" NOT NULL,
    secret_hash  BYTEA  NOT NULL,
    csrf_hash    BYTEA  NOT NULL,
    created_by   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX sessions_by_profile ON sessions (workspace_id, profile_id);

-- A change an end user asked for that waits for a code (one per profile: a new one replaces
-- it), and the codes sent, for rate limiting.
CREATE TABLE verifications (
    workspace_id BIGINT NOT NULL,
    profile_id   TEXT COLLATE "C" NOT NULL,
    change_hash  BYTEA  NOT NULL,
    code_hash    BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    attempts     BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, profile_id)
);
CREATE TABLE verification_sends (
    workspace_id BIGINT NOT NULL,
    profile_id   TEXT COLLATE "C" NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX verification_sends_by_profile ON verification_sends (workspace_id, profile_id, at);
