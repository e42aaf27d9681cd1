//! Exports stream every match, across pages, as NDJSON or CSV.

use profiled_core::Scope;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::{TestApp, assert_problem};

/// The raw text of a GET.
async fn text(app: &TestApp, path: &str, key: &str) -> (u16, String, Option<String>) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.text().await.unwrap(), content_type)
}

backend_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stream_every_matching_profile_across_pages() {
    let app = TestApp::start().await;
    // More than one page of 1,000.
    let mut writes = JoinSet::new();
    for i in 0..1234 {
        let request = app
            .client
            .post(format!("{}/v1/profiles", app.base))
            .bearer_auth(&app.admin)
            .json(&json!({
                "identities": {"user_id": format!("u{i:04}")},
                "set": {"plan": if i % 4 == 0 { "pro" } else { "free" }, "n": i, "city": "Oslo, Norway"}
            }));
        writes.spawn(async move { request.send().await.unwrap().status().as_u16() });
        if writes.len() >= 16 {
            assert!(matches!(writes.join_next().await.unwrap().unwrap(), 201));
        }
    }
    while let Some(status) = writes.join_next().await {
        assert_eq!(status.unwrap(), 201);
    }

    let reader = app.key(Scope::Read).await;
    let (status, body, content_type) = text(&app, "/v1/exports", &reader).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("application/x-ndjson"));
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1234);
    let ids: Vec<&str> = lines.iter().map(|p| p["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "in id order, each once");
    assert!(lines.iter().all(|p| p["properties"]["city"] == "Oslo, Norway"));

    let filter = "/v1/exports?format=csv&columns=identities.user_id,properties.plan,properties.n,properties.city&filter=properties.plan%20%3D%20%22pro%22";
    let (status, body, content_type) = text(&app, filter, &reader).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type.as_deref(), Some("text/csv; charset=utf-8"));
    let mut rows = body.lines();
    assert_eq!(rows.next(), Some("identities.user_id,properties.plan,properties.n,properties.city"));
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 309);
    assert!(rows.contains(&"u0004,pro,4,\"Oslo, Norway\""), "{:?}", &rows[..3]);

    assert_problem(&app.get("/v1/exports?format=xml", &reader).await, 422);
    assert_problem(&app.get("/v1/exports?format=csv&columns=id,nope", &reader).await, 422);
    assert_problem(&app.get("/v1/exports?filter=properties.plan%20%3D", &reader).await, 400);
    let writer = app.key(Scope::Write).await;
    assert_problem(&app.get("/v1/exports", &writer).await, 403);
}
}
