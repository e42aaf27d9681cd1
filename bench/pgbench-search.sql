-- profiled's indexed search on PostgreSQL (properties.plan = "pro", limit 20), for pgbench: how
-- fast the database alone runs it. Schema profiled_bench, workspace 1, as
-- `DATABASE_URL=... bench/run.sh` preloads it (the plan index declared):
--   pgbench -n -M prepared -c 32 -j 1 -T 5 -f bench/pgbench-search.sql postgres://postgres@127.0.0.1:5432/test
-- (The select list is PROFILE_COLUMNS of crates/profiled-store/src/postgres/search.rs; the
-- condition is the plan index's expression.)
SELECT p.id, p.properties::text AS properties, p.computed::text AS computed, p.created_at, p.updated_at, p.version, p.set_once::text AS set_once, p.location::text AS location, p.device::text AS device, p.activity::text AS activity, p.company_id, p.identities, (SELECT coalesce(json_agg(s.segment_key ORDER BY s.segment_key), '[]')::text FROM profiled_bench.segment_members AS s WHERE s.workspace_id = p.workspace_id AND s.profile_id = p.id) AS segments FROM profiled_bench.profiles AS p WHERE p.workspace_id = 1 AND (CASE WHEN jsonb_typeof(p.properties -> 'plan') = 'string' THEN p.properties ->> 'plan' ELSE NULL END) COLLATE "C" = 'pro' ORDER BY p.id LIMIT 20;
