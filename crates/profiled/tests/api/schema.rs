//! The workspace's profile schema: every write that changes properties must satisfy it;
//! stored profiles are never rewritten, and a proposed schema can be tried on them first.

use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem};

fn schema() -> Value {
    json!({
        "schema": {
            "type": "object",
            "properties": {
                "age": {"type": "integer", "minimum": 0},
                "plan": {"enum": ["free", "pro"]}
            }
        },
        "required": ["email"]
    })
}

async fn set_schema(app: &TestApp, body: Value) -> crate::support::Reply {
    app.call(
        Method::PUT,
        "/v1/workspace/schema",
        Some(&app.admin),
        Some(body),
    )
    .await
}

backend_test! {
#[tokio::test]
async fn every_write_path_is_checked_and_stored_profiles_stay() {
    let app = TestApp::start().await;
    // Stored before the schema: it stays, and the check reports it.
    let legacy = app
        .upsert(&app.admin, json!({"identities": {"user_id": "old"}, "set": {"age": -3}}))
        .await;
    assert_eq!(legacy.status, 201);
    let check = app
        .post("/v1/workspace/schema/check", &app.admin, schema())
        .await;
    assert_eq!(check.status, 200, "{}", check.body);
    assert_eq!(check.body["checked"], 1);
    assert_eq!(check.body["failing"], 1);
    let pointers: Vec<&str> = check.body["profiles"][0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/properties/email", "/properties/age"]);

    let set = set_schema(&app, schema()).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["required"], json!(["email"]));
    assert!(set.body["updated_at"].is_string());
    assert_eq!(app.get(&format!("/v1/profiles/{}", legacy.body["id"].as_str().unwrap()), &app.admin).await.body["properties"], json!({"age": -3}));

    // Upsert: every failing pointer, and nothing written.
    let refused = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u1"}, "set": {"age": 1.5, "plan": "gold"}}))
        .await;
    assert_problem(&refused, 422);
    assert_eq!(refused.violation_pointers(), ["/properties/email", "/properties/age", "/properties/plan"]);
    assert_problem(&app.get("/v1/profiles/by/user_id/u1", &app.admin).await, 404);
    let ok = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u1"}, "set": {"email": "a@x.io", "age": 30}}))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let id = ok.body["id"].as_str().unwrap().to_owned();

    // Patch and replace.
    let patched = app
        .raw(Method::PATCH, &format!("/v1/profiles/{id}"), &app.admin, "application/merge-patch+json", r#"{"email": null}"#)
        .await;
    assert_problem(&patched, 422);
    assert_eq!(patched.violation_pointers(), ["/properties/email"]);
    let replaced = app
        .call(Method::PUT, &format!("/v1/profiles/{id}/properties"), Some(&app.admin), Some(json!({"age": 2})))
        .await;
    assert_problem(&replaced, 422);
    assert_eq!(app.get(&format!("/v1/profiles/{id}"), &app.admin).await.body["version"], 1);

    // Imports report the line, and go on.
    let ndjson = "{\"identities\": {\"user_id\": \"i1\"}, \"properties\": {\"email\": \"i1@x.io\"}}\n\
                  {\"identities\": {\"user_id\": \"i2\"}, \"properties\": {\"age\": -1}}\n";
    let imported = app
        .raw(Method::POST, "/v1/imports", &app.admin, "application/x-ndjson", ndjson)
        .await;
    assert_eq!(imported.status, 201, "{}", imported.body);
    assert_eq!(imported.body["counts"]["created"], 1);
    assert_eq!(imported.body["counts"]["failed"], 1);
    let reason = imported.body["failures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("/properties/age") && reason.contains("/properties/email"), "{reason}");

    // Merges: a survivor that would take a value breaking the schema is refused.
    let a = app.upsert(&app.admin, json!({"identities": {"user_id": "ma"}, "set": {"email": "ma@x.io"}})).await;
    app.call(Method::DELETE, "/v1/workspace/schema", Some(&app.admin), None).await;
    let b = app.upsert(&app.admin, json!({"identities": {"anonymous_id": "mb"}, "set": {"plan": "gold"}})).await;
    set_schema(&app, schema()).await;
    let merged = app
        .post(&format!("/v1/profiles/{}/merge", a.body["id"].as_str().unwrap()), &app.admin, json!({"profile_ids": [b.body["id"]]}))
        .await;
    assert_problem(&merged, 422);
    assert_eq!(merged.violation_pointers(), ["/properties/plan"]);
    assert_eq!(app.get(&format!("/v1/profiles/{}", b.body["id"].as_str().unwrap()), &app.admin).await.status, 200);

    // The end user's own edits.
    app.call(Method::PUT, "/v1/workspace/end-users", Some(&app.admin), Some(json!({"writable": ["age"]})))
        .await;
    let session = app.post("/v1/sessions", &app.admin, json!({"identity": {"user_id": "u1"}})).await;
    let token = session.body["token"].as_str().unwrap();
    let mine = app.call(Method::PATCH, "/v1/me", Some(token), Some(json!({"set": {"age": -1}}))).await;
    assert_problem(&mine, 422);
    assert_eq!(mine.violation_pointers(), ["/properties/age"]);
    let fine = app.call(Method::PATCH, "/v1/me", Some(token), Some(json!({"set": {"age": 31}}))).await;
    assert_eq!(fine.status, 200, "{}", fine.body);

    // A write that leaves a legacy profile's properties alone is not refused (an event).
    let event = app
        .post("/v1/events", &app.admin, json!({"events": [{"identities": {"user_id": "old"}, "name": "visit"}]}))
        .await;
    assert_eq!(event.status, 200, "{}", event.body);

    // Removed, properties are free again.
    assert_eq!(app.delete("/v1/workspace/schema", &app.admin).await.status, 204);
    assert_problem(&app.delete("/v1/workspace/schema", &app.admin).await, 404);
    let free = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u2"}, "set": {"age": -1}}))
        .await;
    assert_eq!(free.status, 201);
}
}

#[tokio::test]
async fn unusable_schemas_are_refused_and_remote_refs_never_fetched() {
    let app = TestApp::start().await;
    let bad = set_schema(&app, json!({"schema": {"type": "nonsense"}})).await;
    assert_problem(&bad, 422);
    assert_eq!(bad.violation_pointers(), ["/schema"]);
    let remote = set_schema(
        &app,
        json!({"schema": {"$ref": "https://schemas.example.com/profile.json"}}),
    )
    .await;
    assert_problem(&remote, 422);
    let path = set_schema(&app, json!({"required": ["a..b"]})).await;
    assert_problem(&path, 422);
    assert_eq!(path.violation_pointers(), ["/required/0"]);
    let view = app.get("/v1/workspace/schema", &app.admin).await;
    assert_eq!(
        view.body,
        json!({"schema": null, "required": [], "updated_at": null})
    );

    let read = app.key(Scope::Read).await;
    assert_eq!(app.get("/v1/workspace/schema", &read).await.status, 200);
    assert_problem(
        &app.call(
            Method::PUT,
            "/v1/workspace/schema",
            Some(&read),
            Some(json!({"required": ["email"]})),
        )
        .await,
        403,
    );
    assert_problem(
        &app.post("/v1/workspace/schema/check", &read, json!({}))
            .await,
        403,
    );
}
