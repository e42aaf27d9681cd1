-- A workspace's settings, one JSON document per name (the profile schema, the end users'
-- rules, trusted identity providers, verification).
CREATE TABLE workspace_settings (
    workspace_id BIGINT NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    value        JSONB  NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);
