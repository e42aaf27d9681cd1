//! The profile endpoints, each exercised over HTTP.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, assert_problem};

backend_test! {
#[tokio::test]
async fn upsert_creates_then_updates_the_same_profile() {
    let app = TestApp::start().await;
    let created = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u1"}, "set": {"plan": "free"}, "increment": {"logins": 1}}))
        .await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/profiles/{id}").as_str())
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(created.body["version"], 1);

    let updated = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u1", "email": "Ada@Example.com"}, "set": {"plan": "pro"}, "increment": {"logins": 1}}))
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["id"], id.as_str());
    assert_eq!(
        updated.body["properties"],
        json!({"plan": "pro", "logins": 2})
    );
    assert_eq!(updated.body["version"], 2);
    assert_eq!(updated.header("etag"), Some("\"2\""));
    let identities = updated.body["identities"].as_array().unwrap();
    assert!(identities.contains(&json!({"kind": "email", "value": "ada@example.com"})));
    assert!(identities.contains(&json!({"kind": "user_id", "value": "u1"})));
}
}

backend_test! {
#[tokio::test]
async fn a_profile_reads_the_same_by_id_and_by_each_identity() {
    let app = TestApp::start().await;
    let created = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u 1/2", "email": "ada@example.com"}, "set": {"prefs.theme": "dark"}}))
        .await;
    let id = created.body["id"].as_str().unwrap();
    let by_id = app.get(&format!("/v1/profiles/{id}"), &app.admin).await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.body, created.body);
    assert_eq!(by_id.header("etag"), Some("\"1\""));
    for path in [
        "/v1/profiles/by/email/ADA%40example.com",
        "/v1/profiles/by/user_id/u%201%2F2",
    ] {
        let reply = app.get(path, &app.admin).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.body, created.body);
    }
    for field in ["created_at", "updated_at"] {
        let text = by_id.body[field].as_str().unwrap();
        assert!(
            text.ends_with('Z') && text.parse::<jiff::Timestamp>().is_ok(),
            "{field} = {text}"
        );
    }
    let percent = by_id.body["computed"]["percent"].as_f64().unwrap();
    assert!((0.0..100.0).contains(&percent));
}
}

backend_test! {
#[tokio::test]
async fn percent_is_fixed_at_creation() {
    let app = TestApp::start().await;
    let first = app
        .upsert(&app.admin, json!({"identities": {"user_id": "p"}}))
        .await;
    let later = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "p"}, "set": {"a": 1}}),
        )
        .await;
    assert_eq!(
        first.body["computed"]["percent"],
        later.body["computed"]["percent"]
    );
}
}

backend_test! {
#[tokio::test]
async fn unknown_profiles_and_identities_are_404() {
    let app = TestApp::start().await;
    assert_problem(&app.get("/v1/profiles/nope", &app.admin).await, 404);
    assert_problem(
        &app.get("/v1/profiles/by/user_id/nobody", &app.admin).await,
        404,
    );
    assert_problem(&app.delete("/v1/profiles/nope", &app.admin).await, 404);
}
}

backend_test! {
#[tokio::test]
async fn merge_patch_merges_nested_properties_and_removes_nulls() {
    let app = TestApp::start().await;
    let created = app
        .upsert(&app.admin, json!({"identities": {"user_id": "m"}, "set": {"prefs": {"theme": "dark", "lang": "en"}, "old": 1}}))
        .await;
    let id = created.body["id"].as_str().unwrap();
    let patched = app
        .raw(
            Method::PATCH,
            &format!("/v1/profiles/{id}"),
            &app.admin,
            "application/merge-patch+json",
            r#"{"prefs": {"lang": "fr"}, "old": null, "new": true}"#,
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body["properties"],
        json!({"prefs": {"theme": "dark", "lang": "fr"}, "new": true})
    );
    assert_eq!(patched.body["version"], 2);
}
}

backend_test! {
#[tokio::test]
async fn patch_with_json_applies_operations() {
    let app = TestApp::start().await;
    let created = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "o"}, "set": {"tags": ["a"], "n": 1}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap();
    let patched = app
        .call(
            Method::PATCH,
            &format!("/v1/profiles/{id}"),
            Some(&app.admin),
            Some(json!({"append": {"tags": "b"}, "remove": {"tags": "a"}, "increment": {"n": 2}, "set_once": {"n": 100, "first": "x"}, "unset": ["gone"]})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body["properties"],
        json!({"tags": ["b"], "n": 3, "first": "x"})
    );
}
}

backend_test! {
#[tokio::test]
async fn put_properties_replaces_them_all() {
    let app = TestApp::start().await;
    let created = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "r"}, "set": {"a": 1, "b": 2}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap();
    let replaced = app
        .call(
            Method::PUT,
            &format!("/v1/profiles/{id}/properties"),
            Some(&app.admin),
            Some(json!({"c": {"d": 3}})),
        )
        .await;
    assert_eq!(replaced.status, 200);
    assert_eq!(replaced.body["properties"], json!({"c": {"d": 3}}));
    let not_object = app
        .call(
            Method::PUT,
            &format!("/v1/profiles/{id}/properties"),
            Some(&app.admin),
            Some(json!([1])),
        )
        .await;
    assert_problem(&not_object, 422);
}
}

backend_test! {
#[tokio::test]
async fn a_write_that_changes_nothing_keeps_the_version() {
    let app = TestApp::start().await;
    app.upsert(
        &app.admin,
        json!({"identities": {"user_id": "same"}, "set": {"a": 1}}),
    )
    .await;
    let again = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "same"}, "set": {"a": 1}}),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["version"], 1);
}
}

backend_test! {
#[tokio::test]
async fn identities_can_be_attached_and_detached() {
    let app = TestApp::start().await;
    let created = app
        .upsert(&app.admin, json!({"identities": {"user_id": "i1"}}))
        .await;
    let id = created.body["id"].as_str().unwrap();
    let added = app
        .post(
            &format!("/v1/profiles/{id}/identities"),
            &app.admin,
            json!({"identities": {"anonymous_id": "anon-7", "phone": "+1 (555) 010-9999"}}),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["identities"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.get("/v1/profiles/by/phone/+15550109999", &app.admin)
            .await
            .body["id"],
        id
    );

    let removed = app
        .delete(
            &format!("/v1/profiles/{id}/identities/anonymous_id/anon-7"),
            &app.admin,
        )
        .await;
    assert_eq!(removed.status, 200);
    assert_eq!(removed.body["identities"].as_array().unwrap().len(), 2);
    assert_problem(
        &app.get("/v1/profiles/by/anonymous_id/anon-7", &app.admin)
            .await,
        404,
    );
    let again = app
        .delete(
            &format!("/v1/profiles/{id}/identities/anonymous_id/anon-7"),
            &app.admin,
        )
        .await;
    assert_problem(&again, 404);
}
}

backend_test! {
#[tokio::test]
async fn an_identity_of_another_profile_cannot_be_taken() {
    let app = TestApp::start().await;
    app.upsert(&app.admin, json!({"identities": {"user_id": "a"}}))
        .await;
    let b = app
        .upsert(&app.admin, json!({"identities": {"user_id": "b"}}))
        .await;
    let id = b.body["id"].as_str().unwrap();
    let taken = app
        .post(
            &format!("/v1/profiles/{id}/identities"),
            &app.admin,
            json!({"identities": {"user_id": "a"}}),
        )
        .await;
    assert_problem(&taken, 409);
    let both = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "a", "anonymous_id": "x"}, "set": {"z": 1}}),
        )
        .await;
    assert_eq!(both.status, 200);
    let split = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "b", "anonymous_id": "x"}, "set": {"z": 2}}),
        )
        .await;
    assert_problem(&split, 409);
    assert!(
        app.get(&format!("/v1/profiles/{id}"), &app.admin)
            .await
            .body["properties"]
            .get("z")
            .is_none()
    );
}
}

backend_test! {
#[tokio::test]
async fn delete_leaves_nothing_behind_and_frees_the_identities() {
    let app = TestApp::start().await;
    let created = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "d", "email": "d@example.com"}, "set": {"x": 1}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap();
    let deleted = app.delete(&format!("/v1/profiles/{id}"), &app.admin).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body["profile_id"], id);
    assert_problem(
        &app.get(&format!("/v1/profiles/{id}"), &app.admin).await,
        404,
    );
    assert_problem(
        &app.get("/v1/profiles/by/email/d@example.com", &app.admin)
            .await,
        404,
    );
    let fresh = app
        .upsert(
            &app.admin,
            json!({"identities": {"email": "d@example.com"}}),
        )
        .await;
    assert_eq!(fresh.status, 201);
    assert_ne!(fresh.body["id"], id);
    assert_eq!(fresh.body["properties"], json!({}));
}
}

backend_test! {
#[tokio::test]
async fn if_match_guards_every_write() {
    let app = TestApp::start().await;
    let created = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "e"}, "set": {"a": 1}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/profiles/{id}");
    let send =
        |method: Method, path: String, etag: &'static str, body: Option<serde_json::Value>| {
            let mut request = app
                .client
                .request(method, format!("{}{path}", app.base))
                .bearer_auth(&app.admin)
                .header("if-match", etag);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move { TestApp::read(request.send().await.unwrap()).await }
        };

    let stale = send(
        Method::PATCH,
        path.clone(),
        "\"7\"",
        Some(json!({"set": {"a": 2}})),
    )
    .await;
    assert_problem(&stale, 412);
    assert_eq!(stale.body["current_version"], 1);
    let fresh = send(
        Method::PATCH,
        path.clone(),
        "\"1\"",
        Some(json!({"set": {"a": 2}})),
    )
    .await;
    assert_eq!(fresh.status, 200);
    assert_problem(
        &send(
            Method::PUT,
            format!("{path}/properties"),
            "\"1\"",
            Some(json!({})),
        )
        .await,
        412,
    );
    assert_problem(
        &send(
            Method::POST,
            format!("{path}/identities"),
            "W/\"1\"",
            Some(json!({"identities": {"uid": "1"}})),
        )
        .await,
        412,
    );
    assert_problem(
        &send(
            Method::DELETE,
            format!("{path}/identities/user_id/e"),
            "\"junk\"",
            None,
        )
        .await,
        412,
    );
    assert_problem(
        &send(Method::DELETE, path.clone(), "\"1\"", None).await,
        412,
    );
    assert_eq!(
        app.get(&path, &app.admin).await.body["properties"],
        json!({"a": 2})
    );
    assert_eq!(
        send(Method::DELETE, path.clone(), "*", None).await.status,
        200
    );
}
}

backend_test! {
#[tokio::test]
async fn clearing_resets_the_profile_but_keeps_it_and_its_identities() {
    let app = TestApp::start().await;
    let created = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "c1", "email": "c1@x.io"}, "set": {"plan": "pro", "prefs": {"theme": "dark"}}, "set_once": {"first": 1}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let before = created.body["computed"]["percent"].clone();

    let cleared = app
        .post(&format!("/v1/profiles/{id}/clear"), &app.admin, json!(null))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["id"], id.as_str());
    assert_eq!(cleared.body["properties"], json!({}));
    assert_eq!(cleared.body["identities"], created.body["identities"]);
    assert_eq!(cleared.body["version"], 2);
    let computed = cleared.body["computed"].as_object().unwrap();
    assert_eq!(computed.len(), 2, "{}", cleared.body);
    assert!(computed["percent"].as_f64().is_some_and(|p| (0.0..100.0).contains(&p)));
    assert_ne!(computed["percent"], before, "a new percent is drawn");
    assert!(computed["cleared_at"].as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()));

    // set_once starts over: the key can be set once again.
    let again = app
        .upsert(&app.admin, json!({"identities": {"user_id": "c1"}, "set_once": {"first": 2}}))
        .await;
    assert_eq!(again.body["properties"], json!({"first": 2}));

    let history = app.get(&format!("/v1/profiles/{id}/history"), &app.admin).await;
    assert_eq!(history.body["changes"][1]["operation"], "clear");
    assert_problem(
        &app.post("/v1/profiles/nope/clear", &app.admin, json!(null)).await,
        404,
    );
    let reader = app.key(profiled_core::Scope::Read).await;
    assert_problem(
        &app.post(&format!("/v1/profiles/{id}/clear"), &reader, json!(null)).await,
        403,
    );
}
}
