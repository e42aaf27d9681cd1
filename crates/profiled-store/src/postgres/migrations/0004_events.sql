-- What enrichment and events add to a profile: where it was last seen, on which device, what
-- its events add up to, and the company it belongs to.
ALTER TABLE profiles ADD COLUMN location JSONB NOT NULL DEFAULT '{}';
ALTER TABLE profiles ADD COLUMN device JSONB NOT NULL DEFAULT '{}';
ALTER TABLE profiles ADD COLUMN activity JSONB NOT NULL DEFAULT '{}';
ALTER TABLE profiles ADD COLUMN company_id TEXT COLLATE "C";

-- Raw events, kept for the retention period: windowed computed properties read them, and
-- forget and clear erase them. An id given twice is one event.
CREATE TABLE events (
    workspace_id BIGINT NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    profile_id   TEXT COLLATE "C" NOT NULL,
    name         TEXT   NOT NULL,
    at           BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    properties   JSONB  NOT NULL,
    context      JSONB  NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX events_by_profile ON events (workspace_id, profile_id, at);
CREATE INDEX events_by_time ON events (at);

-- Computed properties a workspace defines over its events.
CREATE TABLE computed_definitions (
    workspace_id BIGINT NOT NULL,
    key          TEXT   NOT NULL,
    definition   JSONB  NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, key)
);
