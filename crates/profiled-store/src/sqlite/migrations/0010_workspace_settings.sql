-- A workspace's settings, one JSON document per name (the profile schema, the end users'
-- rules, trusted identity providers, verification).
CREATE TABLE workspace_settings (
    workspace_id INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, name)
);
