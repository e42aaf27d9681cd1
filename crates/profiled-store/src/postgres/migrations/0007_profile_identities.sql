-- Each profile row carries its identities, a JSON array of [kind, value] pairs, kept in step
-- with the identities table by every write that changes them. Reading a profile then takes
-- its row alone: the subquery through identities_by_profile, once per profile read, held a
-- 20-profile search to about two thirds of its rate without it (pgbench, docs/benchmarks.md).
ALTER TABLE profiles ADD COLUMN identities TEXT NOT NULL DEFAULT '[]';
UPDATE profiles AS p SET identities = (
    SELECT coalesce(json_agg(json_build_array(i.kind, i.value)), '[]')::text FROM identities AS i
    WHERE i.workspace_id = p.workspace_id AND i.profile_id = p.id
);
