-- Import jobs: their state and counts, and the first failed lines with their reasons.
CREATE TABLE imports (
    workspace_id INTEGER NOT NULL,
    id           TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    format       TEXT    NOT NULL,
    requested_by TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    counts       TEXT    NOT NULL,
    failures     TEXT    NOT NULL,
    error        TEXT,
    PRIMARY KEY (workspace_id, id)
);
