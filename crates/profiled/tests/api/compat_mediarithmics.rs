//! mediarithmics' document imports and user point API under `/compat/mediarithmics`: every
//! import operation and merge option, each selector, and the same data read back through the
//! native API.

use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

/// A call with the token sent bare, as mediarithmics' clients send it.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}/compat/mediarithmics{path}", app.base));
    if let Some(token) = token {
        request = request.header("Authorization", token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    TestApp::read(request.send().await.expect("the server answers")).await
}

async fn ndjson(app: &TestApp, path: &str, token: &str, lines: &[Value]) -> Reply {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    execute(app, path, token, body).await
}

async fn execute(app: &TestApp, path: &str, token: &str, body: String) -> Reply {
    let request = app
        .client
        .post(format!("{}/compat/mediarithmics{path}", app.base))
        .header("Authorization", token)
        .header("content-type", "application/x-ndjson")
        .body(body);
    TestApp::read(request.send().await.unwrap()).await
}

fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.body["status"], "error", "{}", reply.body);
    assert_eq!(reply.body["error_code"], code, "{}", reply.body);
    assert!(reply.body["error"].is_string(), "{}", reply.body);
}

async fn two_compartments(app: &TestApp) {
    let set = app
        .call(
            Method::PUT,
            "/v1/workspace/compat/mediarithmics",
            Some(&app.admin),
            Some(json!({"compartments": [
                {"id": 1, "token": "default", "name": "Default", "default": true},
                {"id": 1606, "token": "crm", "name": "CRM"}
            ]})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
}

async fn new_import(app: &TestApp) -> String {
    let created = call(app, Method::POST, "/v1/datamarts/default/document_imports", Some(&app.admin), Some(json!({
        "document_type": "USER_PROFILE", "mime_type": "APPLICATION_X_NDJSON", "encoding": "utf-8", "name": "CRM sync"
    }))).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["status"], "ok");
    created.body["data"]["id"].as_str().unwrap().to_owned()
}

/// A UserProfile as the user point API lists it, without its times.
fn content(profile: &Value) -> Value {
    let mut p = profile.clone();
    let map = p.as_object_mut().unwrap();
    assert!(map.remove("$creation_ts").unwrap().is_i64(), "{profile}");
    assert!(
        map.remove("$last_modified_ts").unwrap().is_i64(),
        "{profile}"
    );
    p
}

backend_test! {
#[tokio::test]
async fn an_import_applies_every_operation_and_merge_option_and_reports_bad_lines() {
    let app = TestApp::start().await;
    two_compartments(&app).await;
    let listed = call(&app, Method::GET, "/v1/datamarts/default/user_account_compartments", Some(&app.admin), None).await;
    assert_eq!(listed.body["count"], 2, "{}", listed.body);
    assert_eq!(listed.body["data"][0]["default"], true);
    let import = new_import(&app).await;
    let shown = call(&app, Method::GET, &format!("/v1/datamarts/default/document_imports/{import}"), Some(&app.admin), None).await;
    assert_eq!(shown.body["data"]["name"], "CRM sync");

    let account = json!({"$compartment_id": 1606, "$user_account_id": "acc-1"});
    let with = |extra: Value| {
        let mut p = account.clone();
        p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        p
    };
    let lines = vec![
        json!({"operation": "UPSERT", "compartment_id": "1606", "user_account_id": "acc-1", "force_replace": true,
               "user_profile": with(json!({"firstname": "David", "lastname": "Guetta", "gender": 1,
                   "newsletter_options": {"subscribed": true, "preferred_periods": "MONTHLY"}, "address": {"city": "Paris", "zip": "75001"}}))}),
        json!({"operation": "UPSERT", "email_hash": "h-2", "force_replace": false, "user_profile": {"firstname": "Ada"}}),
        json!({"operation": "UPSERT", "email_hash": "h-3", "user_agent_id": "vec:3", "force_replace": true, "user_profile": {"x": 1}}),
        json!({"operation": "UPSERT", "compartment_id": 1606, "user_account_id": "acc-1", "force_replace": false, "merge_objects": true,
               "user_profile": with(json!({"newsletter_options": {"subscribed": false}}))}),
        json!({"operation": "UPSERT", "compartment_id": 1606, "user_account_id": "acc-1", "force_replace": false, "merge_objects": false,
               "user_profile": with(json!({"address": {"city": "Lyon"}}))}),
        json!({"operation": "UPSERT", "compartment_id": 1606, "user_account_id": "acc-1", "update_strategy": "PARTIAL_DELETE",
               "user_profile": with(json!({"lastname": null}))}),
        json!({"operation": "UPSERT", "user_agent_id": "vec:77", "update_strategy": "FORCE_REPLACE", "user_profile": {"score": 3}}),
        json!({"operation": "UPSERT", "email_hash": "h-2", "update_strategy": "PARTIAL_UPDATE", "user_profile": {"lastname": "Lovelace"}}),
        json!({"operation": "DELETE", "user_agent_id": "vec:77"}),
        json!({"operation": "DELETE", "email_hash": "never-seen"}),
    ];
    let path = format!("/v1/datamarts/default/document_imports/{import}/executions");
    let mut body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    body.push_str("{\n");
    let run = execute(&app, &path, &app.admin, body.clone()).await;
    assert_eq!(run.status, 200, "{}", run.body);
    let execution = &run.body["data"];
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    assert_eq!(execution["result"]["total_read"], 11);
    assert_eq!(execution["result"]["total_failure"], 2);
    let failed: Vec<u64> = execution["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(failed, [3, 11]);
    assert!(execution["errors"][0]["message"].as_str().unwrap().contains("exactly one identifier"));
    let again = call(&app, Method::GET, &format!("{path}/{}", execution["id"].as_str().unwrap()), Some(&app.admin), None).await;
    assert_eq!(again.body["data"]["result"], execution["result"]);

    // The native API sees the same person, under its account identity.
    let native = app.get("/v1/profiles/by/account:1606/acc-1", &app.admin).await;
    assert_eq!(native.status, 200, "{}", native.body);
    assert_eq!(native.body["properties"]["user_profiles"]["1606"]["acc-1"], json!({
        "firstname": "David", "gender": 1,
        "newsletter_options": {"subscribed": false, "preferred_periods": "MONTHLY"},
        "address": {"city": "Lyon"}
    }));
    let searched = app.post("/v1/profiles/search", &app.admin,
        json!({"filter": r#"properties.user_profiles."1606"."acc-1".firstname = "David""#})).await;
    assert_eq!(searched.status, 200, "{}", searched.body);
    assert_eq!(searched.body["profiles"][0]["id"], native.body["id"]);
    // ...and so does the user point API.
    let by_account = call(&app, Method::GET, "/v1/datamarts/default/user_points/compartment_id=1606,user_account_id=acc-1/user_profiles", Some(&app.admin), None).await;
    assert_eq!(by_account.body["count"], 1, "{}", by_account.body);
    assert_eq!(by_account.body["data"][0]["$user_account_id"], "acc-1");
    assert_eq!(by_account.body["data"][0]["$compartment_id"], 1606);
    let ada = call(&app, Method::GET, "/v1/datamarts/default/user_points/email_hash=h-2/user_profiles/compartment_id=1", Some(&app.admin), None).await;
    assert_eq!(content(&ada.body["data"]), json!({"$compartment_id": 1, "firstname": "Ada", "lastname": "Lovelace"}));
    let deleted = call(&app, Method::GET, "/v1/datamarts/default/user_points/user_agent_id=vec:77/user_profiles", Some(&app.admin), None).await;
    assert_eq!(deleted.body["count"], 0, "{}", deleted.body);
    // A DELETE never creates a user point.
    assert_eq!(app.get("/v1/profiles/by/email_hash/never-seen", &app.admin).await.status, 404);

    // The same file again leaves the same profiles.
    let before = native.body["properties"]["user_profiles"].clone();
    let rerun = execute(&app, &path, &app.admin, body).await;
    assert_eq!(rerun.body["data"]["result"]["total_failure"], 2);
    let after = app.get("/v1/profiles/by/account:1606/acc-1", &app.admin).await;
    assert_eq!(after.body["properties"]["user_profiles"], before);
}
}

backend_test! {
#[tokio::test]
async fn the_user_point_api_reads_replaces_and_deletes_by_every_selector() {
    let app = TestApp::start().await;
    let base = "/v1/datamarts/default/user_points";
    let put = call(&app, Method::PUT, &format!("{base}/email_hash=e1/user_profiles/compartment_id=1/user_account_id=u1"), Some(&app.admin), Some(json!({"firstname": "A"}))).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["data"]["$user_account_id"], "u1");
    let created_at = put.body["data"]["$creation_ts"].clone();
    let id = app.get("/v1/profiles/by/email_hash/e1", &app.admin).await.body["id"].as_str().unwrap().to_owned();

    for selector in [id.clone(), format!("user_point_id={id}"), "email_hash=e1".to_owned()] {
        let listed = call(&app, Method::GET, &format!("{base}/{selector}/user_profiles"), Some(&app.admin), None).await;
        assert_eq!(listed.body["count"], 1, "{selector}: {}", listed.body);
        assert_eq!(listed.body["data"][0]["firstname"], "A");
    }
    // A PUT without a compartment in the path uses the body's own, or the default.
    let anonymous = call(&app, Method::PUT, &format!("{base}/{id}/user_profiles"), Some(&app.admin), Some(json!({"firstname": "Anon"}))).await;
    assert_eq!(anonymous.body["data"]["$compartment_id"], 1, "{}", anonymous.body);
    assert!(anonymous.body["data"].get("$user_account_id").is_none());
    // PUT replaces the UserProfile and keeps its creation time.
    let replaced = call(&app, Method::PUT, &format!("{base}/{id}/user_profiles/compartment_id=1/user_account_id=u1"), Some(&app.admin), Some(json!({"lastname": "B"}))).await;
    assert!(replaced.body["data"].get("firstname").is_none(), "{}", replaced.body);
    assert_eq!(replaced.body["data"]["$creation_ts"], created_at);
    let one = call(&app, Method::GET, &format!("{base}/{id}/user_profiles/compartment_id=1/user_account_id=u1"), Some(&app.admin), None).await;
    assert_eq!(one.body["data"]["lastname"], "B");

    for selector in ["user_agent_id=vec:1", "compartment_id=1,user_account_id=zz"] {
        let put = call(&app, Method::PUT, &format!("{base}/{selector}/user_profiles"), Some(&app.admin), Some(json!({"x": 1}))).await;
        assert_eq!(put.status, 200, "{selector}: {}", put.body);
        let listed = call(&app, Method::GET, &format!("{base}/{selector}/user_profiles"), Some(&app.admin), None).await;
        assert_eq!(listed.body["data"][0]["x"], 1, "{selector}");
    }
    assert_eq!(app.get("/v1/profiles/by/account:1/zz", &app.admin).await.status, 200);

    let gone = call(&app, Method::DELETE, &format!("{base}/{id}/user_profiles/compartment_id=1/user_account_id=u1"), Some(&app.admin), None).await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_error(&call(&app, Method::GET, &format!("{base}/{id}/user_profiles/compartment_id=1/user_account_id=u1"), Some(&app.admin), None).await, 404, "NOT_FOUND");
    let all = call(&app, Method::DELETE, &format!("{base}/{id}/user_profiles"), Some(&app.admin), None).await;
    assert_eq!(all.status, 200);
    let listed = call(&app, Method::GET, &format!("{base}/{id}/user_profiles"), Some(&app.admin), None).await;
    assert_eq!(listed.body["count"], 0);
    assert_eq!(app.get(&format!("/v1/profiles/{id}"), &app.admin).await.status, 200, "the user point stays");

    assert_error(&call(&app, Method::GET, &format!("{base}/no-such-point/user_profiles"), Some(&app.admin), None).await, 404, "NOT_FOUND");
    assert_error(&call(&app, Method::GET, &format!("{base}/colour=blue/user_profiles"), Some(&app.admin), None).await, 400, "BAD_REQUEST");
    assert_error(&call(&app, Method::GET, &format!("{base}/compartment_id=42,user_account_id=a/user_profiles"), Some(&app.admin), None).await, 404, "NOT_FOUND");
    assert_error(&call(&app, Method::PUT, &format!("{base}/{id}/user_profiles"), Some(&app.admin), Some(json!([1]))).await, 400, "BAD_REQUEST");
}
}

backend_test! {
#[tokio::test]
async fn tokens_datamarts_and_scopes_are_enforced() {
    let app = TestApp::start().await;
    let read = app.key(Scope::Read).await;
    let write = app.key(Scope::Write).await;
    let id = app.get("/v1/workspace", &app.admin).await.body["id"].as_i64().unwrap();
    let path = |dm: &str| format!("/v1/datamarts/{dm}/user_account_compartments");

    assert_error(&call(&app, Method::GET, &path("default"), None, None).await, 401, "UNAUTHORIZED");
    assert_error(&call(&app, Method::GET, &path("default"), Some("prf_nope"), None).await, 401, "UNAUTHORIZED");
    assert_eq!(call(&app, Method::GET, &path(&id.to_string()), Some(&read), None).await.status, 200);
    assert_eq!(call(&app, Method::GET, &path("default"), Some(&format!("Bearer {read}")), None).await.status, 200);
    assert_error(&call(&app, Method::GET, &path(&(id + 1).to_string()), Some(&read), None).await, 403, "FORBIDDEN");
    let acme = app.post("/v1/workspaces", &app.admin, json!({"name": "acme"})).await;
    let acme = acme.body["admin_key"]["secret"].as_str().unwrap().to_owned();
    assert_error(&call(&app, Method::GET, &path("default"), Some(&acme), None).await, 403, "FORBIDDEN");
    assert_eq!(call(&app, Method::GET, &path("acme"), Some(&acme), None).await.status, 200);

    // A write key writes but never reads; a read key reads but never writes.
    let put = call(&app, Method::PUT, "/v1/datamarts/default/user_points/email_hash=w/user_profiles", Some(&write), Some(json!({"a": 1}))).await;
    assert_eq!(put.body, json!({"status": "ok"}));
    assert_error(&call(&app, Method::GET, "/v1/datamarts/default/user_points/email_hash=w/user_profiles", Some(&write), None).await, 403, "FORBIDDEN");
    assert_error(&call(&app, Method::DELETE, "/v1/datamarts/default/user_points/email_hash=w/user_profiles", Some(&read), None).await, 403, "FORBIDDEN");
    // Another workspace's token cannot see the profile through its own datamart either.
    assert_error(&call(&app, Method::GET, "/v1/datamarts/acme/user_points/email_hash=w/user_profiles", Some(&acme), None).await, 404, "NOT_FOUND");

    let bad_type = call(&app, Method::POST, "/v1/datamarts/default/document_imports", Some(&app.admin),
        Some(json!({"document_type": "USER_ACTIVITY", "mime_type": "APPLICATION_X_NDJSON", "name": "x"}))).await;
    assert_error(&bad_type, 400, "BAD_REQUEST");
    let import = new_import(&app).await;
    let plain = app.client.post(format!("{}/compat/mediarithmics/v1/datamarts/default/document_imports/{import}/executions", app.base))
        .header("Authorization", &app.admin).header("content-type", "text/plain").body("{}\n").send().await.unwrap();
    assert_error(&TestApp::read(plain).await, 415, "UNSUPPORTED_MEDIA_TYPE");
    let run = ndjson(&app, &format!("/v1/datamarts/default/document_imports/{import}/executions"), &app.admin,
        &[json!({"operation": "UPSERT", "email_hash": "z", "user_profile": {"k": "v"}})]).await;
    let execution = run.body["data"]["id"].as_str().unwrap();
    let other = new_import(&app).await;
    assert_error(&call(&app, Method::GET, &format!("/v1/datamarts/default/document_imports/{other}/executions/{execution}"), Some(&app.admin), None).await, 404, "NOT_FOUND");
    assert_error(&call(&app, Method::GET, "/v1/datamarts/default/document_imports/nope", Some(&app.admin), None).await, 404, "NOT_FOUND");
    assert_error(&call(&app, Method::POST, &path("default"), Some(&read), None).await, 405, "METHOD_NOT_ALLOWED");
    // The native import list shows the execution as a job.
    let jobs = app.get("/v1/imports", &app.admin).await;
    assert!(jobs.body["imports"].as_array().unwrap().iter().any(|j| j["id"] == execution), "{}", jobs.body);
}
}
