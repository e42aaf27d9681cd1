//! Inkeep's user profile API under `/compat/inkeep`: each status of the reference, bodies
//! validated against Inkeep's own OpenAPI document.

use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

/// A copy of `shared/reference/specs/inkeep-user-profile.openapi.json`.
const SPEC: &str = include_str!("fixtures/inkeep.openapi.json");
const PATH: &str = "/compat/inkeep/manage/api/users";

/// OpenAPI 3.0's `nullable` in JSON Schema terms: a typed schema also allows null; a schema
/// of only `nullable` allows anything.
fn json_schema(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), json_schema(v)))
                .collect();
            if out.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(t)) = out.get("type").cloned()
            {
                out.insert("type".into(), json!([t, "null"]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        other => other.clone(),
    }
}

fn assert_valid(body: &Value, schema: &Value) {
    let validator = jsonschema::validator_for(&json_schema(schema)).unwrap();
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?} in {body}");
}

fn spec() -> Value {
    serde_json::from_str(SPEC).unwrap()
}

fn assert_profile(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let schema =
        spec()["paths"]["/manage/api/users/{userId}/profile"]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"]
            .clone();
    assert_valid(&reply.body, &schema);
}

fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_valid(
        &reply.body,
        &spec()["components"]["schemas"]["ProblemDetails"],
    );
    assert_eq!(reply.body["code"], code);
    assert_eq!(reply.body["error"]["code"], code);
    assert!(
        reply.body["requestId"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_eq!(
        reply.header("x-request-id"),
        reply.body["requestId"].as_str()
    );
}

async fn call(
    app: &TestApp,
    method: Method,
    user: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    app.call(method, &format!("{PATH}/{user}/profile"), key, body)
        .await
}

backend_test! {
#[tokio::test]
async fn a_key_reads_and_upserts_any_users_profile() {
    let app = TestApp::start().await;
    let key = app.key(Scope::ReadWrite).await;
    let missing = call(&app, Method::GET, "user_123", Some(&key), None).await;
    assert_problem(&missing, 404, "not_found");
    assert_eq!(missing.body["detail"], "User profile not found");
    assert_eq!(missing.body["instance"], format!("{PATH}/user_123/profile"));
    // GET never creates one.
    assert_problem(&call(&app, Method::GET, "user_123", Some(&key), None).await, 404, "not_found");

    let put = call(&app, Method::PUT, "user_123", Some(&key), Some(json!({"timezone": "Europe/Berlin", "attributes": {"plan": "pro"}}))).await;
    assert_profile(&put);
    assert_eq!(put.body["userId"], "user_123");
    assert_eq!(put.body["timezone"], "Europe/Berlin");
    assert_eq!(put.body["attributes"], json!({"plan": "pro"}));

    // PATCH without timezone keeps it; attributes are replaced whole, {} when omitted.
    let patched = call(&app, Method::PATCH, "user_123", Some(&key), Some(json!({"attributes": ["a", 1]}))).await;
    assert_profile(&patched);
    assert_eq!(patched.body["timezone"], "Europe/Berlin");
    assert_eq!(patched.body["attributes"], json!(["a", 1]));
    let emptied = call(&app, Method::PATCH, "user_123", Some(&key), Some(json!({"timezone": "Etc/GMT+5"}))).await;
    assert_eq!(emptied.body["attributes"], json!({}));
    assert_eq!(emptied.body["timezone"], "Etc/GMT+5");
    let utc = call(&app, Method::PUT, "user_123", Some(&key), Some(json!({"timezone": "UTC"}))).await;
    assert_eq!(utc.body["timezone"], "UTC");
    let cleared = call(&app, Method::PUT, "user_123", Some(&key), Some(json!({"timezone": null}))).await;
    assert_profile(&cleared);
    assert_eq!(cleared.body["timezone"], json!(null));

    // Native API users see the same data.
    let native = app.get("/v1/profiles/by/user_id/user_123", &app.admin).await;
    assert_eq!(native.body["properties"], json!({"attributes": {}}));
    assert_eq!(native.body["id"], cleared.body["id"]);
    let got = call(&app, Method::GET, "user_123", Some(&key), None).await;
    assert_profile(&got);
    assert_eq!(got.body, cleared.body);
}
}

#[tokio::test]
async fn sessions_reach_only_their_own_user_and_bad_requests_get_inkeeps_errors() {
    let app = TestApp::start().await;
    app.call(
        Method::PUT,
        "/v1/workspace/end-users",
        Some(&app.admin),
        Some(json!({"writable": ["attributes", "timezone"]})),
    )
    .await;
    let key = app.key(Scope::ReadWrite).await;
    call(
        &app,
        Method::PUT,
        "other",
        Some(&key),
        Some(json!({"attributes": {"x": 1}})),
    )
    .await;
    let session = app
        .post(
            "/v1/sessions",
            &app.admin,
            json!({"identity": {"user_id": "me"}}),
        )
        .await;
    let token = session.body["token"].as_str().unwrap().to_owned();

    // As a bearer token and as better-auth's cookie.
    let mine = call(
        &app,
        Method::PUT,
        "me",
        Some(&token),
        Some(json!({"timezone": "Asia/Kolkata", "attributes": {"lang": "en"}})),
    )
    .await;
    assert_profile(&mine);
    let by_cookie = app
        .client
        .get(format!("{}{PATH}/me/profile", app.base))
        .header("cookie", format!("better-auth.session_token={token}"))
        .send()
        .await
        .unwrap();
    let by_cookie = TestApp::read(by_cookie).await;
    assert_profile(&by_cookie);
    assert_eq!(by_cookie.body["attributes"], json!({"lang": "en"}));

    let theirs = call(&app, Method::GET, "other", Some(&token), None).await;
    assert_problem(&theirs, 403, "forbidden");
    assert_eq!(
        theirs.body["detail"],
        "Cannot access another user's profile"
    );
    let update = call(
        &app,
        Method::PATCH,
        "other",
        Some(&token),
        Some(json!({"attributes": {}})),
    )
    .await;
    assert_problem(&update, 403, "forbidden");
    assert_eq!(
        update.body["detail"],
        "Cannot update another user's profile"
    );

    assert_problem(
        &call(&app, Method::GET, "me", None, None).await,
        401,
        "unauthorized",
    );
    assert_problem(
        &call(&app, Method::GET, "me", Some("prf_nope"), None).await,
        401,
        "unauthorized",
    );
    let write_only = app.key(Scope::Write).await;
    assert_problem(
        &call(&app, Method::GET, "me", Some(&write_only), None).await,
        403,
        "forbidden",
    );
    assert_problem(
        &call(
            &app,
            Method::PUT,
            "me",
            Some(&key),
            Some(json!({"timezone": "Mars/Olympus"})),
        )
        .await,
        400,
        "bad_request",
    );
    assert_problem(
        &call(
            &app,
            Method::PUT,
            "me",
            Some(&key),
            Some(json!({"timezone": 5})),
        )
        .await,
        400,
        "bad_request",
    );
    assert_problem(
        &call(
            &app,
            Method::PUT,
            "me",
            Some(&key),
            Some(json!({"nickname": "x"})),
        )
        .await,
        400,
        "bad_request",
    );
    let broken = app
        .raw(
            Method::PUT,
            &format!("{PATH}/me/profile"),
            &key,
            "application/json",
            "{",
        )
        .await;
    assert_problem(&broken, 400, "bad_request");
    assert_problem(
        &call(&app, Method::DELETE, "me", Some(&key), None).await,
        405,
        "bad_request",
    );
    // Nothing a refused request sent was kept.
    let me = call(&app, Method::GET, "me", Some(&key), None).await;
    assert_eq!(me.body["timezone"], "Asia/Kolkata");
}

#[tokio::test]
async fn attributes_and_timezone_can_live_in_other_properties() {
    let app = TestApp::start().await;
    let mapping = json!({"attributes": "inkeep", "timezone": "tz"});
    let set = app
        .call(
            Method::PUT,
            "/v1/workspace/compat/inkeep",
            Some(&app.admin),
            Some(mapping.clone()),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(
        app.get("/v1/workspace/compat/inkeep", &app.admin)
            .await
            .body,
        mapping
    );
    let reply = call(
        &app,
        Method::PUT,
        "u1",
        Some(&app.admin),
        Some(json!({"timezone": "Europe/Paris", "attributes": {"a": 1}})),
    )
    .await;
    assert_profile(&reply);
    let native = app.get("/v1/profiles/by/user_id/u1", &app.admin).await;
    assert_eq!(
        native.body["properties"],
        json!({"inkeep": {"a": 1}, "tz": "Europe/Paris"})
    );
    let same = app
        .call(
            Method::PUT,
            "/v1/workspace/compat/inkeep",
            Some(&app.admin),
            Some(json!({"attributes": "x", "timezone": "x"})),
        )
        .await;
    assert_eq!(same.status, 422);
}

#[tokio::test]
async fn a_write_the_workspace_schema_refuses_is_unprocessable() {
    let app = TestApp::start().await;
    let schema = json!({"schema": {"properties": {"attributes": {"type": "object"}}}});
    assert_eq!(
        app.call(
            Method::PUT,
            "/v1/workspace/schema",
            Some(&app.admin),
            Some(schema)
        )
        .await
        .status,
        200
    );
    let reply = call(
        &app,
        Method::PUT,
        "u1",
        Some(&app.admin),
        Some(json!({"attributes": "a string"})),
    )
    .await;
    assert_problem(&reply, 422, "unprocessable_entity");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("/properties/attributes"),
        "{}",
        reply.body
    );
    assert_problem(
        &call(&app, Method::GET, "u1", Some(&app.admin), None).await,
        404,
        "not_found",
    );
}
