-- What enrichment and events add to a profile: where it was last seen, on which device, what
-- its events add up to (JSON), and the company it belongs to.
ALTER TABLE profiles ADD COLUMN location TEXT NOT NULL DEFAULT '{}';
ALTER TABLE profiles ADD COLUMN device TEXT NOT NULL DEFAULT '{}';
ALTER TABLE profiles ADD COLUMN activity TEXT NOT NULL DEFAULT '{}';
ALTER TABLE profiles ADD COLUMN company_id TEXT;

-- Raw events, kept for the retention period: windowed computed properties read them, and
-- forget and clear erase them. An id given twice is one event.
CREATE TABLE events (
    workspace_id INTEGER NOT NULL,
    id           TEXT    NOT NULL,
    profile_id   TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    properties   TEXT    NOT NULL,
    context      TEXT    NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX events_by_profile ON events (workspace_id, profile_id, at);
CREATE INDEX events_by_time ON events (at);

-- Computed properties a workspace defines over its events.
CREATE TABLE computed_definitions (
    workspace_id INTEGER NOT NULL,
    key          TEXT    NOT NULL,
    definition   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, key)
);
