-- Import jobs: their state and counts, and the first failed lines with their reasons.
CREATE TABLE imports (
    workspace_id BIGINT NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    status       TEXT    NOT NULL,
    format       TEXT    NOT NULL,
    requested_by TEXT    NOT NULL,
    started_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    counts       JSONB   NOT NULL,
    failures     JSONB   NOT NULL,
    error        TEXT,
    PRIMARY KEY (workspace_id, id)
);
