-- Segments: named filters. `version` counts filter changes; reconciliation brings the
-- members up to a version and records it, so a segment whose `reconciled_version` lags is
-- still backfilling. A node reconciling a segment holds it until `lease_until`.
CREATE TABLE segments (
    workspace_id       BIGINT NOT NULL,
    key                TEXT COLLATE "C" NOT NULL,
    name               TEXT    NOT NULL,
    filter             JSONB   NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL,
    reconciled_version BIGINT NOT NULL DEFAULT 0,
    reconciled_at      BIGINT,
    -- 1 when the filter compares with `now`: membership then moves with the clock, and is
    -- re-reconciled periodically.
    moves_with_clock   BOOLEAN NOT NULL DEFAULT FALSE,
    lease_until        BIGINT,
    PRIMARY KEY (workspace_id, key)
);

-- Who is in which segment, since when: paged by segment, read by profile.
CREATE TABLE segment_members (
    workspace_id BIGINT NOT NULL,
    segment_key  TEXT COLLATE "C" NOT NULL,
    profile_id   TEXT COLLATE "C" NOT NULL,
    since        BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, segment_key, profile_id)
);
CREATE INDEX segment_members_by_profile ON segment_members (workspace_id, profile_id, segment_key);

-- Segments deleted lately: a node that had not seen the deletion yet may still add members,
-- which the background worker then removes.
CREATE TABLE segment_tombstones (
    workspace_id BIGINT NOT NULL,
    key          TEXT COLLATE "C" NOT NULL,
    deleted_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, key)
);

-- Companies: their own identity (`uid`) and properties; a profile belongs to at most one.
CREATE TABLE companies (
    workspace_id BIGINT NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    uid          TEXT COLLATE "C" NOT NULL,
    properties   JSONB   NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, uid)
);
CREATE INDEX profiles_by_company ON profiles (workspace_id, company_id) WHERE company_id IS NOT NULL;
