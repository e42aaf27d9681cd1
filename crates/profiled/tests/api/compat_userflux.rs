//! The UserFlux Integration API under `/compat/userflux`, driven as UserFlux's backend SDK
//! drives it (the query flag always present, `deviceData: null`, undefined keys omitted), with
//! responses checked against the reference OpenAPI document.

use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

/// A copy of `shared/reference/specs/userflux.local.openapi.json`.
const SPEC: &str = include_str!("fixtures/userflux.openapi.json");

/// The reference document's schema of a profile.
fn profile_schema() -> Value {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    spec["components"]["responses"]["getProfile200"]["content"]["application/json"]["schema"]
        .clone()
}

fn assert_profile_shape(body: &Value) {
    let validator = jsonschema::validator_for(&profile_schema()).unwrap();
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?} in {body}");
    for key in [
        "id",
        "anonymousIds",
        "properties",
        "computedProperties",
        "segments",
        "locationData",
        "deviceData",
        "lastUpdatedAt",
        "createdAt",
    ] {
        assert!(body.get(key).is_some(), "{key} missing from {body}");
    }
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    app.call(method, &format!("/compat/userflux{path}"), key, body)
        .await
}

fn assert_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.body["status"], status);
    assert!(
        reply.body["error"].is_string() && reply.body["message"].is_string(),
        "{}",
        reply.body
    );
}

backend_test! {
#[tokio::test]
async fn identify_links_anonymous_users_and_the_profile_reads_back_in_userflux_shape() {
    let app = TestApp::start().await;
    let write = app.key(Scope::Write).await;
    let read_write = app.key(Scope::ReadWrite).await;

    // The browser identifies an anonymous visitor, with device data.
    let anon = call(&app, Method::POST, "/profile?locationEnrichment=false", Some(&write),
        Some(json!({"anonymousId": "anon-1", "properties": {"theme": "dark"}, "deviceData": {"browser": "Chrome", "deviceType": "Desktop"}}))).await;
    assert_eq!(anon.status, 204, "{}", anon.body);
    // The backend SDK identifies the user, linking the anonymous id (deviceData null).
    let known = call(&app, Method::POST, "/profile?locationEnrichment=false", Some(&write),
        Some(json!({"userId": "u1", "anonymousId": "anon-1", "properties": {"email": "ada@example.com", "plan": "pro"}, "deviceData": null}))).await;
    assert_eq!(known.status, 204, "{}", known.body);

    let profile = call(&app, Method::GET, "/profile/u1", Some(&read_write), None).await;
    assert_eq!(profile.status, 200, "{}", profile.body);
    assert_profile_shape(&profile.body);
    assert_eq!(profile.body["id"], "u1");
    assert_eq!(profile.body["anonymousIds"], json!(["anon-1"]));
    assert_eq!(profile.body["properties"], json!({"theme": "dark", "email": "ada@example.com", "plan": "pro"}));
    assert_eq!(profile.body["deviceData"], json!({"browser": "Chrome", "deviceType": "Desktop"}));
    assert!(profile.body["lastUpdatedAt"].as_i64().unwrap() >= profile.body["createdAt"].as_i64().unwrap());
    assert!(profile.body["createdAt"].as_i64().unwrap() > 1_700_000_000_000, "epoch ms");

    // Events feed the same pipeline: computed properties follow.
    let event = call(&app, Method::POST, "/event/ingest?locationEnrichment=false", Some(&write),
        Some(json!({"userId": "u1", "name": "purchase", "timestamp": jiff::Timestamp::now().as_millisecond(), "properties": {"amount": 5}, "deviceData": null}))).await;
    assert_eq!(event.status, 204, "{}", event.body);
    let batch: Vec<Value> = (0..3).map(|i| json!({"anonymousId": "anon-2", "name": "view", "properties": {"i": i}, "sessionId": "s1"})).collect();
    let batch = call(&app, Method::POST, "/event/ingest/batch?locationEnrichment=true", Some(&write), Some(json!({"events": batch}))).await;
    assert_eq!(batch.status, 204, "{}", batch.body);
    let profile = call(&app, Method::GET, "/profile/u1", Some(&read_write), None).await;
    assert_eq!(profile.body["computedProperties"]["event_counts"], json!({"purchase": 1}));
    let native = app.get("/v1/profiles/by/anonymous_id/anon-2", &app.admin).await;
    assert_eq!(native.body["computed"]["event_counts"], json!({"view": 3}));

    // A segment key shows in `segments`.
    app.call(Method::PUT, "/v1/segments/paying", Some(&app.admin), Some(json!({"name": "Paying", "filter": "properties.plan = \"pro\""}))).await;
    call(&app, Method::POST, "/profile?locationEnrichment=false", Some(&write), Some(json!({"userId": "u1", "properties": {"seen": 1}}))).await;
    let profile = call(&app, Method::GET, "/profile/u1", Some(&read_write), None).await;
    assert_eq!(profile.body["segments"], json!(["paying"]));
    assert_profile_shape(&profile.body);
}
}

#[tokio::test]
async fn errors_come_in_one_json_shape_with_the_right_status() {
    let app = TestApp::start().await;
    let write = app.key(Scope::Write).await;
    let read_write = app.key(Scope::ReadWrite).await;
    assert_error(
        &call(&app, Method::GET, "/profile/u1", Some(&write), None).await,
        403,
    );
    assert_error(
        &call(
            &app,
            Method::GET,
            "/profile/nobody",
            Some(&read_write),
            None,
        )
        .await,
        404,
    );
    assert_error(
        &call(&app, Method::GET, "/profile/u1", None, None).await,
        401,
    );
    assert_error(
        &call(&app, Method::GET, "/profile/u1", Some("prf_wrong"), None).await,
        401,
    );
    assert_error(
        &call(
            &app,
            Method::POST,
            "/profile?locationEnrichment=false",
            Some(&write),
            Some(json!({"properties": {}})),
        )
        .await,
        400,
    );
    assert_error(
        &call(
            &app,
            Method::POST,
            "/profile?locationEnrichment=false",
            Some(&write),
            Some(json!({"userId": 5})),
        )
        .await,
        400,
    );
    assert_error(
        &call(
            &app,
            Method::POST,
            "/event/ingest",
            Some(&write),
            Some(json!({"userId": "u1"})),
        )
        .await,
        400,
    );
    let many: Vec<Value> = (0..51)
        .map(|_| json!({"userId": "u1", "name": "x"}))
        .collect();
    assert_error(
        &call(
            &app,
            Method::POST,
            "/event/ingest/batch",
            Some(&write),
            Some(json!({"events": many})),
        )
        .await,
        400,
    );
    let broken = app
        .raw(
            Method::POST,
            "/compat/userflux/profile?locationEnrichment=false",
            &write,
            "application/json",
            "{not json",
        )
        .await;
    assert_error(&broken, 400);
    let big = format!(
        "{{\"userId\": \"u1\", \"properties\": {{\"x\": \"{}\"}}}}",
        "a".repeat(2 * 1024 * 1024)
    );
    assert_error(
        &app.raw(
            Method::POST,
            "/compat/userflux/profile",
            &write,
            "application/json",
            big,
        )
        .await,
        413,
    );
    assert_error(
        &call(&app, Method::DELETE, "/profile/u1", Some(&read_write), None).await,
        405,
    );
    assert_error(
        &call(&app, Method::GET, "/nothing", Some(&read_write), None).await,
        404,
    );
    // Nothing was written by any of them.
    assert_error(
        &call(&app, Method::GET, "/profile/u1", Some(&read_write), None).await,
        404,
    );
}

backend_test! {
#[tokio::test]
async fn location_enrichment_locates_the_caller_only_when_asked() {
    let files = tempfile::tempdir().unwrap();
    let app = TestApp::start_setup(crate::support::Setup {
        geoip: Some(crate::events::geoip_database(files.path())),
        ..Default::default()
    })
    .await;
    let write = app.key(Scope::Write).await;
    let read_write = app.key(Scope::ReadWrite).await;
    call(&app, Method::POST, "/profile?locationEnrichment=false", Some(&write), Some(json!({"userId": "u1", "properties": {}}))).await;
    let profile = call(&app, Method::GET, "/profile/u1", Some(&read_write), None).await;
    assert_eq!(profile.body["locationData"], json!({}));
    let located = call(&app, Method::POST, "/profile?locationEnrichment=true", Some(&write), Some(json!({"userId": "u1", "properties": {}}))).await;
    assert_eq!(located.status, 204, "{}", located.body);
    let profile = call(&app, Method::GET, "/profile/u1", Some(&read_write), None).await;
    assert_eq!(profile.body["locationData"]["country"], "AQ", "{}", profile.body);
    assert_profile_shape(&profile.body);
}
}
