//! Keys, scopes and workspace isolation.

use profiled_core::Scope;
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, assert_problem};

backend_test! {
#[tokio::test]
async fn missing_or_bad_keys_are_401_with_a_bearer_challenge() {
    let app = TestApp::start().await;
    let none = app.call(Method::GET, "/v1/profiles/x", None, None).await;
    assert_problem(&none, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let last = if app.admin.ends_with('x') { "y" } else { "x" };
    let mangled = format!("{}{last}", &app.admin[..app.admin.len() - 1]);
    for key in [
        "nonsense",
        "prf_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        mangled.as_str(),
    ] {
        assert_problem(
            &app.call(Method::GET, "/v1/profiles/x", Some(key), None)
                .await,
            401,
        );
    }
    let basic = app
        .client
        .get(format!("{}/v1/profiles/x", app.base))
        .header("authorization", format!("Basic {}", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
}
}

backend_test! {
#[tokio::test]
async fn a_write_key_writes_but_never_reads_a_profile_back() {
    let app = TestApp::start().await;
    let write = app.key(Scope::Write).await;
    let created = app
        .upsert(
            &write,
            json!({"identities": {"user_id": "w"}, "set": {"secret": "s3"}}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert!(
        created.body.get("properties").is_none(),
        "a write key saw properties: {}",
        created.body
    );
    assert_eq!(created.body["version"], 1);
    let id = created.body["id"].as_str().unwrap();
    assert_problem(&app.get(&format!("/v1/profiles/{id}"), &write).await, 403);
    assert_problem(&app.get("/v1/profiles/by/user_id/w", &write).await, 403);
    let patched = app
        .call(
            Method::PATCH,
            &format!("/v1/profiles/{id}"),
            Some(&write),
            Some(json!({"set": {"b": 1}})),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert!(patched.body.get("properties").is_none());
    assert_problem(&app.get("/v1/keys", &write).await, 403);
}
}

backend_test! {
#[tokio::test]
async fn a_read_key_reads_but_cannot_write() {
    let app = TestApp::start().await;
    let read = app.key(Scope::Read).await;
    let created = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "r"}, "set": {"a": 1}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/profiles/{id}"), &read).await.status,
        200
    );
    assert_problem(
        &app.upsert(
            &read,
            json!({"identities": {"user_id": "r"}, "set": {"a": 2}}),
        )
        .await,
        403,
    );
    assert_problem(
        &app.call(
            Method::PATCH,
            &format!("/v1/profiles/{id}"),
            Some(&read),
            Some(json!({"set": {"a": 2}})),
        )
        .await,
        403,
    );
    assert_problem(&app.delete(&format!("/v1/profiles/{id}"), &read).await, 403);
    assert_problem(
        &app.post("/v1/keys", &read, json!({"scope": "admin"})).await,
        403,
    );
    assert_eq!(
        app.get(&format!("/v1/profiles/{id}"), &read).await.body["properties"],
        json!({"a": 1})
    );
}
}

backend_test! {
#[tokio::test]
async fn read_write_keys_do_both_but_cannot_manage_keys() {
    let app = TestApp::start().await;
    let rw = app.key(Scope::ReadWrite).await;
    let created = app
        .upsert(
            &rw,
            json!({"identities": {"user_id": "rw"}, "set": {"a": 1}}),
        )
        .await;
    assert_eq!(created.body["properties"], json!({"a": 1}));
    assert_problem(&app.get("/v1/keys", &rw).await, 403);
    assert_problem(
        &app.post("/v1/workspaces", &rw, json!({"name": "other"}))
            .await,
        403,
    );
}
}

backend_test! {
#[tokio::test]
async fn a_workspace_never_sees_another_workspaces_profiles() {
    let app = TestApp::start().await;
    let created_ws = app
        .post("/v1/workspaces", &app.admin, json!({"name": "acme"}))
        .await;
    assert_eq!(created_ws.status, 201, "{}", created_ws.body);
    let acme = created_ws.body["admin_key"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(created_ws.body["admin_key"]["scope"], "admin");

    let in_default = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "shared"}, "set": {"ws": "default"}}),
        )
        .await;
    let id = in_default.body["id"].as_str().unwrap();
    assert_problem(&app.get(&format!("/v1/profiles/{id}"), &acme).await, 404);
    assert_problem(&app.get("/v1/profiles/by/user_id/shared", &acme).await, 404);
    assert_problem(
        &app.call(
            Method::PATCH,
            &format!("/v1/profiles/{id}"),
            Some(&acme),
            Some(json!({"set": {"x": 1}})),
        )
        .await,
        404,
    );
    assert_problem(&app.delete(&format!("/v1/profiles/{id}"), &acme).await, 404);

    // The same identity in another workspace is another person.
    let in_acme = app
        .upsert(
            &acme,
            json!({"identities": {"user_id": "shared"}, "set": {"ws": "acme"}}),
        )
        .await;
    assert_eq!(in_acme.status, 201);
    assert_ne!(in_acme.body["id"], id);
    assert_eq!(
        app.get(&format!("/v1/profiles/{id}"), &app.admin)
            .await
            .body["properties"],
        json!({"ws": "default"})
    );

    let listed = app.get("/v1/workspaces", &acme).await;
    assert_eq!(listed.body["workspaces"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["workspaces"][0]["name"], "acme");
    assert_eq!(app.get("/v1/workspace", &acme).await.body["name"], "acme");
    let keys = app.get("/v1/keys", &acme).await;
    assert_eq!(keys.body["keys"].as_array().unwrap().len(), 1);
}
}

backend_test! {
#[tokio::test]
async fn admin_keys_manage_keys_of_their_own_workspace_only() {
    let app = TestApp::start().await;
    let created = app
        .post(
            "/v1/keys",
            &app.admin,
            json!({"scope": "read", "name": "dashboard"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.body["secret"].as_str().unwrap().to_owned();
    let key_id = created.body["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("prf_") && key.len() >= 43, "key {key}");
    assert_eq!(app.get("/v1/workspace", &key).await.status, 200);

    let listed = app.get("/v1/keys", &app.admin).await;
    let entry = listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["scope"], "read");
    assert_eq!(entry["name"], "dashboard");
    assert!(
        entry.get("secret").is_none(),
        "a listed key shows its secret"
    );

    let other = app
        .post("/v1/workspaces", &app.admin, json!({"name": "other"}))
        .await;
    let other_admin = other.body["admin_key"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_problem(
        &app.delete(&format!("/v1/keys/{key_id}"), &other_admin)
            .await,
        404,
    );
    assert_eq!(app.get("/v1/workspace", &key).await.status, 200);

    assert_eq!(
        app.delete(&format!("/v1/keys/{key_id}"), &app.admin)
            .await
            .status,
        204
    );
    assert_problem(&app.get("/v1/workspace", &key).await, 401);
    assert_problem(
        &app.delete(&format!("/v1/keys/{key_id}"), &app.admin).await,
        404,
    );
}
}

backend_test! {
#[tokio::test]
async fn workspace_names_are_validated_and_unique() {
    let app = TestApp::start().await;
    assert_problem(
        &app.post("/v1/workspaces", &app.admin, json!({"name": "Bad Name"}))
            .await,
        422,
    );
    assert_problem(
        &app.post("/v1/workspaces", &app.admin, json!({"name": "default"}))
            .await,
        409,
    );
    assert_problem(
        &app.post("/v1/keys", &app.admin, json!({"scope": "root"}))
            .await,
        422,
    );
}
}
