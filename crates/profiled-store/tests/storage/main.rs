//! The storage test suite. Every case runs on every backend: SQLite always (a temporary
//! file); other backends join as they are added.

use std::future::Future;
use std::sync::Arc;

use jiff::Timestamp;
use profiled_core::{Identity, Profile, ProfileId, Scope, WorkspaceId};
use profiled_store::sqlite::{SqliteSettings, SqliteStore};
use profiled_store::{ApiKeyRecord, Store, StoreError};
use serde_json::json;

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
    p
}

async fn workspace(store: &Arc<dyn Store>, name: &str) -> WorkspaceId {
    store.create_workspace(name, now()).await.unwrap().id
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
                store.profile_id_by_identity(ws, identity).await.unwrap(),
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
                .profile_id_by_identity(ws, &p.identities[0])
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn an_identity_points_at_one_profile_per_workspace() {
    on_every_backend(|store| async move {
        let a = workspace(&store, "a").await;
        let b = workspace(&store, "b").await;
        let mut tx = store.begin().await.unwrap();
        tx.insert_profile(a, &profile("p1", &[("user_id", "u1")]))
            .await
            .unwrap();
        tx.insert_profile(b, &profile("p1", &[("user_id", "u1")]))
            .await
            .unwrap();
        tx.commit().await.unwrap();

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
        let a = workspace(&store, "a").await;
        let b = workspace(&store, "b").await;
        let mut tx = store.begin().await.unwrap();
        tx.insert_profile(a, &profile("p1", &[("user_id", "u1")]))
            .await
            .unwrap();
        tx.insert_profile(b, &profile("p1", &[("user_id", "u1")]))
            .await
            .unwrap();
        tx.commit().await.unwrap();

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
                .profile_id_by_identity(a, &Identity::new_unchecked("user_id", "u1"))
                .await
                .unwrap(),
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
        assert_eq!(store.profile_id_by_identity(ws, &u1).await.unwrap(), None);
        assert!(store.ping().await.is_ok());
    })
    .await;
}
