-- Workspaces: tenants. Every other table leads its keys with workspace_id.
CREATE TABLE workspaces (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- API keys: only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id),
    name         TEXT    NOT NULL,
    scope        TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, created_at);

-- Profiles: properties and computed are JSON text; times are microseconds since the epoch.
CREATE TABLE profiles (
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id),
    id           TEXT    NOT NULL,
    properties   TEXT    NOT NULL,
    computed     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Identities: each (kind, value) points at exactly one profile of a workspace.
CREATE TABLE identities (
    workspace_id INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    profile_id   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, kind, value),
    FOREIGN KEY (workspace_id, profile_id) REFERENCES profiles (workspace_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX identities_by_profile ON identities (workspace_id, profile_id);
