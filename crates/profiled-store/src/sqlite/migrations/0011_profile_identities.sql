-- Each profile row carries its identities, a JSON array of [kind, value] pairs, kept in step
-- with the identities table by every write that changes them. Reading a profile then takes
-- its row alone: the subquery through identities_by_profile, once per profile read, was about
-- a third of a 20-profile search's time in SQLite.
ALTER TABLE profiles ADD COLUMN identities TEXT NOT NULL DEFAULT '[]';
UPDATE profiles SET identities = (
    SELECT json_group_array(json_array(i.kind, i.value)) FROM identities AS i
    WHERE i.workspace_id = profiles.workspace_id AND i.profile_id = profiles.id
);
