//! Concurrent writers: exactly one profile per new identity, and no lost update.

use serde_json::json;
use tokio::task::JoinSet;

use crate::support::TestApp;

backend_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_parallel_increments_on_a_new_identity_create_one_profile_counting_forty() {
    let app = TestApp::start().await;
    let mut tasks = JoinSet::new();
    for _ in 0..40 {
        let request = app
            .client
            .post(format!("{}/v1/profiles", app.base))
            .bearer_auth(&app.admin)
            .json(&json!({"identities": {"user_id": "racer"}, "increment": {"n": 1}}));
        tasks.spawn(async move { TestApp::read(request.send().await.unwrap()).await });
    }
    let replies = tasks.join_all().await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let updated = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        (created, updated),
        (1, 39),
        "statuses: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let ids: std::collections::HashSet<_> = replies
        .iter()
        .map(|r| r.body["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "more than one profile was created");
    let profile = app.get("/v1/profiles/by/user_id/racer", &app.admin).await;
    assert_eq!(profile.body["properties"]["n"], 40);
    assert_eq!(profile.body["version"], 40);
}
}

backend_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_patches_to_one_profile_lose_nothing() {
    let app = TestApp::start().await;
    let created = app
        .upsert(&app.admin, json!({"identities": {"user_id": "p"}}))
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let mut tasks = JoinSet::new();
    for i in 0..30 {
        let request = app
            .client
            .patch(format!("{}/v1/profiles/{id}", app.base))
            .bearer_auth(&app.admin)
            .json(&json!({"append": {"seen": i}, "set": {format!("k{i}"): i}}));
        tasks.spawn(async move { request.send().await.unwrap().status() });
    }
    assert!(tasks.join_all().await.iter().all(|s| *s == 200));
    let profile = app.get(&format!("/v1/profiles/{id}"), &app.admin).await;
    let mut seen: Vec<i64> = profile.body["properties"]["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..30).collect::<Vec<_>>());
    assert_eq!(profile.body["properties"].as_object().unwrap().len(), 31);
}
}

backend_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_in_a_commit_group_rolls_back_alone() {
    let app = TestApp::start().await;
    app.upsert(
        &app.admin,
        json!({"identities": {"user_id": "g"}, "set": {"n": 0, "s": "text"}}),
    )
    .await;
    let mut tasks = JoinSet::new();
    for i in 0..40 {
        // Even tasks add 1 to `n`; odd ones try to increment the string `s` (refused) and
        // would also have set `poisoned` had they succeeded.
        let body = if i % 2 == 0 {
            json!({"identities": {"user_id": "g"}, "increment": {"n": 1}})
        } else {
            json!({"identities": {"user_id": "g", "anonymous_id": format!("a{i}")}, "set": {"poisoned": true}, "increment": {"s": 1}})
        };
        let request = app
            .client
            .post(format!("{}/v1/profiles", app.base))
            .bearer_auth(&app.admin)
            .json(&body);
        tasks.spawn(async move { (i, request.send().await.unwrap().status().as_u16()) });
    }
    for (i, status) in tasks.join_all().await {
        assert_eq!(status, if i % 2 == 0 { 200 } else { 422 }, "task {i}");
    }
    let profile = app.get("/v1/profiles/by/user_id/g", &app.admin).await;
    assert_eq!(profile.body["properties"], json!({"n": 20, "s": "text"}));
    assert_eq!(
        profile.body["identities"].as_array().unwrap().len(),
        1,
        "a refused write attached an identity"
    );
    assert_eq!(profile.body["version"], 21);
}
}
