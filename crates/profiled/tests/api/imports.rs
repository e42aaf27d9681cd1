//! Imports: NDJSON and CSV commands applied line by line, bad lines reported and harmless,
//! re-runs idempotent, bodies of any size streamed.

use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem};

const NDJSON: &str = r#"{"identities": {"user_id": "u1"}, "properties": {"plan": "free", "prefs": {"theme": "dark", "lang": "en"}}}
{"identities": {"user_id": "u2", "email": "u2@x.io"}, "properties": {"plan": "pro"}}
{"identities": {"user_id": "u3"}, "properties": {"plan": "free"}}
this is not json

{"identities": {"user_id": "u1"}, "properties": {"plan": "pro", "prefs": {"lang": null}}}
{"identities": {"email": "not-an-email"}, "properties": {}}
{"identities": {"user_id": "u2"}, "properties": {"seats": 5}, "mode": "replace"}
{"operation": "DELETE", "identities": {"user_id": "u3"}}
{"operation": "DELETE", "identities": {"user_id": "nobody"}}
{"operation": "MERGE", "identities": {"user_id": "u1"}}
"#;

async fn profile(app: &TestApp, user: &str) -> Value {
    app.get(&format!("/v1/profiles/by/user_id/{user}"), &app.admin)
        .await
        .body
}

backend_test! {
#[tokio::test]
async fn an_ndjson_import_applies_good_lines_reports_bad_ones_and_reruns_to_the_same_state() {
    let app = TestApp::start().await;
    let reply = app
        .raw(Method::POST, "/v1/imports", &app.admin, "application/x-ndjson", NDJSON)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let report = &reply.body;
    assert_eq!(report["status"], "completed");
    assert_eq!(
        report["counts"],
        json!({"read": 10, "created": 3, "updated": 2, "unchanged": 0, "deleted": 1, "skipped": 1, "failed": 3})
    );
    let failures = report["failures"].as_array().unwrap();
    let lines: Vec<u64> = failures.iter().map(|f| f["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![4, 7, 11]);
    assert!(failures[1]["reason"].as_str().unwrap().contains("/identities/email"), "{}", report);
    assert!(failures[2]["reason"].as_str().unwrap().contains("UPSERT or DELETE"));
    let location = reply.header("location").unwrap().to_owned();
    assert_eq!(app.get(&location, &app.admin).await.body, *report);

    let u1 = profile(&app, "u1").await;
    assert_eq!(u1["properties"], json!({"plan": "pro", "prefs": {"theme": "dark"}}));
    let u2 = profile(&app, "u2").await;
    assert_eq!(u2["properties"], json!({"seats": 5}));
    assert_eq!(u2["identities"].as_array().unwrap().len(), 2);
    assert_problem(&app.get("/v1/profiles/by/user_id/u3", &app.admin).await, 404);

    // The same file again: nothing changes.
    let again = app
        .raw(Method::POST, "/v1/imports", &app.admin, "application/x-ndjson", NDJSON)
        .await;
    assert_eq!(again.status, 201);
    let counts = &again.body["counts"];
    assert_eq!(counts["created"], 1, "u3 comes back, then goes again: {}", again.body);
    assert_eq!(counts["deleted"], 1);
    assert_eq!(profile(&app, "u1").await["properties"], u1["properties"]);
    assert_eq!(profile(&app, "u2").await["properties"], u2["properties"]);
    // A file that says each thing once changes nothing the second time: not even versions.
    let once = "{\"identities\": {\"user_id\": \"u9\"}, \"properties\": {\"a\": 1}}\n";
    for (created, unchanged) in [(1, 0), (0, 1)] {
        let run = app
            .raw(Method::POST, "/v1/imports", &app.admin, "application/x-ndjson", once)
            .await;
        assert_eq!(run.body["counts"]["created"], created);
        assert_eq!(run.body["counts"]["unchanged"], unchanged);
    }
    assert_eq!(profile(&app, "u9").await["version"], 1);

    let listed = app.get("/v1/imports", &app.admin).await;
    let ids: Vec<&str> = listed.body["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(&ids[2..], [again.body["id"].as_str().unwrap(), report["id"].as_str().unwrap()]);
    assert_problem(&app.get("/v1/imports/nope", &app.admin).await, 404);
}
}

backend_test! {
#[tokio::test]
async fn a_csv_import_reads_identity_and_typed_property_columns() {
    let app = TestApp::start().await;
    let csv = "email,plan,age:number,address.city,zip\n\
               a@x.io,pro,42,\"Oslo, Norway\",01234\n\
               b@x.io,free,forty,Bergen,\n\
               ,free,3,Nowhere,\n\
               c@x.io,free,,,\n";
    let reply = app.raw(Method::POST, "/v1/imports", &app.admin, "text/csv", csv).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["counts"]["created"], 2);
    assert_eq!(reply.body["counts"]["failed"], 2);
    let lines: Vec<u64> = reply.body["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4]);
    let a = app.get("/v1/profiles/by/email/a@x.io", &app.admin).await;
    assert_eq!(
        a.body["properties"],
        json!({"plan": "pro", "age": 42, "address": {"city": "Oslo, Norway"}, "zip": "01234"})
    );
    let c = app.get("/v1/profiles/by/email/c@x.io", &app.admin).await;
    assert_eq!(c.body["properties"], json!({"plan": "free"}));

    assert_problem(
        &app.raw(Method::POST, "/v1/imports", &app.admin, "text/csv", "plan,age\nfree,3\n").await,
        422,
    );
    assert_problem(
        &app.raw(Method::POST, "/v1/imports", &app.admin, "text/plain", "x").await,
        415,
    );
    let reader = app.key(Scope::Read).await;
    assert_problem(
        &app.raw(Method::POST, "/v1/imports", &reader, "text/csv", csv).await,
        403,
    );
}
}

#[tokio::test]
async fn an_import_larger_than_any_request_body_limit_streams_through() {
    let app = TestApp::start().await;
    let padding = "x".repeat(200);
    let mut body = String::new();
    for i in 0..6000 {
        body.push_str(&format!(
            "{{\"identities\": {{\"user_id\": \"big{i}\"}}, \"properties\": {{\"pad\": \"{padding}\"}}}}\n"
        ));
    }
    // One line longer than a line may be: it fails alone.
    body.push_str(&format!(
        "{{\"identities\": {{\"user_id\": \"huge\"}}, \"properties\": {{\"pad\": \"{}\"}}}}\n",
        "y".repeat(1_100_000)
    ));
    body.push_str("{\"identities\": {\"user_id\": \"after\"}}\n");
    assert!(body.len() > 2 * app.service.limits().max_body_bytes);
    let reply = app
        .raw(
            Method::POST,
            "/v1/imports",
            &app.admin,
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["counts"]["created"], 6001);
    assert_eq!(reply.body["counts"]["failed"], 1);
    assert_eq!(reply.body["failures"][0]["line"], 6001);
    assert_problem(
        &app.get("/v1/profiles/by/user_id/huge", &app.admin).await,
        404,
    );
}

backend_test! {
#[tokio::test]
async fn an_import_merges_profiles_its_lines_link_and_refuses_what_upserts_refuse() {
    let app = TestApp::start().await;
    let file = r#"{"identities": {"anonymous_id": "a1"}, "properties": {"seen": 1}}
{"identities": {"email": "m@x.io", "user_id": "m"}, "properties": {"plan": "pro"}}
{"identities": {"anonymous_id": "a1", "email": "m@x.io"}, "properties": {"linked": true}}
{"identities": {"user_id": "other", "email": "m@x.io"}, "properties": {"x": 1}}
{"identities": {"anonymous_id": "a2"}, "properties": {"after": true}}
"#;
    let reply = app
        .raw(Method::POST, "/v1/imports", &app.admin, "application/x-ndjson", file)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["counts"]["created"], 3, "{}", reply.body);
    assert_eq!(reply.body["counts"]["updated"], 1);
    assert_eq!(reply.body["counts"]["failed"], 1);
    assert_eq!(reply.body["failures"][0]["line"], 4);
    let merged = app.get("/v1/profiles/by/anonymous_id/a1", &app.admin).await;
    assert_eq!(
        merged.body["properties"],
        json!({"seen": 1, "plan": "pro", "linked": true})
    );
    assert_eq!(merged.body["identities"].as_array().unwrap().len(), 3);
    let count = app.post("/v1/profiles/count", &app.admin, json!({})).await;
    assert_eq!(count.body["count"], 2);
}
}
