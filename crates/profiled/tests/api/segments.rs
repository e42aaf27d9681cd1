//! Segments: defined by a filter, backfilled in the background, kept current by every write,
//! listed on profiles and paged as members, with entries and exits in the change log.

use std::time::Duration;

use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Setup, TestApp, assert_problem};

async fn define(app: &TestApp, key: &str, filter: Value) -> Value {
    let reply = app
        .call(
            Method::PUT,
            &format!("/v1/segments/{key}"),
            Some(&app.admin),
            Some(json!({"name": format!("The {key} segment"), "filter": filter})),
        )
        .await;
    assert!(reply.status == 201 || reply.status == 200, "{}", reply.body);
    reply.body
}

/// Waits until the background worker has brought the segment's members up to its filter.
async fn ready(app: &TestApp, key: &str) -> Value {
    for _ in 0..500 {
        let reply = app.get(&format!("/v1/segments/{key}"), &app.admin).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        if reply.body["status"] == "ready" {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("segment {key} never became ready");
}

async fn upsert(app: &TestApp, user: &str, set: Value) -> Value {
    let reply = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": user}, "set": set}),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    reply.body
}

async fn members(app: &TestApp, key: &str) -> Vec<String> {
    let reply = app
        .get(&format!("/v1/segments/{key}/members"), &app.admin)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["profile_id"].as_str().unwrap().to_owned())
        .collect()
}

fn sorted(mut ids: Vec<&Value>) -> Vec<String> {
    ids.sort_by_key(|v| v.as_str().unwrap().to_owned());
    ids.into_iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

async fn segments_of(app: &TestApp, id: &Value) -> Value {
    let reply = app
        .get(
            &format!("/v1/profiles/{}", id.as_str().unwrap()),
            &app.admin,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["segments"].clone()
}

backend_test! {
#[tokio::test]
async fn a_new_segment_is_backfilled_and_every_write_keeps_it_current() {
    let app = TestApp::start().await;
    let u1 = upsert(&app, "u1", json!({"plan": "pro"})).await;
    upsert(&app, "u2", json!({"plan": "free"})).await;
    let u3 = upsert(&app, "u3", json!({"plan": "pro"})).await;
    assert_eq!(u1["segments"], json!([]));

    let created = define(&app, "paying", json!(r#"properties.plan = "pro""#)).await;
    assert_eq!(created["key"], "paying");
    assert_eq!(created["version"], 1);
    let segment = ready(&app, "paying").await;
    assert_eq!(segment["members"], 2);
    assert!(segment["reconciled_at"].is_string());
    assert_eq!(members(&app, "paying").await, sorted(vec![&u1["id"], &u3["id"]]));
    assert_eq!(segments_of(&app, &u1["id"]).await, json!(["paying"]));

    // Writes place the profile at once: the response already says so.
    let u2 = upsert(&app, "u2", json!({"plan": "pro"})).await;
    assert_eq!(u2["segments"], json!(["paying"]));
    let patched = app
        .raw(
            Method::PATCH,
            &format!("/v1/profiles/{}", u1["id"].as_str().unwrap()),
            &app.admin,
            "application/merge-patch+json",
            r#"{"plan": "free"}"#,
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["segments"], json!([]));
    let cleared = app
        .post(&format!("/v1/profiles/{}/clear", u3["id"].as_str().unwrap()), &app.admin, json!({}))
        .await;
    assert_eq!(cleared.body["segments"], json!([]));
    assert_eq!(members(&app, "paying").await, vec![u2["id"].as_str().unwrap().to_owned()]);

    // Entering and leaving are in the change log: one entry per write that moved the profile.
    let history = app
        .get(&format!("/v1/profiles/{}/history", u1["id"].as_str().unwrap()), &app.admin)
        .await;
    let moves: Vec<Value> = history.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["operation"] == "segments")
        .map(|c| c["changes"].clone())
        .collect();
    assert_eq!(
        moves,
        vec![
            json!([{"key": "segments.paying", "before": true}]),
            json!([{"key": "segments.paying", "after": true}]),
        ],
        "{}",
        history.body
    );
    let actors: Vec<&Value> = history.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["operation"] == "segments")
        .map(|c| &c["actor"])
        .collect();
    assert_eq!(actors[1], "system:segments", "the backfill entered it");
    assert!(actors[0].as_str().unwrap().starts_with("key:"), "the patch moved it out");

    // Events move profiles too.
    define(&app, "buyers", json!("computed.event_counts.purchase >= 1")).await;
    ready(&app, "buyers").await;
    let sent = app
        .post("/v1/events", &app.admin, json!({"events": [{"identities": {"user_id": "u1"}, "name": "purchase"}]}))
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(segments_of(&app, &u1["id"]).await, json!(["buyers"]));

    // Search speaks segments.
    let found = app
        .post("/v1/profiles/search", &app.admin, json!({"filter": r#"segments contains "buyers" or segments = "paying""#}))
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let ids: Vec<&Value> = found.body["profiles"].as_array().unwrap().iter().map(|p| &p["id"]).collect();
    assert_eq!(sorted(ids), sorted(vec![&u1["id"], &u2["id"]]));

    // Deleted, the segment is gone from its profiles.
    assert_eq!(app.delete("/v1/segments/paying", &app.admin).await.status, 204);
    assert_eq!(segments_of(&app, &u2["id"]).await, json!([]));
    assert_problem(&app.get("/v1/segments/paying", &app.admin).await, 404);
    assert_problem(&app.get("/v1/segments/paying/members", &app.admin).await, 404);
}
}

backend_test! {
#[tokio::test]
async fn a_changed_filter_is_backfilled_again_and_a_new_name_is_not() {
    let app = TestApp::start().await;
    let small = upsert(&app, "small", json!({"seats": 2})).await;
    let big = upsert(&app, "big", json!({"seats": 50})).await;
    define(&app, "teams", json!({"field": "properties.seats", "op": ">=", "value": 10})).await;
    ready(&app, "teams").await;
    assert_eq!(members(&app, "teams").await, sorted(vec![&big["id"]]));

    let renamed = app
        .call(Method::PUT, "/v1/segments/teams", Some(&app.admin),
            Some(json!({"name": "Teams", "filter": {"field": "properties.seats", "op": ">=", "value": 10}})))
        .await;
    assert_eq!(renamed.status, 200);
    assert_eq!(renamed.body["version"], 1);
    assert_eq!(renamed.body["status"], "ready");

    let changed = define(&app, "teams", json!("properties.seats >= 1 and properties.seats < 10")).await;
    assert_eq!(changed["version"], 2);
    let segment = ready(&app, "teams").await;
    assert_eq!(segment["members"], 1);
    assert_eq!(members(&app, "teams").await, sorted(vec![&small["id"]]));
    assert_eq!(segments_of(&app, &big["id"]).await, json!([]));

    let listed = app.get("/v1/segments", &app.admin).await;
    assert_eq!(listed.body["segments"][0]["key"], "teams");
    assert_eq!(listed.body["segments"][0]["name"], "The teams segment");
}
}

backend_test! {
#[tokio::test]
async fn merges_imports_and_unmerges_keep_memberships_right() {
    let app = TestApp::start().await;
    define(&app, "vip", json!(r#"properties.tier = "gold""#)).await;
    ready(&app, "vip").await;
    let a = upsert(&app, "ua", json!({"tier": "gold"})).await;
    let b = app
        .upsert(&app.admin, json!({"identities": {"anonymous_id": "anon-b"}, "set": {"tier": "gold"}}))
        .await
        .body;
    assert_eq!(members(&app, "vip").await, sorted(vec![&a["id"], &b["id"]]));
    let merged = app
        .post(&format!("/v1/profiles/{}/merge", a["id"].as_str().unwrap()), &app.admin, json!({"profile_ids": [b["id"]]}))
        .await;
    assert_eq!(merged.status, 200, "{}", merged.body);
    assert_eq!(merged.body["survivor"]["segments"], json!(["vip"]));
    let survivor = &merged.body["survivor"]["id"];
    assert_eq!(members(&app, "vip").await, vec![survivor.as_str().unwrap().to_owned()]);

    let undone = app
        .post(&format!("/v1/merges/{}/undo", merged.body["id"].as_str().unwrap()), &app.admin, json!({}))
        .await;
    assert_eq!(undone.status, 200, "{}", undone.body);
    assert_eq!(members(&app, "vip").await, sorted(vec![&a["id"], &b["id"]]));

    let ndjson = "{\"identities\": {\"user_id\": \"ua\"}, \"properties\": {\"tier\": \"silver\"}}\n\
                  {\"identities\": {\"user_id\": \"uc\"}, \"properties\": {\"tier\": \"gold\"}}\n";
    let imported = app
        .raw(Method::POST, "/v1/imports", &app.admin, "application/x-ndjson", ndjson)
        .await;
    assert_eq!(imported.status, 201, "{}", imported.body);
    let c = app.get("/v1/profiles/by/user_id/uc", &app.admin).await.body;
    assert_eq!(c["segments"], json!(["vip"]));
    assert_eq!(members(&app, "vip").await, sorted(vec![&b["id"], &c["id"]]));
}
}

backend_test! {
#[tokio::test]
async fn a_segment_on_time_is_rechecked_as_time_passes() {
    let app = TestApp::start_setup(Setup {
        segment_refresh: Some(Duration::from_millis(100)),
        ..Setup::default()
    })
    .await;
    // Three digits of milliseconds, as JavaScript writes timestamps.
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(700);
    let soon = format!(
        "{}.{:03}Z",
        jiff::Timestamp::from_second(soon.as_second())
            .unwrap()
            .to_string()
            .trim_end_matches('Z'),
        soon.subsec_millisecond()
    );
    let p = upsert(&app, "trial", json!({"trial_ends": soon})).await;
    define(&app, "expired", json!("properties.trial_ends < now")).await;
    ready(&app, "expired").await;
    assert_eq!(segments_of(&app, &p["id"]).await, json!([]));
    // Nothing writes the profile; the clock alone moves it in.
    for _ in 0..200 {
        if segments_of(&app, &p["id"]).await == json!(["expired"]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the profile never entered the segment");
}
}

#[tokio::test]
async fn bad_segments_are_refused_and_keys_are_scoped() {
    let app = TestApp::start().await;
    let put = |key: &'static str, body: Value| {
        let app = &app;
        async move {
            app.call(
                Method::PUT,
                &format!("/v1/segments/{key}"),
                Some(&app.admin),
                Some(body),
            )
            .await
        }
    };
    let reply = put(
        "Bad Key",
        json!({"name": "x", "filter": "properties.a = 1"}),
    )
    .await;
    assert_problem(&reply, 422);
    assert_eq!(reply.violation_pointers(), vec!["/key"]);
    let reply = put(
        "loop",
        json!({"name": "x", "filter": r#"segments = "other""#}),
    )
    .await;
    assert_problem(&reply, 422);
    assert_eq!(reply.violation_pointers(), vec!["/filter"]);
    let reply = put("broken", json!({"name": "x", "filter": "properties.a = "})).await;
    assert!(reply.status == 400 || reply.status == 422, "{}", reply.body);
    let reply = put(
        "nameless",
        json!({"name": " ", "filter": "properties.a = 1"}),
    )
    .await;
    assert_problem(&reply, 422);
    assert_problem(
        &put(
            "extra",
            json!({"name": "x", "filter": "properties.a = 1", "owner": 1}),
        )
        .await,
        422,
    );
    assert_eq!(
        app.get("/v1/segments", &app.admin).await.body["segments"],
        json!([])
    );

    let read = app.key(Scope::Read).await;
    let write = app.key(Scope::Write).await;
    let reply = app
        .call(
            Method::PUT,
            "/v1/segments/ok",
            Some(&read),
            Some(json!({"name": "x", "filter": "properties.a = 1"})),
        )
        .await;
    assert_problem(&reply, 403);
    assert_problem(&app.get("/v1/segments", &write).await, 403);
    assert_eq!(app.get("/v1/segments", &read).await.status, 200);
    assert_problem(&app.delete("/v1/segments/none", &app.admin).await, 404);
}
