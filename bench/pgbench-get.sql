-- profiled's get by identity on PostgreSQL, for pgbench: how fast the database alone runs it.
-- Schema profiled_bench, workspace 1, as `DATABASE_URL=... bench/run.sh` preloads it:
--   pgbench -n -M prepared -c 32 -j 1 -T 5 -f bench/pgbench-get.sql postgres://postgres@127.0.0.1:5432/test
-- (The select list is PROFILE_COLUMNS of crates/profiled-store/src/postgres/search.rs. Before
-- session 12 it gathered the identities with a subquery; docs/benchmarks.md compares the two.)
\set n random(0, 99999)
SELECT p.id, p.properties::text AS properties, p.computed::text AS computed, p.created_at, p.updated_at, p.version, p.set_once::text AS set_once, p.location::text AS location, p.device::text AS device, p.activity::text AS activity, p.company_id, p.identities, (SELECT coalesce(json_agg(s.segment_key ORDER BY s.segment_key), '[]')::text FROM profiled_bench.segment_members AS s WHERE s.workspace_id = p.workspace_id AND s.profile_id = p.id) AS segments FROM profiled_bench.identities AS o JOIN profiled_bench.profiles AS p ON p.workspace_id = o.workspace_id AND p.id = o.profile_id WHERE o.workspace_id = 1 AND o.kind = 'user_id' AND o.value = 'u' || lpad(:n::text, 14, '0');
