-- Identities are kept by their key alone. A profile's row lists the identities it carries
-- (0011), and every lookup, move and delete of a profile's identities now goes through that
-- list, so neither the by-profile index nor the foreign key to the profile is needed: each
-- identity written costs one B-tree insert instead of two inserts and a lookup of its
-- profile. The store deletes a profile's identities itself, before the profile.
CREATE TABLE identities_by_key (
    workspace_id INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    profile_id   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, kind, value)
) WITHOUT ROWID;
INSERT INTO identities_by_key (workspace_id, kind, value, profile_id, created_at)
    SELECT workspace_id, kind, value, profile_id, created_at FROM identities;
DROP TABLE identities;
ALTER TABLE identities_by_key RENAME TO identities;
