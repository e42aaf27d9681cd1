-- Deletion receipts: what was erased, when and by whom. They hold no personal data, only the
-- SHA-256 of each identity value the profile carried.
CREATE TABLE deletions (
    workspace_id INTEGER NOT NULL,
    id           TEXT    NOT NULL,
    profile_id   TEXT    NOT NULL,
    requested_at INTEGER NOT NULL,
    completed_at INTEGER NOT NULL,
    requested_by TEXT    NOT NULL,
    identifiers  TEXT    NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
