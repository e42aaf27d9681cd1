//! Companies: upserted by uid, joined by profiles in their upsert, embedded with
//! `?expand=company`, and let go of when deleted.

use profiled_core::Scope;
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, assert_problem};

backend_test! {
#[tokio::test]
async fn a_profile_joins_a_company_by_uid_and_embeds_it_on_request() {
    let app = TestApp::start().await;
    let created = app
        .post("/v1/companies", &app.admin, json!({"uid": "acme", "properties": {"name": "Acme", "seats": 10}}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let acme_id = created.body["id"].as_str().unwrap().to_owned();
    let merged = app
        .post("/v1/companies", &app.admin, json!({"uid": "acme", "properties": {"seats": 12, "name": null}}))
        .await;
    assert_eq!(merged.status, 200);
    assert_eq!(merged.body["id"], acme_id.as_str());
    assert_eq!(merged.body["properties"], json!({"seats": 12}));
    assert_eq!(merged.body["version"], 2);

    // A profile joins by uid; a new uid creates the company.
    let p = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u1"}, "set": {"plan": "pro"}, "company": {"uid": "acme"}}))
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    assert_eq!(p.body["company_id"], acme_id.as_str());
    assert!(p.body.get("company").is_none());
    let id = p.body["id"].as_str().unwrap().to_owned();
    let expanded = app
        .get(&format!("/v1/profiles/{id}?expand=company"), &app.admin)
        .await;
    assert_eq!(expanded.status, 200, "{}", expanded.body);
    assert_eq!(expanded.body["company"]["uid"], "acme");
    assert_eq!(expanded.body["company"]["properties"], json!({"seats": 12}));
    let by_identity = app
        .get("/v1/profiles/by/user_id/u1?expand=company", &app.admin)
        .await;
    assert_eq!(by_identity.body["company"]["id"], acme_id.as_str());
    assert_problem(&app.get(&format!("/v1/profiles/{id}?expand=friends"), &app.admin).await, 422);

    let moved = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u1"}, "company": {"uid": "globex", "properties": {"name": "Globex"}}}))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let globex = app.get("/v1/companies/by/uid/globex", &app.admin).await;
    assert_eq!(globex.status, 200);
    assert_eq!(moved.body["company_id"], globex.body["id"]);
    assert_eq!(moved.body["version"], 2);

    // Joining is in the change log; an upsert without `company` leaves it alone.
    let history = app.get(&format!("/v1/profiles/{id}/history"), &app.admin).await;
    let latest = &history.body["changes"][0]["changes"];
    assert_eq!(latest, &json!([{"key": "company_id", "before": acme_id, "after": globex.body["id"]}]));
    let same = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u1"}, "set": {"plan": "pro"}}))
        .await;
    assert_eq!(same.body["company_id"], globex.body["id"]);
    assert_eq!(same.body["version"], 2);

    let listed = app.get("/v1/companies?limit=1", &app.admin).await;
    assert_eq!(listed.body["companies"].as_array().unwrap().len(), 1);
    let next = listed.body["next_after"].as_str().unwrap().to_owned();
    let rest = app.get(&format!("/v1/companies?after={next}"), &app.admin).await;
    assert_eq!(rest.body["companies"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["next_after"], json!(null));

    // Deleted, the company lets go of its profiles; `company: null` leaves one.
    let globex_id = globex.body["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/v1/companies/{globex_id}"), &app.admin).await.status, 204);
    assert_eq!(app.get(&format!("/v1/profiles/{id}"), &app.admin).await.body["company_id"], json!(null));
    assert_problem(&app.get(&format!("/v1/companies/{globex_id}"), &app.admin).await, 404);
    app.upsert(&app.admin, json!({"identities": {"user_id": "u1"}, "company": {"uid": "acme"}})).await;
    let left = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u1"}, "company": null}))
        .await;
    assert_eq!(left.body["company_id"], json!(null));
}
}

#[tokio::test]
async fn bad_companies_are_refused_and_scopes_hold() {
    let app = TestApp::start().await;
    let reply = app
        .post("/v1/companies", &app.admin, json!({"uid": " "}))
        .await;
    assert_problem(&reply, 422);
    assert_eq!(reply.violation_pointers(), vec!["/uid"]);
    assert_problem(
        &app.post("/v1/companies", &app.admin, json!({"uid": "a", "size": 1}))
            .await,
        422,
    );
    let reply = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "u1"}, "company": {"uid": ""}}),
        )
        .await;
    assert_problem(&reply, 422);
    assert_eq!(reply.violation_pointers(), vec!["/company/uid"]);
    assert_problem(
        &app.get("/v1/profiles/by/user_id/u1", &app.admin).await,
        404,
    );

    let write = app.key(Scope::Write).await;
    let read = app.key(Scope::Read).await;
    let written = app
        .post(
            "/v1/companies",
            &write,
            json!({"uid": "acme", "properties": {"secret": 1}}),
        )
        .await;
    assert_eq!(written.status, 201);
    assert!(written.body.get("properties").is_none(), "{}", written.body);
    assert_problem(&app.get("/v1/companies", &write).await, 403);
    assert_problem(
        &app.post("/v1/companies", &read, json!({"uid": "b"})).await,
        403,
    );
    assert_eq!(
        app.get("/v1/companies/by/uid/acme", &read).await.status,
        200
    );
    assert_problem(
        &app.call(Method::DELETE, "/v1/companies/nope", Some(&app.admin), None)
            .await,
        404,
    );
}
