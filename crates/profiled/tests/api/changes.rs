//! The change log: profile history and the workspace's change feed.

use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem};

fn operations(page: &Value) -> Vec<String> {
    page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["operation"].as_str().unwrap().to_owned())
        .collect()
}

backend_test! {
#[tokio::test]
async fn every_mutation_logs_what_it_touched_with_actor_and_origin() {
    let app = TestApp::start().await;
    let created = app
        .client
        .post(format!("{}/v1/profiles", app.base))
        .bearer_auth(&app.admin)
        .header("Profiled-Origin", "crm-sync")
        .json(&json!({"identities": {"user_id": "h"}, "set": {"plan": "free", "tags": []}}))
        .send()
        .await
        .unwrap();
    let created = TestApp::read(created).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/profiles/{id}");
    app.upsert(
        &app.admin,
        json!({"identities": {"user_id": "h"}, "set": {"plan": "pro"}}),
    )
    .await;
    app.upsert(
        &app.admin,
        json!({"identities": {"user_id": "h"}, "set": {"plan": "pro"}}),
    )
    .await; // no change
    app.upsert(
        &app.admin,
        json!({"identities": {"user_id": "h"}, "increment": {"plan": 1}}),
    )
    .await; // refused
    app.raw(
        Method::PATCH,
        &path,
        &app.admin,
        "application/merge-patch+json",
        r#"{"tags": null}"#,
    )
    .await;
    app.post(
        &format!("{path}/identities"),
        &app.admin,
        json!({"identities": {"email": "h@example.com"}}),
    )
    .await;
    app.delete(
        &format!("{path}/identities/email/h@example.com"),
        &app.admin,
    )
    .await;

    let history = app.get(&format!("{path}/history"), &app.admin).await;
    assert_eq!(history.status, 200, "{}", history.body);
    assert_eq!(
        operations(&history.body),
        [
            "remove_identity",
            "add_identities",
            "update",
            "update",
            "create"
        ]
    );
    let entries = history.body["changes"].as_array().unwrap();
    let key_id = app.admin.split('_').nth(1).unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e["actor"] == format!("key:{key_id}") && e["profile_id"] == id.as_str())
    );
    assert_eq!(entries[4]["origin"], "crm-sync");
    assert!(entries[3].get("origin").is_none());
    assert_eq!(
        entries[3]["changes"],
        json!([{"key": "properties.plan", "before": "free", "after": "pro"}])
    );
    assert_eq!(
        entries[2]["changes"],
        json!([{"key": "properties.tags", "before": []}])
    );
    assert_eq!(
        entries[1]["changes"],
        json!([{"key": "identities.email", "after": "h@example.com"}])
    );
    assert_eq!(
        entries[0]["changes"],
        json!([{"key": "identities.email", "before": "h@example.com"}])
    );
    let created_keys: Vec<&str> = entries[4]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert!(
        created_keys.contains(&"properties.plan")
            && created_keys.contains(&"identities.user_id")
            && created_keys.contains(&"computed.percent")
    );
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "history is newest first: {seqs:?}"
    );

    let page = app
        .get(&format!("{path}/history?limit=2"), &app.admin)
        .await;
    assert_eq!(
        operations(&page.body),
        ["remove_identity", "add_identities"]
    );
    let before = page.body["next_before"].as_i64().unwrap();
    let older = app
        .get(
            &format!("{path}/history?limit=2&before={before}"),
            &app.admin,
        )
        .await;
    assert_eq!(operations(&older.body), ["update", "update"]);
}
}

backend_test! {
#[tokio::test]
async fn a_deleted_profile_leaves_only_a_bare_delete_entry() {
    let app = TestApp::start().await;
    let created = app
        .upsert(
            &app.admin,
            json!({"identities": {"email": "secret@example.com"}, "set": {"name": "Secret Name"}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete(&format!("/v1/profiles/{id}"), &app.admin)
            .await
            .status,
        200
    );
    assert_problem(
        &app.get(&format!("/v1/profiles/{id}/history"), &app.admin)
            .await,
        404,
    );
    let feed = app.get("/v1/changes", &app.admin).await;
    assert_eq!(operations(&feed.body), ["delete"]);
    assert_eq!(feed.body["changes"][0]["changes"], json!([]));
    let text = feed.body.to_string();
    assert!(
        !text.contains("secret@example.com") && !text.contains("Secret Name"),
        "{text}"
    );
}
}

backend_test! {
#[tokio::test]
async fn a_feed_consumer_resumes_across_a_restart_and_sees_each_change_once_in_order() {
    let app = TestApp::start().await;
    for i in 0..7 {
        app.upsert(
            &app.admin,
            json!({"identities": {"user_id": format!("f{}", i % 3)}, "set": {"i": i}}),
        )
        .await;
    }
    let mut seen: Vec<i64> = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get(&format!("/v1/changes?after={after}&limit=2"), &app.admin)
            .await;
        let changes = page.body["changes"].as_array().unwrap().clone();
        if changes.is_empty() {
            assert_eq!(page.body["next_after"], after);
            break;
        }
        seen.extend(changes.iter().map(|c| c["seq"].as_i64().unwrap()));
        after = page.body["next_after"].as_i64().unwrap();
    }
    assert_eq!(seen.len(), 7);

    let app = app.restart().await;
    for i in 7..10 {
        app.upsert(
            &app.admin,
            json!({"identities": {"user_id": format!("f{i}")}, "set": {"i": i}}),
        )
        .await;
    }
    let page = app
        .get(&format!("/v1/changes?after={after}"), &app.admin)
        .await;
    seen.extend(
        page.body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["seq"].as_i64().unwrap()),
    );
    assert_eq!(seen.len(), 10, "every change exactly once: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "in commit order: {seen:?}"
    );
    let values: Vec<i64> = page.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["changes"][0]["after"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(values, [7, 8, 9]);
}
}

backend_test! {
#[tokio::test]
async fn a_long_poll_returns_with_the_next_change() {
    let app = TestApp::start().await;
    let empty = app.get("/v1/changes?wait=200ms", &app.admin).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body["changes"], json!([]));
    assert_eq!(empty.body["next_after"], 0);

    let poll = app
        .client
        .get(format!("{}/v1/changes?wait=30s", app.base))
        .bearer_auth(&app.admin)
        .send();
    let write = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.upsert(
            &app.admin,
            json!({"identities": {"user_id": "late"}, "set": {"x": 1}}),
        )
        .await
    };
    let (polled, written) = tokio::join!(poll, write);
    assert_eq!(written.status, 201);
    let polled = TestApp::read(polled.unwrap()).await;
    assert_eq!(operations(&polled.body), ["create"]);
    assert_eq!(polled.body["changes"][0]["profile_id"], written.body["id"]);
    assert_problem(&app.get("/v1/changes?wait=2h", &app.admin).await, 422);
}
}

backend_test! {
#[tokio::test]
async fn the_change_log_needs_a_read_scope_and_stays_in_its_workspace() {
    let app = TestApp::start().await;
    let created = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "iso"}, "set": {"a": 1}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap();
    let write = app.key(Scope::Write).await;
    assert_problem(&app.get("/v1/changes", &write).await, 403);
    assert_problem(
        &app.get(&format!("/v1/profiles/{id}/history"), &write).await,
        403,
    );
    let other = app
        .post("/v1/workspaces", &app.admin, json!({"name": "other"}))
        .await;
    let other_key = other.body["admin_key"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get("/v1/changes", &other_key).await.body["changes"],
        json!([])
    );
    assert_problem(
        &app.get(&format!("/v1/profiles/{id}/history"), &other_key)
            .await,
        404,
    );
    let bad_origin = app
        .client
        .post(format!("{}/v1/profiles", app.base))
        .bearer_auth(&app.admin)
        .header("Profiled-Origin", "x".repeat(300))
        .json(&json!({"identities": {"user_id": "iso"}, "set": {"a": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_origin.status(), 422);
}
}

backend_test! {
#[tokio::test]
async fn as_of_rebuilds_the_profile_as_it_was_after_each_write() {
    let app = TestApp::start().await;
    let mut states = vec![
        app.upsert(
            &app.admin,
            json!({"identities": {"user_id": "t"}, "set": {"plan": "free", "prefs": {"a": 1}}}),
        )
        .await
        .body,
    ];
    let id = states[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/profiles/{id}");
    states.push(app.upsert(&app.admin, json!({"identities": {"user_id": "t", "email": "t@example.com"}, "set": {"plan": "pro"}})).await.body);
    states.push(
        app.raw(
            Method::PATCH,
            &path,
            &app.admin,
            "application/merge-patch+json",
            r#"{"prefs": {"b": 2}, "plan": null}"#,
        )
        .await
        .body,
    );
    states.push(
        app.delete(&format!("{path}/identities/user_id/t"), &app.admin)
            .await
            .body,
    );
    states.push(
        app.call(
            Method::PUT,
            &format!("{path}/properties"),
            Some(&app.admin),
            Some(json!({"fresh": true})),
        )
        .await
        .body,
    );

    for (i, state) in states.iter().enumerate() {
        let at = state["updated_at"].as_str().unwrap();
        let rebuilt = app.get(&format!("{path}?as_of={at}"), &app.admin).await;
        assert_eq!(rebuilt.status, 200, "{}", rebuilt.body);
        assert_eq!(&rebuilt.body, state, "state after write {i}");
    }
    let created = states[0]["created_at"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    let before_creation = created
        .checked_sub(jiff::SignedDuration::from_secs(1))
        .unwrap();
    assert_problem(
        &app.get(&format!("{path}?as_of={before_creation}"), &app.admin)
            .await,
        404,
    );
    assert_problem(
        &app.get(&format!("{path}?as_of=yesterday"), &app.admin)
            .await,
        422,
    );
}
}

backend_test! {
#[tokio::test]
async fn pruning_keeps_the_feed_cursor_valid_and_bounds_as_of() {
    let app = TestApp::start_with_retention(std::time::Duration::from_millis(1500)).await;
    let old = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "old"}, "set": {"a": 1}}),
        )
        .await;
    let first = app.get("/v1/changes", &app.admin).await;
    let cursor = first.body["next_after"].as_i64().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let fresh = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "fresh"}, "set": {"b": 1}}),
        )
        .await;

    assert_eq!(
        app.service.prune_changes().await.unwrap(),
        1,
        "only the entry past its retention goes"
    );
    let from_start = app.get("/v1/changes", &app.admin).await;
    assert_eq!(operations(&from_start.body), ["create"]);
    assert_eq!(
        from_start.body["changes"][0]["profile_id"],
        fresh.body["id"]
    );
    let resumed = app
        .get(&format!("/v1/changes?after={cursor}"), &app.admin)
        .await;
    assert_eq!(
        resumed.body["changes"], from_start.body["changes"],
        "an old cursor continues at the next entry that remains"
    );

    let old_id = old.body["id"].as_str().unwrap();
    let created = old.body["created_at"].as_str().unwrap();
    assert_problem(
        &app.get(
            &format!("/v1/profiles/{old_id}?as_of={created}"),
            &app.admin,
        )
        .await,
        422,
    );
}
}
