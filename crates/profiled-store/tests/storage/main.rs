//! The storage test suite. Every case runs on every backend: SQLite always (a temporary
//! file); other backends join as they are added.

mod filters;

use std::future::Future;
use std::sync::Arc;

use jiff::Timestamp;
use profiled_core::filter::{Field, Filter, ValueType};
use profiled_core::{Identity, Profile, ProfileId, RawProfile, Scope, WorkspaceId};
use profiled_store::postgres::{PostgresSettings, PostgresStore};
use profiled_store::sqlite::{SqliteSettings, SqliteStore};
use profiled_store::{
    ApiKeyRecord, CompanyPage, ComputedRecord, ProfileTx, SearchQuery, SortKey, Store, StoreError,
    StoredEvent,
};
use serde_json::json;

/// A PostgreSQL store in a schema of its own, dropped again by [`PostgresSchema::drop`];
/// `None` when `PROFILED_TEST_POSTGRES_URL` is unset.
struct PostgresSchema {
    url: String,
    schema: String,
}

impl PostgresSchema {
    async fn open() -> Option<(Self, PostgresStore)> {
        Self::open_with(|_| {}).await
    }

    async fn open_with(
        adjust: impl FnOnce(&mut PostgresSettings),
    ) -> Option<(Self, PostgresStore)> {
        let url = std::env::var("PROFILED_TEST_POSTGRES_URL").ok()?;
        let schema = format!("profiled_test_{}", uuid_like());
        let mut settings = PostgresSettings::new(url.clone());
        settings.schema = Some(schema.clone());
        settings.max_connections = 8;
        adjust(&mut settings);
        let store = PostgresStore::open(&settings)
            .await
            .expect("PostgreSQL opens");
        Some((Self { url, schema }, store))
    }

    async fn drop(self) {
        let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.schema
        )))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
}

/// A random lowercase name part.
fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("{:016x}", hasher.finish())
}

/// Runs `case` once per backend, each on a fresh, empty database.
async fn on_every_backend<F, Fut>(case: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open_dir(dir.path(), &SqliteSettings::default())
            .await
            .unwrap(),
    );
    case(store.clone()).await;
    store.close().await;
    if let Some((schema, store)) = PostgresSchema::open().await {
        let store = Arc::new(store);
        case(store.clone()).await;
        store.close().await;
        schema.drop().await;
    }
}

/// The same for tests that drive their own runtime (property tests).
fn on_every_backend_blocking(case: impl Fn(Arc<dyn Store>, &tokio::runtime::Runtime)) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        runtime
            .block_on(SqliteStore::open_dir(
                dir.path(),
                &SqliteSettings::default(),
            ))
            .unwrap(),
    );
    case(store.clone(), &runtime);
    runtime.block_on(store.close());
    if let Some((schema, store)) = runtime.block_on(PostgresSchema::open()) {
        let store: Arc<dyn Store> = Arc::new(store);
        case(store.clone(), &runtime);
        runtime.block_on(store.close());
        runtime.block_on(schema.drop());
    }
}

#[test]
fn filters_select_in_sql_what_the_evaluator_matches() {
    on_every_backend_blocking(filters::sql_selects_what_the_evaluator_matches);
}

fn now() -> Timestamp {
    Timestamp::from_microsecond(Timestamp::now().as_microsecond()).unwrap()
}

fn profile(id: &str, identities: &[(&str, &str)]) -> Profile {
    let mut p = Profile::new(ProfileId(id.into()), now(), 12.5);
    p.identities = identities
        .iter()
        .map(|(k, v)| Identity::new_unchecked(k, v))
        .collect();
    p.properties = json!({"plan": "pro", "nested": {"a": [1, 2]}})
        .as_object()
        .unwrap()
        .clone();
    p.location = json!({"country": "DE", "latitude": 52.52})
        .as_object()
        .unwrap()
        .clone();
    p.device = json!({"browser": "Firefox", "bot": false})
        .as_object()
        .unwrap()
        .clone();
    p.activity
        .record(&event("view", now()), &Default::default());
    p.company = Some("c1".into());
    p
}

fn event(name: &str, at: Timestamp) -> profiled_core::activity::Event {
    profiled_core::activity::Event {
        name: name.into(),
        at,
        properties: json!({"amount": 3}).as_object().unwrap().clone(),
    }
}

fn stored_event(id: &str, profile: &str, at: Timestamp) -> StoredEvent {
    StoredEvent {
        id: id.into(),
        profile_id: ProfileId(profile.into()),
        name: "view".into(),
        at,
        received_at: at,
        properties: json!({"amount": 3}).as_object().unwrap().clone(),
        context: json!({"ip": "203.0.113.1"}).as_object().unwrap().clone(),
    }
}

/// Workspaces `a` and `b`, each with a profile `p1` carrying `user_id:u1`.
async fn same_profile_in_two_workspaces(store: &Arc<dyn Store>) -> (WorkspaceId, WorkspaceId) {
    let a = workspace(store, "a").await;
    let b = workspace(store, "b").await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_profile(a, &profile("p1", &[("user_id", "u1")]))
        .await
        .unwrap();
    tx.insert_profile(b, &profile("p1", &[("user_id", "u1")]))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (a, b)
}

async fn workspace(store: &Arc<dyn Store>, name: &str) -> WorkspaceId {
    store.create_workspace(name, now()).await.unwrap().id
}

/// Records merge `m1`: `survivor` absorbs `absorbed`, both read in the transaction.
async fn record_merge(
    tx: &mut dyn ProfileTx,
    ws: WorkspaceId,
    survivor: &ProfileId,
    absorbed: &ProfileId,
) {
    let absorbed = tx.profile(ws, absorbed).await.unwrap().unwrap();
    let before = tx.profile(ws, survivor).await.unwrap().unwrap();
    tx.record_merge(
        ws,
        &profiled_store::MergeRecord {
            id: "m1",
            survivor,
            survivor_before: &before,
            absorbed: std::slice::from_ref(&absorbed),
            sources: Default::default(),
            at: now(),
            actor: "test",
        },
    )
    .await
    .unwrap();
}

/// Profiles as a database from before the identities moved into the profile row holds them,
/// in the SQL both backends take: two workspaces, one profile without any identity.
const PROFILES_BEFORE_IDENTITY_LISTS: &str = "
    INSERT INTO workspaces (id, name, created_at) VALUES (1, 'a', 0), (2, 'b', 0);
    INSERT INTO profiles (workspace_id, id, properties, computed, created_at, updated_at, version)
    VALUES (1, 'p1', '{}', '{}', 0, 0, 1), (1, 'p2', '{}', '{}', 0, 0, 1), (2, 'p1', '{}', '{}', 0, 0, 1);
    INSERT INTO identities (workspace_id, kind, value, profile_id, created_at)
    VALUES (1, 'user_id', 'u1', 'p1', 0), (1, 'email', 'a@x.io', 'p1', 0), (2, 'user_id', 'u9', 'p1', 0);";

/// What the migration must have listed for [`PROFILES_BEFORE_IDENTITY_LISTS`]: the `identities`
/// column of workspace 1's p1 and p2, and of workspace 2's p1. Every profile its own, `[]` for
/// one without any.
fn assert_identities_listed(lists: [String; 3]) {
    let sorted = lists.map(|text| {
        let mut pairs: Vec<(String, String)> = serde_json::from_str(&text).unwrap();
        pairs.sort();
        pairs
    });
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        sorted,
        [
            vec![pair("email", "a@x.io"), pair("user_id", "u1")],
            vec![],
            vec![pair("user_id", "u9")]
        ]
    );
}

/// The listed profiles of [`assert_identities_listed`], in its order.
const LISTED: [(i64, &str); 3] = [(1, "p1"), (1, "p2"), (2, "p1")];

/// A SQLite database from before migration 11, holding [`PROFILES_BEFORE_IDENTITY_LISTS`].
fn sqlite_before_identity_lists() -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for sql in [
        include_str!("../../src/sqlite/migrations/0001_init.sql"),
        include_str!("../../src/sqlite/migrations/0002_property_indexes.sql"),
        include_str!("../../src/sqlite/migrations/0003_changes.sql"),
        include_str!("../../src/sqlite/migrations/0004_merges.sql"),
        include_str!("../../src/sqlite/migrations/0005_set_once.sql"),
        include_str!("../../src/sqlite/migrations/0006_deletions.sql"),
        include_str!("../../src/sqlite/migrations/0007_imports.sql"),
        include_str!("../../src/sqlite/migrations/0008_events.sql"),
        include_str!("../../src/sqlite/migrations/0009_segments_companies.sql"),
        include_str!("../../src/sqlite/migrations/0010_workspace_settings.sql"),
        PROFILES_BEFORE_IDENTITY_LISTS,
    ] {
        conn.execute_batch(sql).unwrap();
    }
    conn
}

/// SQLite's migration 11 lists each profile's identities in its row.
#[test]
fn sqlite_migration_lists_each_profiles_identities_in_its_row() {
    let conn = sqlite_before_identity_lists();
    conn.execute_batch(include_str!(
        "../../src/sqlite/migrations/0011_profile_identities.sql"
    ))
    .unwrap();
    assert_identities_listed(LISTED.map(|(ws, id)| {
        conn.query_row(
            "SELECT identities FROM profiles WHERE workspace_id = ? AND id = ?",
            rusqlite::params![ws, id],
            |row| row.get(0),
        )
        .unwrap()
    }));
}

/// SQLite's migration 12 keeps every identity row, keyed by identity alone: no index by
/// profile and no foreign key to it are left to maintain on every write.
#[test]
fn sqlite_migration_keeps_identities_by_key_only() {
    let conn = sqlite_before_identity_lists();
    conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
    for sql in [
        include_str!("../../src/sqlite/migrations/0011_profile_identities.sql"),
        include_str!("../../src/sqlite/migrations/0012_identities_by_key_only.sql"),
    ] {
        conn.execute_batch(sql).unwrap();
    }
    let rows: Vec<(i64, String, String, String)> = conn
        .prepare("SELECT workspace_id, kind, value, profile_id FROM identities ORDER BY 1, 2, 3")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let row = |ws, kind: &str, value: &str, profile: &str| {
        (ws, kind.to_owned(), value.to_owned(), profile.to_owned())
    };
    assert_eq!(
        rows,
        vec![
            row(1, "email", "a@x.io", "p1"),
            row(1, "user_id", "u1", "p1"),
            row(2, "user_id", "u9", "p1"),
        ]
    );
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM pragma_foreign_key_list('identities')"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM pragma_index_list('identities') WHERE origin != 'pk'"),
        0,
        "only the primary key indexes identities"
    );
    // The key still refuses a second owner.
    assert!(
        conn.execute(
            "INSERT INTO identities VALUES (1, 'user_id', 'u1', 'p2', 0)",
            []
        )
        .is_err()
    );
}

/// PostgreSQL's migration 7 does the same.
#[tokio::test]
async fn postgres_migration_lists_each_profiles_identities_in_its_row() {
    let Ok(url) = std::env::var("PROFILED_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = format!("profiled_test_{}", uuid_like());
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .unwrap();
    for sql in [
        include_str!("../../src/postgres/migrations/0001_init.sql"),
        include_str!("../../src/postgres/migrations/0002_deletions.sql"),
        include_str!("../../src/postgres/migrations/0003_imports.sql"),
        include_str!("../../src/postgres/migrations/0004_events.sql"),
        include_str!("../../src/postgres/migrations/0005_segments_companies.sql"),
        include_str!("../../src/postgres/migrations/0006_workspace_settings.sql"),
        PROFILES_BEFORE_IDENTITY_LISTS,
        include_str!("../../src/postgres/migrations/0007_profile_identities.sql"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    let mut lists = Vec::new();
    for (ws, id) in LISTED {
        let text: String = sqlx::query_scalar(
            "SELECT identities FROM profiles WHERE workspace_id = $1 AND id = $2",
        )
        .bind(ws)
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
        lists.push(text);
    }
    assert_identities_listed(lists.try_into().unwrap());
    pool.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

/// A pooled connection is handed out untested while it was used a moment ago, but one idle
/// for longer is tested first: the database may have closed it meanwhile (a restart, an idle
/// timeout), and then a fresh one takes its place instead of the request failing.
#[tokio::test]
async fn postgres_connections_idle_a_while_are_tested_before_use() {
    let Some((schema, store)) = PostgresSchema::open_with(|settings| {
        settings.max_connections = 1;
        settings.idle_before_test = std::time::Duration::from_millis(200);
    })
    .await
    else {
        return;
    };
    let backend = || async {
        sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
            .fetch_one(store.pool())
            .await
    };
    let first = backend().await.unwrap();
    let admin = sqlx::PgPool::connect(&schema.url).await.unwrap();
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(ended);
    admin.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let second = backend()
        .await
        .expect("the closed connection is found out and replaced");
    assert_ne!(first, second);
    store.pool().close().await;
    schema.drop().await;
}

#[tokio::test]
async fn workspaces_have_unique_names() {
    on_every_backend(|store| async move {
        let a = store.create_workspace("a", now()).await.unwrap();
        assert!(matches!(
            store.create_workspace("a", now()).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.workspace_by_name("a").await.unwrap(), Some(a.clone()));
        assert_eq!(store.workspace(a.id).await.unwrap(), Some(a));
        assert_eq!(store.workspace_by_name("missing").await.unwrap(), None);
        assert_eq!(store.list_workspaces().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn api_keys_are_listed_per_workspace_and_revoked_once() {
    on_every_backend(|store| async move {
        let a = workspace(&store, "a").await;
        let b = workspace(&store, "b").await;
        let key = |id: &str, ws| ApiKeyRecord {
            id: id.into(),
            workspace_id: ws,
            name: "k".into(),
            scope: Scope::Read,
            secret_hash: vec![1, 2, 3],
            created_at: now(),
            revoked_at: None,
        };
        let ka = key("ka", a);
        store.insert_api_key(&ka).await.unwrap();
        store.insert_api_key(&key("kb", b)).await.unwrap();
        assert!(matches!(
            store.insert_api_key(&key("ka", b)).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.api_key("ka").await.unwrap(), Some(ka));
        assert_eq!(store.api_key("nope").await.unwrap(), None);
        assert_eq!(store.list_api_keys(Some(a)).await.unwrap().len(), 1);
        assert_eq!(store.list_api_keys(None).await.unwrap().len(), 2);
        assert!(
            !store.revoke_api_key(Some(b), "ka", now()).await.unwrap(),
            "revoked across workspaces"
        );
        assert!(store.revoke_api_key(Some(a), "ka", now()).await.unwrap());
        assert!(
            !store.revoke_api_key(Some(a), "ka", now()).await.unwrap(),
            "revoked twice"
        );
        assert!(
            store
                .api_key("ka")
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
    })
    .await;
}

#[tokio::test]
async fn a_committed_profile_reads_back_exactly() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        let p = profile("p1", &[("user_id", "u1"), ("email", "a@b.c")]);
        let mut tx = store.begin().await.unwrap();
        tx.insert_profile(ws, &p).await.unwrap();
        tx.commit().await.unwrap();
        let mut loaded = store.profile(ws, &p.id).await.unwrap().unwrap();
        loaded.identities.sort();
        let mut expected = p.clone();
        expected.identities.sort();
        assert_eq!(loaded, expected);
        for identity in &p.identities {
            assert_eq!(
                store
                    .profile_by_identity(ws, identity)
                    .await
                    .unwrap()
                    .map(|p| p.id),
                Some(p.id.clone())
            );
        }
    })
    .await;
}

#[tokio::test]
async fn an_uncommitted_transaction_leaves_nothing() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        let p = profile("p1", &[("user_id", "u1")]);
        {
            let mut tx = store.begin().await.unwrap();
            tx.insert_profile(ws, &p).await.unwrap();
            // dropped without commit
        }
        assert_eq!(store.profile(ws, &p.id).await.unwrap(), None);
        assert_eq!(
            store
                .profile_by_identity(ws, &p.identities[0])
                .await
                .unwrap()
                .map(|p| p.id),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn an_identity_points_at_one_profile_per_workspace() {
    on_every_backend(|store| async move {
        let (a, b) = same_profile_in_two_workspaces(&store).await;
        let u1 = Identity::new_unchecked("user_id", "u1");
        for ws in [a, b] {
            let owner = store
                .profile_by_identity(ws, &u1)
                .await
                .unwrap()
                .map(|p| p.id);
            assert_eq!(
                owner,
                Some(ProfileId("p1".into())),
                "the same identity lives in each workspace"
            );
        }

        let mut tx = store.begin().await.unwrap();
        tx.insert_profile(a, &profile("p2", &[])).await.unwrap();
        let taken = tx
            .insert_identity(
                a,
                &ProfileId("p2".into()),
                &Identity::new_unchecked("user_id", "u1"),
                now(),
            )
            .await;
        assert!(matches!(taken, Err(StoreError::IdentityTaken(_))));
    })
    .await;
}

#[tokio::test]
async fn updates_and_deletes_touch_only_their_workspace() {
    on_every_backend(|store| async move {
        let (a, b) = same_profile_in_two_workspaces(&store).await;

        let id = ProfileId("p1".into());
        let mut tx = store.begin().await.unwrap();
        let mut p = tx.profile(a, &id).await.unwrap().unwrap();
        p.properties.insert("plan".into(), json!("free"));
        p.touch(now());
        tx.update_profile(a, &p).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.profile(a, &id).await.unwrap().unwrap().version, 2);
        assert_eq!(
            store.profile(b, &id).await.unwrap().unwrap().properties["plan"],
            "pro"
        );

        let mut tx = store.begin().await.unwrap();
        assert!(tx.delete_profile(a, &id).await.unwrap());
        assert!(!tx.delete_profile(a, &id).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(store.profile(a, &id).await.unwrap(), None);
        assert_eq!(
            store
                .profile_by_identity(a, &Identity::new_unchecked("user_id", "u1"))
                .await
                .unwrap()
                .map(|p| p.id),
            None
        );
        assert!(store.profile(b, &id).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn identities_detach_from_their_own_profile_only() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        let mut tx = store.begin().await.unwrap();
        tx.insert_profile(ws, &profile("p1", &[("user_id", "u1")]))
            .await
            .unwrap();
        tx.insert_profile(ws, &profile("p2", &[("user_id", "u2")]))
            .await
            .unwrap();
        let u1 = Identity::new_unchecked("user_id", "u1");
        assert!(
            !tx.delete_identity(ws, &ProfileId("p2".into()), &u1)
                .await
                .unwrap()
        );
        assert!(
            tx.delete_identity(ws, &ProfileId("p1".into()), &u1)
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
        assert_eq!(
            store
                .profile_by_identity(ws, &u1)
                .await
                .unwrap()
                .map(|p| p.id),
            None
        );
        assert!(store.ping().await.is_ok());
    })
    .await;
}

/// Every way a profile's identities change shows in every way it is read: by id (decoded
/// and raw), by identity, and in a search page. (SQLite keeps them in the profile's row as
/// well as in the identities table; the two must not drift apart.)
#[tokio::test]
async fn a_profile_reads_back_the_identities_it_carries_after_each_change() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        let (p1, p2) = (ProfileId("p1".into()), ProfileId("p2".into()));
        let id = |kind: &str, value: &str| Identity::new_unchecked(kind, value);
        let expect = |pairs: &[(&str, &str)]| {
            let mut identities: Vec<Identity> = pairs.iter().map(|(k, v)| id(k, v)).collect();
            identities.sort();
            identities
        };
        let check = |label: &'static str, profile: ProfileId, pairs: Vec<Identity>| {
            let store = store.clone();
            async move {
                let decoded = store.profile(ws, &profile).await.unwrap().unwrap();
                assert_eq!(decoded.identities, pairs, "{label}: by id");
                let raw = store.profile_raw(ws, &profile).await.unwrap().unwrap();
                assert_eq!(raw.identities, pairs, "{label}: raw by id");
                for identity in &pairs {
                    let owner = store.profile_by_identity_raw(ws, identity).await.unwrap();
                    assert_eq!(
                        owner.map(|o| (o.id, o.identities)),
                        Some((profile.clone(), pairs.clone())),
                        "{label}: by {identity:?}"
                    );
                }
                let query = SearchQuery {
                    filter: Filter::all(),
                    now: now(),
                    sort: vec![],
                    after: None,
                    limit: 20,
                };
                let page = store.search_raw(ws, &query).await.unwrap();
                let found = page.profiles.iter().find(|p| p.id == profile).unwrap();
                assert_eq!(found.identities, pairs, "{label}: in a search");
            }
        };

        let mut tx = store.begin().await.unwrap();
        tx.insert_profile(ws, &profile("p1", &[("user_id", "u1")]))
            .await
            .unwrap();
        tx.insert_profile(
            ws,
            &profile("p2", &[("user_id", "u2"), ("email", "e2@x.io")]),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        check("inserted", p1.clone(), expect(&[("user_id", "u1")])).await;
        check(
            "inserted",
            p2.clone(),
            expect(&[("user_id", "u2"), ("email", "e2@x.io")]),
        )
        .await;

        let mut tx = store.begin().await.unwrap();
        tx.insert_identity(ws, &p1, &id("email", "e1@x.io"), now())
            .await
            .unwrap();
        let attach = [
            (p1.clone(), id("anonymous_id", "a1")),
            (p2.clone(), id("anonymous_id", "a2")),
            (p2.clone(), id("anonymous_id", "a3")),
        ];
        tx.insert_identities(ws, &attach, now()).await.unwrap();
        assert!(
            tx.delete_identity(ws, &p2, &id("anonymous_id", "a3"))
                .await
                .unwrap()
        );
        assert!(
            tx.move_identity(ws, &id("anonymous_id", "a2"), &p2, &p1)
                .await
                .unwrap()
        );
        // Read inside the transaction too: a merge decides from what it reads there.
        let inside = tx.profile(ws, &p1).await.unwrap().unwrap();
        assert_eq!(
            inside.identities,
            expect(&[
                ("user_id", "u1"),
                ("email", "e1@x.io"),
                ("anonymous_id", "a1"),
                ("anonymous_id", "a2")
            ])
        );
        tx.commit().await.unwrap();
        check(
            "attached, detached, moved",
            p1.clone(),
            expect(&[
                ("user_id", "u1"),
                ("email", "e1@x.io"),
                ("anonymous_id", "a1"),
                ("anonymous_id", "a2"),
            ]),
        )
        .await;
        check(
            "attached, detached, moved",
            p2.clone(),
            expect(&[("user_id", "u2"), ("email", "e2@x.io")]),
        )
        .await;

        // A merge hands the absorbed profile's identities to the survivor.
        let mut tx = store.begin().await.unwrap();
        record_merge(&mut *tx, ws, &p1, &p2).await;
        tx.commit().await.unwrap();
        check(
            "merged",
            p1.clone(),
            expect(&[
                ("user_id", "u1"),
                ("email", "e1@x.io"),
                ("anonymous_id", "a1"),
                ("anonymous_id", "a2"),
                ("user_id", "u2"),
                ("email", "e2@x.io"),
            ]),
        )
        .await;
        assert!(store.profile(ws, &p2).await.unwrap().is_none());
    })
    .await;
}

/// A deleted profile leaves none of its identities behind, whichever way it came by them
/// (inserted with it, attached later, moved to it, taken in a merge): each can be taken by a
/// new profile, and none leads anywhere meanwhile. (SQLite finds a profile's identity rows
/// only through the list in its row.)
#[tokio::test]
async fn a_deleted_profile_frees_every_identity_it_carried() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        let (p1, p2, p3) = (
            ProfileId("p1".into()),
            ProfileId("p2".into()),
            ProfileId("p3".into()),
        );
        let id = |kind: &str, value: &str| Identity::new_unchecked(kind, value);
        let carried = [
            id("user_id", "u1"),
            id("email", "e1@x.io"),
            id("anonymous_id", "a1"),
            id("user_id", "u2"),
            id("anonymous_id", "a2"),
        ];

        let mut tx = store.begin().await.unwrap();
        tx.insert_profile(ws, &profile("p1", &[("user_id", "u1")]))
            .await
            .unwrap();
        tx.insert_profile(
            ws,
            &profile("p2", &[("user_id", "u2"), ("anonymous_id", "a2")]),
        )
        .await
        .unwrap();
        tx.insert_profile(ws, &profile("p3", &[("anonymous_id", "a3")]))
            .await
            .unwrap();
        tx.insert_identity(ws, &p1, &carried[1], now())
            .await
            .unwrap();
        tx.insert_identities(ws, &[(p3.clone(), carried[2].clone())], now())
            .await
            .unwrap();
        assert!(tx.move_identity(ws, &carried[2], &p3, &p1).await.unwrap());
        record_merge(&mut *tx, ws, &p1, &p2).await;
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        assert!(tx.delete_profile(ws, &p1).await.unwrap());
        tx.commit().await.unwrap();
        for identity in &carried {
            assert_eq!(
                store.profile_by_identity(ws, identity).await.unwrap(),
                None,
                "{identity:?} leads nowhere"
            );
        }
        let mut tx = store.begin().await.unwrap();
        let pairs: Vec<(&str, &str)> = carried
            .iter()
            .map(|i| (i.kind.as_str(), i.value.as_str()))
            .collect();
        tx.insert_profile(ws, &profile("p4", &pairs)).await.unwrap();
        tx.commit().await.unwrap();
        for identity in &carried {
            let owner = store.profile_by_identity(ws, identity).await.unwrap();
            assert_eq!(owner.map(|p| p.id), Some(ProfileId("p4".into())));
        }
        // The profile that only lent an identity keeps the rest of its own.
        let p3 = store.profile(ws, &p3).await.unwrap().unwrap();
        assert_eq!(p3.identities, vec![id("anonymous_id", "a3")]);
    })
    .await;
}

/// A search for one identity value finds its profile through the identities' key, not by
/// visiting every profile (on SQLite, whose identities have no index by profile).
#[tokio::test]
async fn an_identity_equality_searches_by_the_identity_key() {
    on_every_backend(|store| async move {
        let (ws, other) = (workspace(&store, "w").await, workspace(&store, "v").await);
        let mut tx = store.begin().await.unwrap();
        for i in 0..300 {
            let email = format!("user{i}@x.io");
            tx.insert_profile(ws, &profile(&format!("p{i:03}"), &[("email", &email)]))
                .await
                .unwrap();
        }
        // The same value in another workspace belongs to another profile.
        tx.insert_profile(other, &profile("p900", &[("email", "user7@x.io")]))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let query = SearchQuery {
            filter: Filter::parse(r#"identities.email = "user7@x.io""#).unwrap(),
            now: now(),
            sort: vec![],
            after: None,
            limit: 20,
        };
        let found: Vec<ProfileId> = store
            .search(ws, &query)
            .await
            .unwrap()
            .profiles
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(found, vec![ProfileId("p007".into())]);
        assert_eq!(store.count(ws, &query.filter, now()).await.unwrap(), 1);
        if store.backend() == "sqlite" {
            let plan = store.explain_search(ws, &query).await.unwrap();
            assert!(
                plan.lines()
                    .any(|step| step.starts_with("SEARCH p ") && step.contains(" AND id=?)")),
                "the profiles were not looked up by id: {plan}"
            );
        }
    })
    .await;
}

async fn insert_numbered(store: &Arc<dyn Store>, ws: WorkspaceId, count: usize) {
    let mut tx = store.begin().await.unwrap();
    for i in 0..count {
        let mut p = profile(&format!("p{i:03}"), &[]);
        // Every third profile lacks `n`; values repeat so ties need the id tie-break.
        if i % 3 != 0 {
            p.properties.insert("n".into(), json!(i % 4));
        }
        p.properties
            .insert("plan".into(), json!(["free", "pro"][i % 2]));
        tx.insert_profile(ws, &p).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// A short page whose matches lie far apart (no index, few matches among many rows): on
/// SQLite it runs past the budget of work done on the calling thread and is read again on a
/// blocking thread, with the same answer.
#[tokio::test]
async fn a_short_page_of_scattered_matches_finds_them_all() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        let mut tx = store.begin().await.unwrap();
        for i in 0..3000 {
            let mut p = profile(&format!("p{i:04}"), &[]);
            p.properties.insert("rank".into(), json!(i));
            tx.insert_profile(ws, &p).await.unwrap();
        }
        tx.commit().await.unwrap();
        let query = |filter: &str| SearchQuery {
            filter: Filter::parse(filter).unwrap(),
            now: now(),
            sort: vec![],
            after: None,
            limit: 20,
        };
        let page = store
            .search_raw(ws, &query("properties.rank >= 2990 or properties.rank = 7"))
            .await
            .unwrap();
        let ids: Vec<String> = page.profiles.into_iter().map(|p| p.id.0).collect();
        let expected: Vec<String> = std::iter::once(7)
            .chain(2990..3000)
            .map(|i| format!("p{i:04}"))
            .collect();
        assert_eq!(ids, expected);
        assert!(page.next.is_none());
    })
    .await;
}

#[tokio::test]
async fn keyset_pages_cover_every_match_once_in_sort_order() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        insert_numbered(&store, ws, 25).await;
        for descending in [false, true] {
            let sort = vec![SortKey {
                field: Field::parse("properties.n").unwrap(),
                descending,
            }];
            let query = |after, limit| SearchQuery {
                filter: Filter::all(),
                now: now(),
                sort: sort.clone(),
                after,
                limit,
            };
            let all: Vec<String> = store
                .search(ws, &query(None, 1000))
                .await
                .unwrap()
                .profiles
                .into_iter()
                .map(|p| p.id.0)
                .collect();
            assert_eq!(all.len(), 25);
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = store.search(ws, &query(after.clone(), 4)).await.unwrap();
                paged.extend(page.profiles.into_iter().map(|p| p.id.0));
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            assert_eq!(paged, all, "descending = {descending}");
            // Missing values sort first ascending and last descending; ties by id.
            let (first, last) = if descending {
                ("p007", "p024")
            } else {
                ("p000", "p023")
            };
            assert_eq!((all[0].as_str(), all[24].as_str()), (first, last));
        }
    })
    .await;
}

#[tokio::test]
async fn a_raw_page_shows_what_the_decoded_page_holds() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        let mut tx = store.begin().await.unwrap();
        for i in 0..7 {
            let mut p = profile(
                &format!("p{i}"),
                &[
                    ("user_id", &format!("u{i}")),
                    ("email", &format!("{i}@x.io")),
                ],
            );
            p.properties.insert("n".into(), json!(i));
            p.properties
                .insert("text".into(), json!(format!("é \"quoted\" {i}")));
            tx.insert_profile(ws, &p).await.unwrap();
        }
        tx.commit().await.unwrap();
        let query = |after| SearchQuery {
            filter: Filter::parse("properties.n >= 1").unwrap(),
            now: now(),
            sort: vec![SortKey {
                field: Field::parse("properties.n").unwrap(),
                descending: true,
            }],
            after,
            limit: 4,
        };
        let mut after = None;
        let mut seen = 0;
        loop {
            let decoded = store.search(ws, &query(after.clone())).await.unwrap();
            let raw = store.search_raw(ws, &query(after.clone())).await.unwrap();
            assert_eq!(raw.next, decoded.next);
            assert_eq!(raw.profiles.len(), decoded.profiles.len());
            for (raw, decoded) in raw.profiles.iter().zip(decoded.profiles) {
                let expected = RawProfile::from(decoded);
                assert_eq!(raw.id, expected.id);
                assert_eq!(raw.identities, expected.identities);
                for (got, want) in [
                    (&raw.properties, &expected.properties),
                    (&raw.computed, &expected.computed),
                    (&raw.location, &expected.location),
                    (&raw.device, &expected.device),
                ] {
                    // The same text, not only the same JSON: every read shows a profile alike.
                    assert_eq!(got.get(), want.get());
                }
                assert_eq!(
                    (raw.created_at, raw.updated_at, raw.version),
                    (expected.created_at, expected.updated_at, expected.version)
                );
                assert_eq!(
                    (&raw.company, &raw.segments),
                    (&expected.company, &expected.segments)
                );
            }
            seen += raw.profiles.len();
            match raw.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, 6);
        // Point reads show the same text as the decoded read.
        let id = ProfileId("p3".into());
        let by_id = store.profile_raw(ws, &id).await.unwrap().unwrap();
        let by_identity = store
            .profile_by_identity_raw(ws, &Identity::new_unchecked("user_id", "u3"))
            .await
            .unwrap()
            .unwrap();
        let expected = RawProfile::from(store.profile(ws, &id).await.unwrap().unwrap());
        for raw in [by_id, by_identity] {
            assert_eq!(
                (&raw.id, &raw.identities),
                (&expected.id, &expected.identities)
            );
            assert_eq!(raw.properties.get(), expected.properties.get());
            assert_eq!(raw.location.get(), expected.location.get());
            assert_eq!(raw.version, expected.version);
        }
        assert!(
            store
                .profile_raw(ws, &ProfileId("nobody".into()))
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn mixed_types_sort_in_one_order_on_every_backend() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        // Missing and null first, then numbers and booleans (as 0 and 1) by value, then
        // strings byte by byte; ties by id.
        let values = [
            ("a", None),
            ("b", Some(json!("b"))),
            ("c", Some(json!(2))),
            ("d", Some(json!(true))),
            ("e", Some(json!(null))),
            ("f", Some(json!(1.5))),
            ("g", Some(json!("B"))),
            ("h", Some(json!(false))),
            ("i", Some(json!(0))),
            ("j", Some(json!("10"))),
            ("k", Some(json!(1))),
            ("l", Some(json!(-3.25))),
        ];
        let mut tx = store.begin().await.unwrap();
        for (id, value) in &values {
            let mut p = profile(id, &[]);
            if let Some(v) = value {
                p.properties.insert("v".into(), v.clone());
            }
            tx.insert_profile(ws, &p).await.unwrap();
        }
        tx.commit().await.unwrap();
        let ascending = ["a", "e", "l", "h", "i", "d", "k", "f", "c", "j", "g", "b"];
        for descending in [false, true] {
            let query = |after, limit| SearchQuery {
                filter: Filter::all(),
                now: now(),
                sort: vec![SortKey {
                    field: Field::parse("properties.v").unwrap(),
                    descending,
                }],
                after,
                limit,
            };
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = store.search(ws, &query(after.clone(), 3)).await.unwrap();
                paged.extend(page.profiles.into_iter().map(|p| p.id.0));
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            // Descending reverses the values but keeps ties in id order.
            let expected: Vec<&str> = if descending {
                ["b", "g", "j", "c", "f", "d", "k", "h", "i", "l", "a", "e"].to_vec()
            } else {
                ascending.to_vec()
            };
            assert_eq!(
                paged,
                expected,
                "{} on {}",
                if descending {
                    "descending"
                } else {
                    "ascending"
                },
                store.backend()
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_declared_index_serves_equality_range_and_sort() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        // Selective values, as indexes are declared for: 40 plans, and a distinct `rank` each.
        // (On a field with two values SQLite rightly prefers walking the primary key.)
        let mut tx = store.begin().await.unwrap();
        for i in 0..400 {
            let mut p = profile(&format!("p{i:03}"), &[]);
            p.properties.insert(
                "plan".into(),
                json!(if i % 40 == 0 {
                    "team".to_owned()
                } else {
                    format!("plan{}", i % 40)
                }),
            );
            p.properties.insert("rank".into(), json!(i));
            tx.insert_profile(ws, &p).await.unwrap();
        }
        tx.commit().await.unwrap();
        let plan_field = Field::parse("properties.plan").unwrap();
        let query = |filter: &str, sort: Vec<SortKey>| SearchQuery {
            filter: Filter::parse(filter).unwrap(),
            now: now(),
            sort,
            after: None,
            limit: 20,
        };
        let equality = query(r#"properties.plan = "team""#, vec![]);
        let before = store.explain_search(ws, &equality).await.unwrap();
        assert!(
            !before.contains("profiles_by_"),
            "an undeclared path used an index: {before}"
        );

        store
            .declare_index(ws, &plan_field, ValueType::String, now())
            .await
            .unwrap();
        store
            .declare_index(
                ws,
                &Field::parse("properties.rank").unwrap(),
                ValueType::Number,
                now(),
            )
            .await
            .unwrap();
        for q in [
            equality,
            query("properties.rank >= 390", vec![]),
            // Selective enough for any planner; sorted by the indexed path.
            query(
                "properties.rank >= 380",
                vec![SortKey {
                    field: Field::parse("properties.rank").unwrap(),
                    descending: true,
                }],
            ),
        ] {
            let plan = store.explain_search(ws, &q).await.unwrap();
            assert!(
                plan.contains("profiles_by_"),
                "{:?} did not use the index: {plan}",
                q.filter
            );
        }
        // Newest first on an indexed equality (Chameleon's search order): the index is walked
        // backwards, with no sort of every match.
        let newest_first = query(
            r#"properties.plan = "team""#,
            vec![SortKey {
                field: Field::Id,
                descending: true,
            }],
        );
        let plan = store.explain_search(ws, &newest_first).await.unwrap();
        assert!(plan.contains("profiles_by_"), "{plan}");
        if plan.contains("SEARCH") {
            assert!(
                !plan.contains("TEMP B-TREE"),
                "SQLite sorted the matches: {plan}"
            );
        }
        let page = store.search(ws, &newest_first).await.unwrap();
        let ids: Vec<&str> = page.profiles.iter().map(|p| p.id.0.as_str()).collect();
        assert_eq!(
            ids,
            [
                "p360", "p320", "p280", "p240", "p200", "p160", "p120", "p080", "p040", "p000"
            ]
        );
        let indexes = store.property_indexes(ws).await.unwrap();
        assert_eq!(indexes.len(), 2);
        assert_eq!(
            store
                .count(
                    ws,
                    &Filter::parse(r#"properties.plan = "team""#).unwrap(),
                    now()
                )
                .await
                .unwrap(),
            10
        );

        assert!(store.drop_index(ws, &plan_field).await.unwrap());
        assert!(!store.drop_index(ws, &plan_field).await.unwrap());
        let after = store
            .explain_search(ws, &query(r#"properties.plan = "team""#, vec![]))
            .await
            .unwrap();
        assert!(
            !after.contains("profiles_by_"),
            "a dropped index is still used: {after}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_writers_never_stall_the_others() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        for round in 0..5 {
            let mut tasks = Vec::new();
            for i in 0..30 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut tx = store.begin().await.unwrap();
                    tx.insert_profile(ws, &profile(&format!("r{round}p{i}"), &[]))
                        .await
                        .unwrap();
                    tokio::task::yield_now().await;
                    tx.commit().await.unwrap();
                }));
            }
            // Cancel a third of them wherever they are: queued, mid-transaction or committing.
            tokio::task::yield_now().await;
            for task in tasks.iter().step_by(3) {
                task.abort();
            }
            for (i, task) in tasks.into_iter().enumerate() {
                let outcome = task.await;
                if i % 3 != 0 {
                    assert!(
                        outcome.is_ok(),
                        "writer {i} of round {round} failed: {outcome:?}"
                    );
                }
            }
        }
        let write = async {
            let mut tx = store.begin().await.unwrap();
            tx.insert_profile(ws, &profile("after", &[])).await.unwrap();
            tx.commit().await.unwrap();
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), write)
            .await
            .expect("a write after cancellations completes");
        assert!(
            store
                .profile(ws, &ProfileId("after".into()))
                .await
                .unwrap()
                .is_some()
        );
    })
    .await;
}

#[tokio::test]
async fn the_change_log_keeps_order_per_workspace_and_forgets_deleted_profiles() {
    use profiled_core::change::{KeyChange, NewChange, Operation};
    on_every_backend(|store| async move {
        let (a, b) = same_profile_in_two_workspaces(&store).await;
        let id = ProfileId("p1".into());
        let entry = |n: i64| NewChange {
            profile_id: id.clone(),
            at: now(),
            actor: "key:k".into(),
            operation: Operation::Update,
            changes: vec![KeyChange {
                key: "properties.n".into(),
                before: None,
                after: Some(json!(n)),
            }],
            origin: (n == 2).then(|| "sync".to_owned()),
        };
        let mut tx = store.begin().await.unwrap();
        let s1 = tx.append_change(a, &entry(1)).await.unwrap();
        let s2 = tx.append_change(a, &entry(2)).await.unwrap();
        tx.append_change(b, &entry(3)).await.unwrap();
        tx.commit().await.unwrap();
        assert!(s1 < s2);

        let feed = store.changes(a, 0, 10).await.unwrap();
        assert_eq!(feed.iter().map(|c| c.seq).collect::<Vec<_>>(), [s1, s2]);
        let stored = &feed[1].entry;
        assert_eq!(
            (
                &stored.changes,
                stored.origin.as_deref(),
                stored.actor.as_str()
            ),
            (&entry(2).changes, Some("sync"), "key:k")
        );
        assert_eq!(
            (stored.operation, &stored.profile_id),
            (Operation::Update, &id)
        );
        assert_eq!(store.changes(a, s1, 10).await.unwrap().len(), 1);
        let history = store.history(a, &id, None, 10).await.unwrap();
        assert_eq!(history.iter().map(|c| c.seq).collect::<Vec<_>>(), [s2, s1]);
        assert_eq!(store.history(a, &id, Some(s2), 10).await.unwrap().len(), 1);

        let mut tx = store.begin().await.unwrap();
        assert!(tx.delete_profile(a, &id).await.unwrap());
        tx.commit().await.unwrap();
        assert!(
            store.changes(a, 0, 10).await.unwrap().is_empty(),
            "a deleted profile's entries are gone"
        );
        assert_eq!(
            store.changes(b, 0, 10).await.unwrap().len(),
            1,
            "another workspace's entries stay"
        );
    })
    .await;
}

#[tokio::test]
async fn batch_writes_read_back_like_single_ones() {
    on_every_backend(|store| async move {
        let ws = workspace(&store, "w").await;
        let mut profiles: Vec<Profile> = (0..3)
            .map(|i| profile(&format!("b{i}"), &[("user_id", &format!("bu{i}"))]))
            .collect();
        let mut tx = store.begin().await.unwrap();
        tx.insert_profiles(ws, &profiles).await.unwrap();
        tx.commit().await.unwrap();

        for p in &mut profiles[..2] {
            p.properties.insert("plan".into(), json!("team"));
            p.touch(now());
        }
        let attach = vec![(
            ProfileId("b0".into()),
            Identity::new_unchecked("email", "b0@x.io"),
        )];
        let entries: Vec<profiled_core::change::NewChange> = (0..3)
            .map(|i| profiled_core::change::NewChange {
                profile_id: ProfileId(format!("b{i}")),
                at: now(),
                actor: "test".into(),
                operation: profiled_core::change::Operation::Update,
                changes: Vec::new(),
                origin: None,
            })
            .collect();
        let mut tx = store.begin().await.unwrap();
        tx.update_profiles(ws, &profiles[..2]).await.unwrap();
        tx.insert_identities(ws, &attach, now()).await.unwrap();
        tx.append_changes(ws, &entries).await.unwrap();
        tx.commit().await.unwrap();

        let b0 = store
            .profile(ws, &ProfileId("b0".into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b0.properties["plan"], "team");
        assert_eq!(b0.version, 2);
        assert_eq!(b0.identities.len(), 2);
        let b2 = store
            .profile(ws, &ProfileId("b2".into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b2, profiles[2]);
        let by_email = store
            .profile_by_identity(ws, &Identity::new_unchecked("email", "b0@x.io"))
            .await
            .unwrap();
        assert_eq!(by_email.map(|p| p.id.0), Some("b0".into()));
        let feed = store.changes(ws, 0, 10).await.unwrap();
        let ids: Vec<&str> = feed.iter().map(|c| c.entry.profile_id.0.as_str()).collect();
        assert_eq!(ids, ["b0", "b1", "b2"]);

        // An identity already taken fails the batch, and nothing of it stays.
        let mut tx = store.begin().await.unwrap();
        let clash = vec![(
            ProfileId("b1".into()),
            Identity::new_unchecked("email", "b0@x.io"),
        )];
        assert!(tx.insert_identities(ws, &clash, now()).await.is_err());
        drop(tx);
        let b1 = store
            .profile(ws, &ProfileId("b1".into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b1.identities.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn events_are_kept_per_profile_paged_moved_by_merges_and_erased() {
    on_every_backend(|store| async move {
        let (a, b) = same_profile_in_two_workspaces(&store).await;
        let t = |minutes: i64| now() - jiff::SignedDuration::from_mins(minutes);
        let mut tx = store.begin().await.unwrap();
        tx.insert_profile(a, &profile("p2", &[("anonymous_id", "x")]))
            .await
            .unwrap();
        let events = [
            stored_event("e1", "p1", t(30)),
            stored_event("e2", "p1", t(20)),
            stored_event("e3", "p1", t(20)),
            stored_event("e4", "p2", t(10)),
        ];
        tx.insert_events(a, &events).await.unwrap();
        tx.insert_events(b, &events[..1]).await.unwrap();
        let asked = ["e1".to_owned(), "e9".to_owned(), "e4".to_owned()];
        let mut known = tx.known_event_ids(a, &asked).await.unwrap();
        known.sort();
        assert_eq!(known, ["e1", "e4"]);
        tx.commit().await.unwrap();

        let p1 = ProfileId("p1".into());
        let page = store.events(a, &p1, None, 2).await.unwrap();
        let ids: Vec<&str> = page.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e3", "e2"], "newest first, ties by id");
        assert_eq!(page[0], events[2], "an event reads back exactly");
        let last = page.last().unwrap();
        let rest = store
            .events(a, &p1, Some((last.at, &last.id)), 10)
            .await
            .unwrap();
        assert_eq!(
            rest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["e1"]
        );

        let mut tx = store.begin().await.unwrap();
        let recent = tx.events_since(a, &p1, t(25)).await.unwrap();
        assert_eq!(
            recent.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["e2", "e3"]
        );
        // A merge gives the absorbed profile's events to the survivor.
        record_merge(&mut *tx, a, &p1, &ProfileId("p2".into())).await;
        tx.commit().await.unwrap();
        assert_eq!(store.events(a, &p1, None, 10).await.unwrap().len(), 4);

        // Clearing erases a profile's events, in its own workspace only.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.delete_events(a, &p1).await.unwrap(), 4);
        tx.commit().await.unwrap();
        assert!(store.events(a, &p1, None, 10).await.unwrap().is_empty());
        assert_eq!(store.events(b, &p1, None, 10).await.unwrap().len(), 1);
        // Retention: only events older than the cut go.
        assert_eq!(store.prune_events(t(40)).await.unwrap(), 0);
        assert_eq!(store.prune_events(t(25)).await.unwrap(), 1);
        // Forgetting takes the events with the profile.
        let mut tx = store.begin().await.unwrap();
        tx.insert_events(b, &[stored_event("e5", "p1", now())])
            .await
            .unwrap();
        assert!(tx.delete_profile(b, &p1).await.unwrap());
        tx.commit().await.unwrap();
        assert!(store.events(b, &p1, None, 10).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn computed_definitions_are_kept_per_workspace() {
    on_every_backend(|store| async move {
        let (a, b) = (workspace(&store, "a").await, workspace(&store, "b").await);
        let record = ComputedRecord {
            key: "total".into(),
            definition: json!({"aggregate": "sum", "property": "amount"}),
            created_at: now(),
            updated_at: now(),
        };
        store.save_computed_definition(a, &record).await.unwrap();
        let replaced = ComputedRecord {
            definition: json!({"aggregate": "max", "property": "amount"}),
            ..record.clone()
        };
        store.save_computed_definition(a, &replaced).await.unwrap();
        assert_eq!(store.computed_definitions(a).await.unwrap(), [replaced]);
        assert!(store.computed_definitions(b).await.unwrap().is_empty());
        assert!(!store.delete_computed_definition(b, "total").await.unwrap());
        assert!(store.delete_computed_definition(a, "total").await.unwrap());
        assert!(store.computed_definitions(a).await.unwrap().is_empty());
    })
    .await;
}

fn segment(key: &str, version: i64) -> profiled_store::SegmentRecord {
    profiled_store::SegmentRecord {
        key: key.into(),
        name: format!("{key} users"),
        filter: json!("properties.plan = \"pro\""),
        created_at: now(),
        updated_at: now(),
        version,
        reconciled_version: 0,
        reconciled_at: None,
        moves_with_clock: false,
    }
}

fn moved(id: &ProfileId, entered: &[&str], left: &[&str]) -> profiled_store::SegmentMove {
    profiled_store::SegmentMove {
        profile_id: id.clone(),
        moves: profiled_core::segment::Moves {
            entered: entered.iter().map(|k| k.to_string()).collect(),
            left: left.iter().map(|k| k.to_string()).collect(),
        },
        at: now(),
    }
}

#[tokio::test]
async fn segment_memberships_follow_moves_and_leave_with_their_profile_or_segment() {
    on_every_backend(|store| async move {
        let (a, b) = same_profile_in_two_workspaces(&store).await;
        let p1 = ProfileId("p1".into());
        store.save_segment(a, &segment("pro", 1)).await.unwrap();
        store.save_segment(a, &segment("vip", 1)).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.move_segments(a, &[moved(&p1, &["pro", "vip"], &[])])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let read = store.profile(a, &p1).await.unwrap().unwrap();
        assert_eq!(read.segments.iter().collect::<Vec<_>>(), ["pro", "vip"]);
        assert!(
            store
                .profile(b, &p1)
                .await
                .unwrap()
                .unwrap()
                .segments
                .is_empty()
        );
        assert_eq!(store.segment_size(a, "pro").await.unwrap(), 1);
        let members = store.segment_members(a, "pro", None, 10).await.unwrap();
        assert_eq!(members[0].profile_id, p1);
        assert!(
            store
                .segment_members(a, "pro", Some("p1"), 10)
                .await
                .unwrap()
                .is_empty()
        );

        let mut tx = store.begin().await.unwrap();
        tx.move_segments(a, &[moved(&p1, &[], &["vip"])])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let read = store.profile(a, &p1).await.unwrap().unwrap();
        assert_eq!(read.segments.iter().collect::<Vec<_>>(), ["pro"]);

        // A deleted segment takes its memberships along; one written by a node that did not
        // know yet is swept.
        assert!(store.delete_segment(a, "pro", now()).await.unwrap());
        assert!(!store.delete_segment(a, "pro", now()).await.unwrap());
        assert!(
            store
                .profile(a, &p1)
                .await
                .unwrap()
                .unwrap()
                .segments
                .is_empty()
        );
        let mut tx = store.begin().await.unwrap();
        tx.move_segments(a, &[moved(&p1, &["pro", "vip"], &[])])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let before = now() - jiff::SignedDuration::from_mins(5);
        assert_eq!(store.sweep_segment_members(before).await.unwrap(), 1);
        assert_eq!(store.segment_size(a, "vip").await.unwrap(), 1);
        // A key deleted and defined again keeps its new members; old tombstones are forgotten.
        assert!(store.delete_segment(a, "vip", now()).await.unwrap());
        store.save_segment(a, &segment("vip", 1)).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.move_segments(a, &[moved(&p1, &["vip"], &[])])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let later = now() + jiff::SignedDuration::from_mins(1);
        assert_eq!(store.sweep_segment_members(later).await.unwrap(), 0);
        assert_eq!(store.segment_size(a, "vip").await.unwrap(), 1);
        let mut tx = store.begin().await.unwrap();
        tx.move_segments(a, &[moved(&p1, &[], &["vip"])])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(
            store
                .profile(a, &p1)
                .await
                .unwrap()
                .unwrap()
                .segments
                .is_empty()
        );

        // A deleted profile leaves its segments.
        let mut tx = store.begin().await.unwrap();
        tx.move_segments(a, &[moved(&p1, &["vip"], &[])])
            .await
            .unwrap();
        assert!(tx.delete_profile(a, &p1).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(store.segment_size(a, "vip").await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn one_node_at_a_time_reconciles_a_due_segment() {
    on_every_backend(|store| async move {
        let a = workspace(&store, "a").await;
        let t0 = now();
        let later = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
        store.save_segment(a, &segment("pro", 1)).await.unwrap();
        // Not due until it has settled.
        assert!(
            store
                .segments_due(later(1), t0 - jiff::SignedDuration::from_secs(1), t0)
                .await
                .unwrap()
                .is_empty()
        );
        let due = store.segments_due(later(2), later(1), t0).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, a);
        assert!(
            store
                .lease_segment(a, "pro", later(2), later(62))
                .await
                .unwrap()
        );
        assert!(
            !store
                .lease_segment(a, "pro", later(3), later(63))
                .await
                .unwrap()
        );
        assert!(
            store
                .segments_due(later(3), later(2), t0)
                .await
                .unwrap()
                .is_empty()
        );
        // An abandoned lease runs out.
        assert!(
            store
                .lease_segment(a, "pro", later(63), later(123))
                .await
                .unwrap()
        );
        store
            .segment_reconciled(a, "pro", 1, later(64))
            .await
            .unwrap();
        let stored = &store.segments(a).await.unwrap()[0];
        assert_eq!(stored.reconciled_version, 1);
        assert_eq!(stored.reconciled_at, Some(later(64)));
        assert!(
            store
                .segments_due(later(70), later(69), t0)
                .await
                .unwrap()
                .is_empty()
        );
        // A segment on the clock comes due again once its last check is stale.
        store
            .save_segment(
                a,
                &profiled_store::SegmentRecord {
                    moves_with_clock: true,
                    ..segment("pro", 1)
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .segments_due(later(70), later(69), later(65))
                .await
                .unwrap()
                .len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn companies_are_unique_by_uid_per_workspace_and_let_go_of_profiles_when_deleted() {
    on_every_backend(|store| async move {
        let (a, b) = same_profile_in_two_workspaces(&store).await;
        let acme = profiled_store::CompanyRecord {
            id: "c1".into(),
            uid: "acme".into(),
            properties: json!({"plan": "enterprise"}).as_object().unwrap().clone(),
            created_at: now(),
            updated_at: now(),
            version: 1,
        };
        let mut tx = store.begin().await.unwrap();
        tx.save_company(a, &acme).await.unwrap();
        tx.save_company(b, &acme).await.unwrap();
        let mut p1 = tx
            .profile(a, &ProfileId("p1".into()))
            .await
            .unwrap()
            .unwrap();
        p1.company = Some("c1".into());
        tx.update_profile(a, &p1).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let twin = profiled_store::CompanyRecord {
            id: "c2".into(),
            ..acme.clone()
        };
        assert!(matches!(
            tx.save_company(a, &twin).await,
            Err(StoreError::Conflict(_))
        ));
        drop(tx);

        assert_eq!(
            store.company_by_uid(a, "acme").await.unwrap(),
            Some(acme.clone())
        );
        assert_eq!(store.company(a, "c1").await.unwrap(), Some(acme.clone()));
        assert!(store.company_by_uid(a, "other").await.unwrap().is_none());
        let page = |after, before, newest_first| CompanyPage {
            after,
            before,
            newest_first,
            limit: 10,
        };
        assert_eq!(
            store.companies(a, &page(None, None, false)).await.unwrap(),
            vec![acme.clone()]
        );
        assert!(
            store
                .companies(a, &page(Some("c1"), None, false))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .companies(a, &page(None, Some("c1"), true))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .companies(a, &page(Some("c0"), Some("c2"), true))
                .await
                .unwrap(),
            vec![acme.clone()]
        );

        assert!(store.delete_company(a, "c1").await.unwrap());
        assert!(store.company(a, "c1").await.unwrap().is_none());
        assert_eq!(
            store
                .profile(a, &ProfileId("p1".into()))
                .await
                .unwrap()
                .unwrap()
                .company,
            None
        );
        assert!(store.company(b, "c1").await.unwrap().is_some());
    })
    .await;
}

/// Another process (the CLI while a server runs) holding the database's write lock makes a
/// profile write wait for it, on a thread of its own, instead of failing; the write then lands.
#[tokio::test]
async fn a_profile_write_waits_for_another_process_holding_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_dir(dir.path(), &SqliteSettings::default())
            .await
            .unwrap(),
    );
    let ws = workspace(&store, "w").await;
    let other = rusqlite::Connection::open(dir.path().join(SqliteStore::FILE_NAME)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        released.recv().unwrap();
        other.execute_batch("COMMIT").unwrap();
    });
    let p = profile("p1", &[("user_id", "u1")]);
    let write = {
        let store = store.clone();
        let p = p.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await?;
            tx.insert_profile(ws, &p).await?;
            tx.commit().await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !write.is_finished(),
        "the write waits while the file is locked"
    );
    // Reads do not wait for the lock.
    assert_eq!(store.profile(ws, &p.id).await.unwrap(), None);
    release.send(()).unwrap();
    write.await.unwrap().unwrap();
    holder.join().unwrap();
    assert_eq!(
        store.profile(ws, &p.id).await.unwrap().map(|p| p.id),
        Some(p.id)
    );
    store.close().await;
}
