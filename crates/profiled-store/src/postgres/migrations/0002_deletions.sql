-- Deletion receipts: what was erased, when and by whom. They hold no personal data, only the
-- SHA-256 of each identity value the profile carried.
CREATE TABLE deletions (
    workspace_id BIGINT NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    profile_id   TEXT COLLATE "C" NOT NULL,
    requested_at BIGINT NOT NULL,
    completed_at BIGINT NOT NULL,
    requested_by TEXT   NOT NULL,
    identifiers  JSONB  NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
