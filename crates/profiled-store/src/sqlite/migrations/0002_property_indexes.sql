-- Property paths a workspace declared indexed. The physical index (named index_name) is an
-- expression index on profiles, shared by every workspace that declares the same expression.
CREATE TABLE property_indexes (
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id),
    field        TEXT    NOT NULL,
    value_type   TEXT    NOT NULL,
    index_name   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, field)
);
