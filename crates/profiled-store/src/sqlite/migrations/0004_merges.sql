-- Merges: the absorbed profiles as they were (so a merge can be undone), and where each value
-- the survivor took came from.
CREATE TABLE merges (
    workspace_id INTEGER NOT NULL,
    id           TEXT    NOT NULL,
    survivor_id  TEXT    NOT NULL,
    survivor_before TEXT NOT NULL,
    absorbed     TEXT    NOT NULL,
    sources      TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    undone_at    INTEGER,
    PRIMARY KEY (workspace_id, id)
);

-- An absorbed profile's id keeps answering with its survivor.
CREATE TABLE merged_ids (
    workspace_id INTEGER NOT NULL,
    absorbed_id  TEXT    NOT NULL,
    survivor_id  TEXT    NOT NULL,
    merge_id     TEXT    NOT NULL,
    PRIMARY KEY (workspace_id, absorbed_id)
) WITHOUT ROWID;
CREATE INDEX merged_ids_by_survivor ON merged_ids (workspace_id, survivor_id);
