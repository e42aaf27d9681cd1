//! Bad input gets a clear 4xx problem and changes nothing.

use profiled_core::Limits;
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, assert_problem};

backend_test! {
#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = TestApp::start().await;
    assert_problem(&app.get("/v2/anything", &app.admin).await, 404);
    let wrong = app
        .call(Method::PUT, "/v1/profiles", Some(&app.admin), None)
        .await;
    assert_problem(&wrong, 405);
    let allow = wrong.header("allow").unwrap_or_default();
    assert!(
        allow.contains("POST") && allow.contains("GET") && !allow.contains("PUT"),
        "Allow: {allow}"
    );
}
}

backend_test! {
#[tokio::test]
async fn a_path_that_is_not_utf8_is_a_400_problem() {
    let app = TestApp::start().await;
    assert_problem(&app.get("/v1/profiles/%FF%FE", &app.admin).await, 400);
    assert_problem(
        &app.get("/v1/profiles/by/email/%C3%28", &app.admin).await,
        400,
    );
}
}

backend_test! {
#[tokio::test]
async fn hostile_paths_and_nesting_get_a_4xx_not_a_crash() {
    let app = TestApp::start().await;
    let long_path = vec!["a"; 200_000].join(".");
    let reply = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "h"}, "set": {long_path: 1}}),
        )
        .await;
    assert_problem(&reply, 422);
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let body = format!(r#"{{"identities": {{"user_id": "h"}}, "set": {{"a": {deep}}}}}"#);
    assert_problem(
        &app.raw(
            Method::POST,
            "/v1/profiles",
            &app.admin,
            "application/json",
            body,
        )
        .await,
        400,
    );
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await.status,
        200
    );
}
}

backend_test! {
#[tokio::test]
async fn malformed_json_is_400_and_the_wrong_content_type_415() {
    let app = TestApp::start().await;
    let broken = app
        .raw(
            Method::POST,
            "/v1/profiles",
            &app.admin,
            "application/json",
            "{\"identities\": ",
        )
        .await;
    assert_problem(&broken, 400);
    let text = app
        .raw(Method::POST, "/v1/profiles", &app.admin, "text/plain", "{}")
        .await;
    assert_problem(&text, 415);
    let created = app
        .upsert(&app.admin, json!({"identities": {"user_id": "c"}}))
        .await;
    let id = created.body["id"].as_str().unwrap();
    let patch = app
        .raw(
            Method::PATCH,
            &format!("/v1/profiles/{id}"),
            &app.admin,
            "application/xml",
            "<a/>",
        )
        .await;
    assert_problem(&patch, 415);
}
}

backend_test! {
#[tokio::test]
async fn invalid_bodies_name_each_offending_pointer() {
    let app = TestApp::start().await;
    let typo = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "v"}, "sett": {"a": 1}}),
        )
        .await;
    assert_problem(&typo, 422);
    assert_eq!(typo.violation_pointers(), ["/sett"]);

    let no_identity = app
        .upsert(&app.admin, json!({"identities": {}, "set": {"a": 1}}))
        .await;
    assert_problem(&no_identity, 422);
    assert_eq!(no_identity.violation_pointers(), ["/identities"]);

    let bad_identities = app
        .upsert(
            &app.admin,
            json!({"identities": {"email": "not-an-email", "user_id": 7, "Bad Kind": "x"}}),
        )
        .await;
    assert_problem(&bad_identities, 422);
    let mut pointers = bad_identities.violation_pointers();
    pointers.sort();
    assert_eq!(
        pointers,
        [
            "/identities/Bad Kind",
            "/identities/email",
            "/identities/user_id"
        ]
    );

    let wrong_type = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "v"}, "unset": "a"}),
        )
        .await;
    assert_problem(&wrong_type, 422);
    assert_eq!(wrong_type.violation_pointers(), ["/unset"]);
}
}

backend_test! {
#[tokio::test]
async fn increment_on_a_string_is_refused_and_changes_nothing() {
    let app = TestApp::start().await;
    let created = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "n"}, "set": {"count": "5", "other": 1}}),
        )
        .await;
    let refused = app
        .upsert(&app.admin, json!({"identities": {"user_id": "n", "email": "n@example.com"}, "set": {"other": 2}, "increment": {"count": 1}}))
        .await;
    assert_problem(&refused, 422);
    assert_eq!(refused.violation_pointers(), ["/increment/count"]);
    let id = created.body["id"].as_str().unwrap();
    let after = app.get(&format!("/v1/profiles/{id}"), &app.admin).await;
    assert_eq!(
        after.body, created.body,
        "a refused write changed the profile"
    );
    assert_problem(
        &app.get("/v1/profiles/by/email/n@example.com", &app.admin)
            .await,
        404,
    );
}
}

backend_test! {
#[tokio::test]
async fn junk_identifiers_are_refused_and_change_nothing() {
    let app = TestApp::start().await;
    for junk in ["undefined", "null", "0", "[object Object]", "Guest"] {
        let reply = app
            .upsert(
                &app.admin,
                json!({"identities": {"anonymous_id": junk}, "set": {"a": 1}}),
            )
            .await;
        assert_problem(&reply, 422);
        assert_eq!(
            reply.violation_pointers(),
            ["/identities/anonymous_id"],
            "{junk}"
        );
    }
    assert_eq!(
        app.post("/v1/profiles/count", &app.admin, json!({}))
            .await
            .body["count"],
        0
    );
    assert_problem(
        &app.get("/v1/profiles/by/anonymous_id/undefined", &app.admin)
            .await,
        422,
    );
}
}

backend_test! {
#[tokio::test]
async fn every_limit_is_enforced_with_a_4xx() {
    let limits = Limits {
        max_body_bytes: 4096,
        max_depth: 3,
        max_properties: 5,
        max_key_length: 10,
        max_string_length: 20,
        max_identities: 2,
        max_identity_length: 30,
        blocked_identity_values: vec!["nobody".into()],
    };
    let app = TestApp::start_with(limits).await;
    let id_of = |body: &serde_json::Value| body["id"].as_str().unwrap().to_owned();
    let ok = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "l"}, "set": {"a": {"b": 1}}}),
        )
        .await;
    assert_eq!(ok.status, 201);
    let id = id_of(&ok.body);

    let big = app
        .raw(
            Method::POST,
            "/v1/profiles",
            &app.admin,
            "application/json",
            vec![b' '; 5000],
        )
        .await;
    assert_problem(&big, 413);
    for (body, pointer) in [
        (
            json!({"identities": {"user_id": "l"}, "set": {"a": {"b": {"c": {"d": 1}}}}}),
            "/properties/a/b/c",
        ),
        (
            json!({"identities": {"user_id": "l"}, "set": {"k1": 1, "k2": 2, "k3": 3, "k4": 4}}),
            "/properties",
        ),
        (
            json!({"identities": {"user_id": "l"}, "set": {"much_too_long_key": 1}}),
            "/properties/much_too_long_key",
        ),
        (
            json!({"identities": {"user_id": "l"}, "set": {"s": "x".repeat(21)}}),
            "/properties/s",
        ),
        (
            json!({"identities": {"user_id": "l", "email": "a@b.c", "uid": "3"}}),
            "/identities",
        ),
        (
            json!({"identities": {"user_id": "x".repeat(31)}}),
            "/identities/user_id",
        ),
        (
            json!({"identities": {"user_id": "NoBody"}}),
            "/identities/user_id",
        ),
    ] {
        let reply = app.upsert(&app.admin, body.clone()).await;
        assert_problem(&reply, 422);
        assert!(
            reply.violation_pointers().contains(&pointer.to_owned()),
            "{body}: {}",
            reply.body
        );
    }
    let more = app
        .post(
            &format!("/v1/profiles/{id}/identities"),
            &app.admin,
            json!({"identities": {"email": "a@b.c", "uid": "3"}}),
        )
        .await;
    assert_problem(&more, 422);
    let after = app.get(&format!("/v1/profiles/{id}"), &app.admin).await;
    assert_eq!(after.body, ok.body, "a refused write changed the profile");
}
}
