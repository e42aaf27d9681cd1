//! Identity resolution: profiles join when one request proves they are one person.

use serde_json::json;
use tokio::task::JoinSet;

use crate::support::{TestApp, assert_problem};

async fn count(app: &TestApp) -> i64 {
    app.post("/v1/profiles/count", &app.admin, json!({}))
        .await
        .body["count"]
        .as_i64()
        .unwrap()
}

backend_test! {
#[tokio::test]
async fn an_anonymous_visitor_who_signs_in_joins_the_known_user() {
    let app = TestApp::start().await;
    let anon = app
        .upsert(
            &app.admin,
            json!({"identities": {"anonymous_id": "a1"}, "set": {"theme": "dark", "plan": "free"}}),
        )
        .await;
    let known = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "u1"}, "set": {"plan": "pro"}}),
        )
        .await;
    let joined = app
        .upsert(&app.admin, json!({"identities": {"user_id": "u1", "anonymous_id": "a1"}, "set": {"last_login": 1}}))
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    assert_eq!(
        joined.body["id"], known.body["id"],
        "the known user survives"
    );
    assert_eq!(
        joined.body["properties"],
        json!({"plan": "pro", "theme": "dark", "last_login": 1})
    );
    assert_eq!(joined.body["identities"].as_array().unwrap().len(), 2);
    assert_eq!(
        joined.body["created_at"], anon.body["created_at"],
        "the earliest creation time is kept"
    );
    assert_eq!(count(&app).await, 1);

    // The absorbed id is no ghost: it answers with the survivor and says where it lives.
    let anon_id = anon.body["id"].as_str().unwrap();
    let by_old_id = app
        .get(&format!("/v1/profiles/{anon_id}"), &app.admin)
        .await;
    assert_eq!(by_old_id.status, 200);
    assert_eq!(by_old_id.body, joined.body);
    let survivor = known.body["id"].as_str().unwrap();
    assert_eq!(
        by_old_id.header("content-location"),
        Some(format!("/v1/profiles/{survivor}").as_str())
    );
    let patched = app
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/profiles/{anon_id}"),
            Some(&app.admin),
            Some(json!({"set": {"via_old_id": true}})),
        )
        .await;
    assert_eq!(patched.body["id"], survivor);
    assert_eq!(
        app.get("/v1/profiles/by/anonymous_id/a1", &app.admin)
            .await
            .body["properties"]["via_old_id"],
        true
    );

    let history = app
        .get(&format!("/v1/profiles/{survivor}/history"), &app.admin)
        .await;
    let operations: Vec<&str> = history.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["operation"].as_str().unwrap())
        .collect();
    assert!(operations.contains(&"merge"), "{operations:?}");
    let via_old_id = app
        .get(&format!("/v1/profiles/{anon_id}/history"), &app.admin)
        .await;
    assert_eq!(
        via_old_id.body, history.body,
        "an absorbed id leads to its survivor's history"
    );
    let now = jiff::Timestamp::now();
    assert_eq!(
        app.get(&format!("/v1/profiles/{anon_id}?as_of={now}"), &app.admin)
            .await
            .body["id"],
        survivor
    );
}
}

backend_test! {
#[tokio::test]
async fn without_a_user_id_the_oldest_profile_survives() {
    let app = TestApp::start().await;
    let older = app
        .upsert(
            &app.admin,
            json!({"identities": {"anonymous_id": "old"}, "set": {"a": 1}}),
        )
        .await;
    app.upsert(
        &app.admin,
        json!({"identities": {"anonymous_id": "new"}, "set": {"a": 2, "b": 2}}),
    )
    .await;
    let joined = app
        .upsert(
            &app.admin,
            json!({"identities": {"anonymous_id": "new", "email": "x@example.com"}}),
        )
        .await;
    assert_eq!(joined.body["properties"], json!({"a": 2, "b": 2}));
    let merged = app
        .upsert(
            &app.admin,
            json!({"identities": {"anonymous_id": "old", "email": "x@example.com"}}),
        )
        .await;
    assert_eq!(merged.body["id"], older.body["id"]);
    assert_eq!(merged.body["properties"], json!({"a": 1, "b": 2}));
    assert_eq!(count(&app).await, 1);
}
}

backend_test! {
#[tokio::test]
async fn two_known_users_are_never_joined_and_nothing_changes() {
    let app = TestApp::start().await;
    let u1 = app.upsert(&app.admin, json!({"identities": {"user_id": "u1", "anonymous_id": "shared-device"}, "set": {"a": 1}})).await;
    let u2 = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "u2"}, "set": {"b": 2}}),
        )
        .await;
    let refused = app.upsert(&app.admin, json!({"identities": {"user_id": "u2", "anonymous_id": "shared-device"}, "set": {"c": 3}})).await;
    assert_problem(&refused, 409);
    assert!(
        refused.body["detail"].as_str().unwrap().contains("never"),
        "{}",
        refused.body
    );
    let second = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "u3", "anonymous_id": "shared-device"}}),
        )
        .await;
    assert_problem(&second, 409);
    assert_eq!(count(&app).await, 2);
    for before in [&u1, &u2] {
        let id = before.body["id"].as_str().unwrap();
        assert_eq!(
            app.get(&format!("/v1/profiles/{id}"), &app.admin)
                .await
                .body,
            before.body
        );
    }
    assert_problem(
        &app.get("/v1/profiles/by/user_id/u3", &app.admin).await,
        404,
    );
}
}

backend_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_joins_from_every_side_leave_one_profile_and_lose_no_property_write() {
    let app = TestApp::start().await;
    app.upsert(
        &app.admin,
        json!({"identities": {"user_id": "u"}, "set": {"n": 0}}),
    )
    .await;
    for i in 0..10 {
        app.upsert(&app.admin, json!({"identities": {"anonymous_id": format!("a{i}")}, "set": {format!("seen_{i}"): true}})).await;
    }
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        // Each anonymous profile is joined twice: once with the user id, once with its neighbour.
        let identities = if i % 2 == 0 {
            json!({"user_id": "u", "anonymous_id": format!("a{}", i / 2)})
        } else {
            json!({"anonymous_id": format!("a{}", i / 2), "email": "u@example.com"})
        };
        let request = app
            .client
            .post(format!("{}/v1/profiles", app.base))
            .bearer_auth(&app.admin)
            .json(&json!({"identities": identities, "set": {format!("join_{i}"): i}}));
        tasks.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses = tasks.join_all().await;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );
    assert_eq!(count(&app).await, 1, "exactly one profile remains");
    let profile = app.get("/v1/profiles/by/user_id/u", &app.admin).await;
    // Whichever profile a join reached first, its write survives the merges that follow.
    for i in 0..20 {
        assert_eq!(
            profile.body["properties"][format!("join_{i}")],
            i,
            "join {i} was lost: {}",
            profile.body
        );
    }
    for i in 0..10 {
        assert_eq!(profile.body["properties"][format!("seen_{i}")], true);
    }
    assert_eq!(
        profile.body["properties"]["n"], 0,
        "the known user's own value wins"
    );
    assert_eq!(profile.body["identities"].as_array().unwrap().len(), 12);
}
}

backend_test! {
#[tokio::test]
async fn an_explicit_merge_follows_the_rules_and_a_dry_run_writes_nothing() {
    let app = TestApp::start().await;
    let a = app
        .upsert(
            &app.admin,
            json!({"identities": {"anonymous_id": "x"}, "set": {"a": 1, "shared": "anon"}}),
        )
        .await;
    let b = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "known"}, "set": {"shared": "known"}}),
        )
        .await;
    let (a_id, b_id) = (
        a.body["id"].as_str().unwrap().to_owned(),
        b.body["id"].as_str().unwrap().to_owned(),
    );

    let dry = app
        .post(
            &format!("/v1/profiles/{a_id}/merge?dry_run=true"),
            &app.admin,
            json!({"profile_ids": [b_id]}),
        )
        .await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.body["dry_run"], true);
    assert!(dry.body["id"].is_null());
    assert_eq!(
        dry.body["survivor"]["id"],
        b_id.as_str(),
        "the known user survives even when named second"
    );
    assert_eq!(
        dry.body["survivor"]["properties"],
        json!({"a": 1, "shared": "known"})
    );
    assert_eq!(dry.body["absorbed_ids"], json!([a_id]));
    assert_eq!(dry.body["sources"], json!({"properties.a": a_id}));
    assert_eq!(count(&app).await, 2, "a dry run writes nothing");
    assert_eq!(
        app.get(&format!("/v1/profiles/{a_id}"), &app.admin)
            .await
            .body,
        a.body
    );

    let done = app
        .post(
            &format!("/v1/profiles/{a_id}/merge"),
            &app.admin,
            json!({"profile_ids": [b_id]}),
        )
        .await;
    assert_eq!(done.status, 200);
    assert!(done.body["id"].is_string());
    assert_eq!(
        done.body["survivor"]["properties"],
        dry.body["survivor"]["properties"]
    );
    assert_eq!(count(&app).await, 1);
    let again = app
        .post(
            &format!("/v1/profiles/{a_id}/merge"),
            &app.admin,
            json!({"profile_ids": [b_id]}),
        )
        .await;
    assert_problem(&again, 422);

    let c = app
        .upsert(&app.admin, json!({"identities": {"user_id": "other"}}))
        .await;
    let c_id = c.body["id"].as_str().unwrap();
    assert_problem(
        &app.post(
            &format!("/v1/profiles/{b_id}/merge"),
            &app.admin,
            json!({"profile_ids": [c_id]}),
        )
        .await,
        409,
    );
    assert_problem(
        &app.post(
            &format!("/v1/profiles/{b_id}/merge"),
            &app.admin,
            json!({"profile_ids": ["nope"]}),
        )
        .await,
        404,
    );
    assert_problem(
        &app.post(
            &format!("/v1/profiles/{b_id}/merge"),
            &app.admin,
            json!({"profile_ids": []}),
        )
        .await,
        422,
    );
    let write_only = app.key(profiled_core::Scope::Write).await;
    assert_problem(
        &app.post(
            &format!("/v1/profiles/{b_id}/merge"),
            &write_only,
            json!({"profile_ids": [c_id]}),
        )
        .await,
        403,
    );
}
}

backend_test! {
#[tokio::test]
async fn undoing_a_merge_splits_the_profiles_back_and_keeps_later_writes() {
    let app = TestApp::start().await;
    let anon = app
        .upsert(
            &app.admin,
            json!({"identities": {"anonymous_id": "x"}, "set": {"a": 1, "b": 1, "shared": "anon"}}),
        )
        .await;
    let known = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "u"}, "set": {"shared": "known"}}),
        )
        .await;
    let (anon_id, known_id) = (
        anon.body["id"].as_str().unwrap().to_owned(),
        known.body["id"].as_str().unwrap().to_owned(),
    );
    app.upsert(
        &app.admin,
        json!({"identities": {"user_id": "u", "anonymous_id": "x"}}),
    )
    .await;
    // A write after the merge: it changes a value taken from the absorbed profile, and adds one.
    app.upsert(
        &app.admin,
        json!({"identities": {"user_id": "u"}, "set": {"a": 99, "later": true}}),
    )
    .await;

    let merges = app
        .get(&format!("/v1/profiles/{anon_id}/merges"), &app.admin)
        .await;
    assert_eq!(merges.status, 200, "{}", merges.body);
    assert_eq!(merges.body["merges"][0]["absorbed_ids"], json!([anon_id]));
    assert_eq!(
        merges.body["merges"][0]["sources"],
        json!({"properties.a": anon_id, "properties.b": anon_id})
    );
    let merge_id = merges.body["merges"][0]["id"].as_str().unwrap().to_owned();

    let undone = app
        .post(
            &format!("/v1/merges/{merge_id}/undo"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(undone.status, 200, "{}", undone.body);
    assert_eq!(undone.body["survivor"]["id"], known_id.as_str());
    assert_eq!(
        undone.body["survivor"]["properties"],
        json!({"shared": "known", "a": 99, "later": true}),
        "later writes stay; untouched taken values go back"
    );
    assert_eq!(
        undone.body["survivor"]["created_at"],
        known.body["created_at"]
    );
    assert_eq!(undone.body["restored"][0]["id"], anon_id.as_str());
    assert_eq!(
        undone.body["restored"][0]["properties"],
        anon.body["properties"]
    );

    assert_eq!(count(&app).await, 2);
    let back = app
        .get(&format!("/v1/profiles/{anon_id}"), &app.admin)
        .await;
    assert_eq!(back.body["id"], anon_id.as_str());
    assert!(
        back.header("content-location").is_none(),
        "the restored id is itself again"
    );
    assert_eq!(
        back.body["identities"],
        json!([{"kind": "anonymous_id", "value": "x"}])
    );
    assert_eq!(
        app.get("/v1/profiles/by/anonymous_id/x", &app.admin)
            .await
            .body["id"],
        anon_id.as_str()
    );
    assert_eq!(
        app.get("/v1/profiles/by/user_id/u", &app.admin).await.body["identities"],
        json!([{"kind": "user_id", "value": "u"}])
    );

    assert_problem(
        &app.post(
            &format!("/v1/merges/{merge_id}/undo"),
            &app.admin,
            json!({}),
        )
        .await,
        409,
    );
    assert_problem(
        &app.post("/v1/merges/nope/undo", &app.admin, json!({}))
            .await,
        404,
    );
    let listed = app
        .get(&format!("/v1/profiles/{known_id}/merges"), &app.admin)
        .await;
    assert!(listed.body["merges"][0]["undone_at"].is_string());
}
}

backend_test! {
#[tokio::test]
async fn set_once_values_keep_the_oldest_across_a_merge() {
    let app = TestApp::start().await;
    app.upsert(&app.admin, json!({"identities": {"anonymous_id": "v"}, "set_once": {"first_page": "/landing"}, "set": {"plan": "free"}})).await;
    app.upsert(&app.admin, json!({"identities": {"user_id": "w"}, "set_once": {"first_page": "/pricing"}, "set": {"plan": "pro"}})).await;
    let joined = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "w", "anonymous_id": "v"}}),
        )
        .await;
    assert_eq!(
        joined.body["properties"]["first_page"], "/landing",
        "the oldest set_once value wins"
    );
    assert_eq!(
        joined.body["properties"]["plan"], "pro",
        "for other keys the survivor's value wins"
    );
    // Still set-once afterwards.
    let later = app
        .upsert(
            &app.admin,
            json!({"identities": {"user_id": "w"}, "set_once": {"first_page": "/other"}}),
        )
        .await;
    assert_eq!(later.body["properties"]["first_page"], "/landing");

    let survivor = joined.body["id"].as_str().unwrap();
    let merge_id = app
        .get(&format!("/v1/profiles/{survivor}/merges"), &app.admin)
        .await
        .body["merges"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let undone = app
        .post(
            &format!("/v1/merges/{merge_id}/undo"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(undone.status, 200, "{}", undone.body);
    assert_eq!(
        undone.body["restored"][0]["properties"]["first_page"],
        "/landing"
    );
    assert_eq!(
        undone.body["survivor"]["properties"]["first_page"], "/pricing",
        "the survivor's own value comes back"
    );
}
}
