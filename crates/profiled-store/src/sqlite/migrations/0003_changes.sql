-- The change log: one entry per mutation of a profile. seq orders entries in commit order
-- (one writer), so a feed consumer resuming after seq N misses nothing and sees nothing twice.
CREATE TABLE changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL,
    profile_id   TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    operation    TEXT    NOT NULL,
    changes      TEXT    NOT NULL,
    origin       TEXT
);
CREATE INDEX changes_by_workspace ON changes (workspace_id, seq);
CREATE INDEX changes_by_profile ON changes (workspace_id, profile_id, seq);
