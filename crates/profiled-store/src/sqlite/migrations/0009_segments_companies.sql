-- Segments: named filters. `version` counts filter changes; reconciliation brings the
-- members up to a version and records it, so a segment whose `reconciled_version` lags is
-- still backfilling. A node reconciling a segment holds it until `lease_until`.
CREATE TABLE segments (
    workspace_id       INTEGER NOT NULL,
    key                TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    filter             TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL,
    reconciled_version INTEGER NOT NULL DEFAULT 0,
    reconciled_at      INTEGER,
    -- 1 when the filter compares with `now`: membership then moves with the clock, and is
    -- re-reconciled periodically.
    moves_with_clock   INTEGER NOT NULL DEFAULT 0,
    lease_until        INTEGER,
    PRIMARY KEY (workspace_id, key)
);

-- Who is in which segment, since when: paged by segment, read by profile.
CREATE TABLE segment_members (
    workspace_id INTEGER NOT NULL,
    segment_key  TEXT    NOT NULL,
    profile_id   TEXT    NOT NULL,
    since        INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, segment_key, profile_id)
) WITHOUT ROWID;
CREATE INDEX segment_members_by_profile ON segment_members (workspace_id, profile_id, segment_key);

-- Segments deleted lately: a node that had not seen the deletion yet may still add members,
-- which the background worker then removes.
CREATE TABLE segment_tombstones (
    workspace_id INTEGER NOT NULL,
    key          TEXT NOT NULL,
    deleted_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, key)
);

-- Companies: their own identity (`uid`) and properties; a profile belongs to at most one.
CREATE TABLE companies (
    workspace_id INTEGER NOT NULL,
    id           TEXT    NOT NULL,
    uid          TEXT    NOT NULL,
    properties   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, uid)
);
CREATE INDEX profiles_by_company ON profiles (workspace_id, company_id) WHERE company_id IS NOT NULL;
