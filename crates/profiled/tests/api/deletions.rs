//! Forgetting people: everything of a profile goes, a receipt proves it, and on SQLite the
//! personal data is not left in the database file or its WAL either.

use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, assert_problem, backend};

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether any file of the data directory holds `needle`.
fn on_disk(dir: &std::path::Path, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).ok()?;
            bytes
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
                .then(|| path.display().to_string())
        })
        .collect()
}

backend_test! {
#[tokio::test]
async fn forgetting_erases_every_trace_and_the_receipt_proves_it() {
    let app = TestApp::start().await;
    let secret = format!("ada-{}", uuid::Uuid::new_v4().simple());
    let email = format!("{secret}@example.com");
    let created = app
        .upsert(
            &app.admin,
            json!({"identities": {"email": email}, "set": {"note": format!("call {secret}")}}),
        )
        .await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap().to_owned();
    // History, and a merge whose snapshot holds the profile as it was.
    app.upsert(&app.admin, json!({"identities": {"email": email}, "set": {"plan": "pro"}}))
        .await;
    app.upsert(&app.admin, json!({"identities": {"user_id": "other"}, "set": {"n": 1}}))
        .await;
    let merged = app
        .upsert(&app.admin, json!({"identities": {"email": email, "user_id": "other"}}))
        .await;
    assert_eq!(merged.status, 200, "{}", merged.body);
    let survivor = merged.body["id"].as_str().unwrap().to_owned();

    let receipt = app.delete(&format!("/v1/profiles/{id}"), &app.admin).await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    assert_eq!(receipt.body["profile_id"], survivor.as_str());
    assert!(receipt.body["requested_by"].as_str().unwrap().starts_with("key:"));
    let identifiers = receipt.body["identifiers"].as_array().unwrap();
    assert!(identifiers.contains(&json!(sha256_hex(&email))), "{}", receipt.body);
    assert!(identifiers.contains(&json!(sha256_hex("other"))));
    assert!(receipt.body["completed_at"].as_str() >= receipt.body["requested_at"].as_str());
    assert!(!receipt.body.to_string().contains(&secret));

    let receipt_id = receipt.body["id"].as_str().unwrap();
    let kept = app.get(&format!("/v1/deletions/{receipt_id}"), &app.admin).await;
    assert_eq!(kept.body, receipt.body);
    let listed = app.get("/v1/deletions", &app.admin).await;
    assert_eq!(listed.body["deletions"][0], receipt.body);

    for path in [
        format!("/v1/profiles/{id}"),
        format!("/v1/profiles/{survivor}"),
        format!("/v1/profiles/{survivor}/history"),
        format!("/v1/profiles/by/email/{email}"),
        "/v1/profiles/by/user_id/other".to_owned(),
    ] {
        assert_problem(&app.get(&path, &app.admin).await, 404);
    }
    // The feed keeps only the fact: a delete without values.
    let feed = app.get("/v1/changes?limit=1000", &app.admin).await;
    let entries = feed.body["changes"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", feed.body);
    assert_eq!(entries[0]["operation"], "delete");
    assert!(!feed.body.to_string().contains(&secret));
    let search = app
        .post("/v1/profiles/search", &app.admin, json!({"filter": "properties.plan exists"}))
        .await;
    assert_eq!(search.body["profiles"], json!([]));

    if matches!(backend(), Backend::Sqlite) {
        let found = on_disk(app.dir.path(), &secret);
        assert!(found.is_empty(), "the forgotten value is still in {found:?}");
    }

    // The identities are free again.
    let again = app.upsert(&app.admin, json!({"identities": {"email": email}})).await;
    assert_eq!(again.status, 201);
    assert_ne!(again.body["id"], survivor.as_str());
}
}

backend_test! {
#[tokio::test]
async fn profiles_are_forgotten_by_identity_and_in_bulk_by_list_or_filter() {
    let app = TestApp::start().await;
    for (user, plan) in [("a", "keep"), ("b", "keep"), ("c", "keep"), ("d", "keep"), ("e", "gone"), ("f", "gone")] {
        let reply = app
            .upsert(
                &app.admin,
                json!({"identities": {"email": format!("{user}@x.io")}, "set": {"plan": plan}}),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    let writer = app.key(Scope::Write).await;
    let by_identity = app.delete("/v1/profiles/by/email/A@X.io", &writer).await;
    assert_eq!(by_identity.status, 200, "{}", by_identity.body);
    assert_eq!(by_identity.body["identifiers"], json!([sha256_hex("a@x.io")]));

    // Bulk erasure is for admin keys.
    let ndjson = "{\"email\": \"b@x.io\"}\n\n{\"email\": \"nobody@x.io\"}\n";
    assert_problem(
        &app.raw(Method::POST, "/v1/deletions", &writer, "application/x-ndjson", ndjson).await,
        403,
    );
    let bulk = app.raw(Method::POST, "/v1/deletions", &app.admin, "application/x-ndjson", ndjson).await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    assert_eq!(bulk.body["deletions"].as_array().unwrap().len(), 1);
    assert_eq!(bulk.body["not_found"], 1);

    let csv = app.raw(Method::POST, "/v1/deletions", &app.admin, "text/csv", "email,user_id\nc@x.io,\n").await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(csv.body["deletions"].as_array().unwrap().len(), 1);

    let by_filter = app
        .post("/v1/deletions", &app.admin, json!({"filter": "properties.plan = \"gone\""}))
        .await;
    assert_eq!(by_filter.status, 200, "{}", by_filter.body);
    assert_eq!(by_filter.body["deletions"].as_array().unwrap().len(), 2);

    assert_problem(&app.post("/v1/deletions", &app.admin, json!({})).await, 422);
    assert_problem(
        &app.raw(Method::POST, "/v1/deletions", &app.admin, "text/csv", "email\nnot-an-email\n").await,
        422,
    );
    assert_problem(
        &app.raw(Method::POST, "/v1/deletions", &app.admin, "text/plain", "b@x.io").await,
        415,
    );

    let left = app.post("/v1/profiles/search", &app.admin, json!({})).await;
    let emails: Vec<Value> = left.body["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["identities"][0]["value"].clone())
        .collect();
    assert_eq!(emails, vec![json!("d@x.io")], "{}", left.body);
    let receipts = app.get("/v1/deletions?limit=2", &app.admin).await;
    assert_eq!(receipts.body["deletions"].as_array().unwrap().len(), 2);
    let older = app
        .get(
            &format!("/v1/deletions?limit=10&before={}", receipts.body["next_before"].as_str().unwrap()),
            &app.admin,
        )
        .await;
    assert_eq!(older.body["deletions"].as_array().unwrap().len(), 3);
}
}
