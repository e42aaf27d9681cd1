//! Chameleon's REST v3 profile and company APIs under `/compat/chameleon`: every endpoint and
//! every filter operator, with answers checked against the native API's answer to the same
//! question.

use jiff::{SignedDuration, Timestamp};
use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

/// A Chameleon call with the secret in `X-Account-Secret`.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    secret: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}/compat/chameleon{path}", app.base));
    if let Some(secret) = secret {
        request = request.header("X-Account-Secret", secret);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    TestApp::read(request.send().await.expect("the server answers")).await
}

fn assert_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.body["code"], status, "{}", reply.body);
    let messages = reply.body["messages"].as_array().expect("messages");
    assert!(
        !messages.is_empty() && messages.iter().all(Value::is_string),
        "{}",
        reply.body
    );
}

async fn hook(app: &TestApp, secret: &str, body: Value) -> String {
    let reply = call(
        app,
        Method::POST,
        "/v3/observe/hooks/profiles",
        Some(secret),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["profile"]["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

fn ids(profiles: &Value) -> Vec<String> {
    let mut ids: Vec<String> = profiles
        .as_array()
        .expect("profiles")
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn iso(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

backend_test! {
#[tokio::test]
async fn the_webhook_creates_and_updates_profiles_that_read_back_by_id_uid_and_email() {
    let app = TestApp::start().await;
    let id = hook(&app, &app.admin, json!({
        "uid": 18821, "email": "Leon@Chmln.co", "planName": "pro", "Team Size": 25,
        "bio": "x".repeat(1000), "company": {"uid": "acme", "name": "Acme"}
    })).await;
    // The same uid again updates the same profile.
    assert_eq!(hook(&app, &app.admin, json!({"uid": "18821", "role": "admin"})).await, id);

    let shown = call(&app, Method::GET, &format!("/v3/analyze/profiles/{id}"), Some(&app.admin), None).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let profile = &shown.body["profile"];
    assert_eq!(profile["id"], id.as_str());
    assert_eq!(profile["uid"], "18821");
    assert_eq!(profile["email"], "leon@chmln.co");
    assert_eq!(profile["plan_name"], "pro");
    assert_eq!(profile["team_size"], 25);
    assert_eq!(profile["role"], "admin");
    assert_eq!(profile["bio"].as_str().unwrap().len(), 768);
    assert_eq!(profile["delivery_ids"], json!([]));
    assert!(profile["percent"].is_number());
    for key in ["created_at", "updated_at", "browser_x", "browser_tz", "browser_l", "browser_n", "browser_k", "last_seen_at", "last_seen_session_count"] {
        assert!(profile.get(key).is_some(), "{key} missing from {profile}");
    }
    assert_eq!(profile["company"]["uid"], "acme");
    assert_eq!(profile["company"]["name"], "Acme");
    assert_eq!(profile["company_id"], profile["company"]["id"]);

    // The native API sees the same person.
    let native = app.get(&format!("/v1/profiles/{id}"), &app.admin).await;
    assert_eq!(native.body["properties"]["plan_name"], "pro");
    assert_eq!(native.body["company_id"], profile["company_id"]);
    assert!(native.body["identities"].as_array().unwrap().contains(&json!({"kind": "uid", "value": "18821"})));

    for (method, path, body) in [
        (Method::GET, "/v3/analyze/profile?uid=18821".to_owned(), None),
        (Method::GET, "/v3/analyze/profile?email=leon%40chmln.co".to_owned(), None),
        (Method::POST, "/v3/analyze/profile".to_owned(), Some(json!({"uid": 18821}))),
        (Method::POST, "/v3/analyze/profile".to_owned(), Some(json!({"email": "leon@chmln.co"}))),
        (Method::POST, format!("/v3/analyze/profiles/{id}"), None),
        (Method::GET, format!("/v3/analyze/profile?id={id}"), None),
    ] {
        let found = call(&app, method, &path, Some(&app.admin), body).await;
        assert_eq!(found.status, 200, "{path}: {}", found.body);
        assert_eq!(found.body["profile"]["id"], id.as_str(), "{path}");
    }
    let short = call(&app, Method::GET, "/v3/analyze/profile?uid=18821&expand[profile]=min&expand[company]=skip", Some(&app.admin), None).await;
    let mut keys: Vec<&String> = short.body["profile"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["created_at", "id", "uid", "updated_at"]);

    assert_error(&call(&app, Method::GET, "/v3/analyze/profile", Some(&app.admin), None).await, 422);
    assert_error(&call(&app, Method::GET, "/v3/analyze/profile?uid=nobody", Some(&app.admin), None).await, 404);
    assert_error(&call(&app, Method::GET, "/v3/analyze/profiles/no-such-id", Some(&app.admin), None).await, 404);
    let no_identifier = call(&app, Method::POST, "/v3/observe/hooks/profiles", Some(&app.admin), Some(json!({"plan": "x"}))).await;
    assert_error(&no_identifier, 422);
    // Updating by id keeps the profile's identities.
    let by_id = hook(&app, &app.admin, json!({"id": id, "plan_name": "enterprise"})).await;
    assert_eq!(by_id, id);
    assert_eq!(app.get(&format!("/v1/profiles/{id}"), &app.admin).await.body["properties"]["plan_name"], "enterprise");
}
}

/// Profiles for the operator tests, written through the native API.
async fn population(app: &TestApp) -> Vec<String> {
    let now = Timestamp::now();
    let recent = iso(now - SignedDuration::from_hours(72));
    let old = iso(now - SignedDuration::from_hours(240));
    let people = [
        json!({"plan": "pro", "team_size": 25, "role": "admin", "email_domain": "acme.io", "tags": ["beta", "x"], "last_login_at": recent}),
        json!({"plan": "free", "team_size": 3, "role": "owner", "email_domain": "globex.com", "tags": ["x"], "last_login_at": old}),
        json!({"plan": "pro", "team_size": 10, "email_domain": "acme.io", "tags": [], "last_login_at": old}),
        json!({"plan": "enterprise", "team_size": "25", "role": "viewer"}),
        json!({"plan": "free"}),
    ];
    let mut ids = Vec::new();
    for (i, set) in people.into_iter().enumerate() {
        let reply = app
            .upsert(
                &app.admin,
                json!({"identities": {"uid": format!("u{i}")}, "set": set}),
            )
            .await;
        assert!(reply.status.is_success(), "{}", reply.body);
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn native_ids(app: &TestApp, filter: &str) -> Vec<String> {
    let reply = app
        .post(
            "/v1/profiles/search",
            &app.admin,
            json!({"filter": filter, "limit": 100}),
        )
        .await;
    assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
    ids(&reply.body["profiles"])
}

backend_test! {
#[tokio::test]
async fn every_filter_operator_answers_as_the_native_filter_does() {
    let app = TestApp::start().await;
    population(&app).await;
    let cases = [
        (json!({"prop": "role", "op": "ex"}), "properties.role exists"),
        (json!({"prop": "role", "op": "nx"}), "not properties.role exists"),
        (json!({"kind": "property", "prop": "plan", "op": "eq", "value": "pro"}), r#"properties.plan = "pro""#),
        (json!({"prop": "team_size", "op": "eq", "value": "25"}), r#"properties.team_size in [25, "25"]"#),
        (json!({"prop": "plan", "op": "ne", "value": "pro"}), r#"properties.plan != "pro""#),
        (json!({"prop": "team_size", "op": "gt", "value": 5}), "properties.team_size > 5"),
        (json!({"prop": "team_size", "op": "lt", "value": "11"}), "properties.team_size < 11"),
        (json!({"prop": "team_size", "op": "gte", "value": 10}), "properties.team_size >= 10"),
        (json!({"prop": "last_login_at", "op": "gt-d", "value": 7}), "properties.last_login_at > now-7d"),
        (json!({"prop": "last_login_at", "op": "lt-d", "value": "7"}), "properties.last_login_at < now-7d"),
        (json!({"prop": "email_domain", "op": "in", "value": "acme"}), r#"properties.email_domain contains "acme""#),
        (json!({"prop": "email_domain", "op": "nin", "value": "acme"}), r#"not properties.email_domain contains "acme""#),
        (json!({"prop": "role", "op": "in-v", "value": "admin,owner"}), r#"properties.role in ["admin", "owner"]"#),
        (json!({"prop": "role", "op": "nin-v", "value": "admin, owner"}), r#"properties.role not in ["admin", "owner"]"#),
        (json!({"prop": "tags", "op": "in-a", "value": "beta"}), r#"properties.tags contains "beta""#),
        (json!({"prop": "tags", "op": "nin-a", "value": "x"}), r#"not properties.tags contains "x""#),
        (json!({"prop": "uid", "op": "eq", "value": "u1"}), r#"identities.uid = "u1""#),
        (json!({"prop": "created_at", "op": "gt-d", "value": 1}), "created_at > now-1d"),
    ];
    for (item, native) in cases {
        let expected = native_ids(&app, native).await;
        let body = json!({"filters": [item.clone()]});
        let found = call(&app, Method::POST, "/v3/analyze/profiles", Some(&app.admin), Some(body.clone())).await;
        assert_eq!(found.status, 200, "{item}: {}", found.body);
        assert_eq!(ids(&found.body["profiles"]), expected, "{item} vs {native}");
        let counted = call(&app, Method::POST, "/v3/analyze/profiles/count", Some(&app.admin), Some(body)).await;
        assert_eq!(counted.body["count"], expected.len(), "{item}");
    }
    // Several items: AND by default, OR with `filters_op=or`; also in the query-string form.
    let two = json!([{"prop": "plan", "op": "eq", "value": "pro"}, {"prop": "team_size", "op": "gt", "value": 20}]);
    let and = call(&app, Method::POST, "/v3/analyze/profiles", Some(&app.admin), Some(json!({"filters": two}))).await;
    assert_eq!(ids(&and.body["profiles"]), native_ids(&app, r#"properties.plan = "pro" and properties.team_size > 20"#).await);
    let or = call(&app, Method::POST, "/v3/analyze/profiles/count", Some(&app.admin), Some(json!({"filters": two, "filters_op": "or"}))).await;
    assert_eq!(or.body["count"], native_ids(&app, r#"properties.plan = "pro" or properties.team_size > 20"#).await.len());
    let query = "/v3/analyze/profiles?filters[0][prop]=plan&filters[0][op]=eq&filters[0][value]=free&filters[1][prop]=team_size&filters[1][op]=lt&filters[1][value]=5&filters_op=or";
    let by_query = call(&app, Method::GET, query, Some(&app.admin), None).await;
    assert_eq!(by_query.status, 200, "{}", by_query.body);
    assert_eq!(ids(&by_query.body["profiles"]), native_ids(&app, r#"properties.plan = "free" or properties.team_size < 5"#).await);

    // Bad filters are 422s naming the item.
    for bad in [
        json!({"filters": [{"prop": "plan", "op": "like", "value": "x"}]}),
        json!({"filters": [{"kind": "tour", "value": "t1"}]}),
        json!({"filters": [{"prop": "browser_x", "op": "gt", "value": 3}]}),
        json!({"filters": "plan"}),
        json!({"filters_op": "xor"}),
        json!({"limit": 501}),
        json!({"expand": {"profile": "some"}}),
    ] {
        let reply = call(&app, Method::POST, "/v3/analyze/profiles", Some(&app.admin), Some(bad.clone())).await;
        assert_error(&reply, 422);
        assert!(reply.body["messages"][0].as_str().unwrap().starts_with('/'), "{bad}: {}", reply.body);
    }
}
}

backend_test! {
#[tokio::test]
async fn segments_filter_searches_by_segment_id_and_by_segment_items() {
    let app = TestApp::start().await;
    let defined = app.call(Method::PUT, "/v1/segments/paying", Some(&app.admin),
        Some(json!({"name": "Paying", "filter": r#"properties.plan in ["pro", "enterprise"]"#}))).await;
    assert_eq!(defined.status, 201, "{}", defined.body);
    population(&app).await;
    let expected = native_ids(&app, r#"segments contains "paying""#).await;
    assert_eq!(expected.len(), 3);
    let by_id = call(&app, Method::GET, "/v3/analyze/profiles?segment_id=paying", Some(&app.admin), None).await;
    assert_eq!(ids(&by_id.body["profiles"]), expected);
    let by_item = call(&app, Method::POST, "/v3/analyze/profiles/count", Some(&app.admin),
        Some(json!({"filters": [{"kind": "segment", "value": "paying", "op": "ne"}]}))).await;
    assert_eq!(by_item.body["count"], 2);
    assert_error(&call(&app, Method::GET, "/v3/analyze/profiles?segment_id=nope", Some(&app.admin), None).await, 404);
}
}

backend_test! {
#[tokio::test]
async fn search_pages_newest_first_with_the_before_cursor() {
    let app = TestApp::start().await;
    let mut created = population(&app).await;
    created.reverse();
    let mut seen = Vec::new();
    let mut path = "/v3/analyze/profiles?limit=2&expand[profile]=min".to_owned();
    loop {
        let page = call(&app, Method::GET, &path, Some(&app.admin), None).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.body["cursor"]["limit"], 2);
        for p in page.body["profiles"].as_array().unwrap() {
            assert_eq!(p.as_object().unwrap().len(), 4, "{p}");
            seen.push(p["id"].as_str().unwrap().to_owned());
        }
        match page.body["cursor"]["before"].as_str() {
            Some(before) => path = format!("/v3/analyze/profiles?limit=2&expand[profile]=min&before={before}"),
            None => break,
        }
    }
    assert_eq!(seen, created, "newest first, each once");
    // `after` a timestamp in the future: nothing; in the past: everything.
    let future = iso(Timestamp::now() + SignedDuration::from_hours(1));
    let later = call(&app, Method::POST, "/v3/analyze/profiles/count", Some(&app.admin), Some(json!({"after": future}))).await;
    assert_eq!(later.body["count"], 0);
    let all = call(&app, Method::POST, "/v3/analyze/profiles/count", Some(&app.admin), Some(json!({"after": "2020-01-01T00:00:00Z"}))).await;
    assert_eq!(all.body["count"], 5);
}
}

backend_test! {
#[tokio::test]
async fn clear_resets_a_profile_and_forget_leaves_the_native_deletion_receipt() {
    let app = TestApp::start().await;
    let id = hook(&app, &app.admin, json!({"uid": "c1", "email": "c1@example.com", "plan": "pro"})).await;
    let before = app.get(&format!("/v1/profiles/{id}"), &app.admin).await;

    let cleared = call(&app, Method::DELETE, "/v3/edit/profiles?uid=c1", Some(&app.admin), None).await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    let profile = &cleared.body["profile"];
    assert_eq!(profile["id"], id.as_str());
    assert_eq!(profile["uid"], "c1");
    assert!(profile["last_cleared_at"].is_string(), "{profile}");
    assert!(profile["last_seen_at"].is_null() && profile["browser_x"].is_null());
    assert!(profile.get("plan").is_none());
    assert_ne!(profile["percent"], before.body["computed"]["percent"]);
    assert_eq!(app.get(&format!("/v1/profiles/{id}"), &app.admin).await.body["properties"], json!({}));
    let by_id = call(&app, Method::DELETE, &format!("/v3/edit/profiles/{id}"), Some(&app.admin), None).await;
    assert_eq!(by_id.status, 200, "{}", by_id.body);

    let forgotten = call(&app, Method::DELETE, &format!("/v3/edit/profiles/{id}/forget"), Some(&app.admin), None).await;
    assert_eq!(forgotten.status, 200, "{}", forgotten.body);
    assert_eq!(forgotten.body["profile"]["id"], id.as_str());
    let deletion = forgotten.body["deletion"]["id"].as_str().unwrap();
    let receipt = app.get(&format!("/v1/deletions/{deletion}"), &app.admin).await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    assert_eq!(receipt.body["profile_id"], id.as_str());
    assert_error(&call(&app, Method::GET, "/v3/analyze/profile?uid=c1", Some(&app.admin), None).await, 404);

    let other = hook(&app, &app.admin, json!({"email": "gone@example.com"})).await;
    let by_email = call(&app, Method::DELETE, "/v3/edit/profiles/forget?email=gone%40example.com", Some(&app.admin), None).await;
    assert_eq!(by_email.body["profile"]["id"], other.as_str());
    assert_error(&call(&app, Method::DELETE, "/v3/edit/profiles/forget?uid=nobody", Some(&app.admin), None).await, 404);
    assert_error(&call(&app, Method::DELETE, "/v3/edit/profiles/forget", Some(&app.admin), None).await, 422);
}
}

backend_test! {
#[tokio::test]
async fn the_batch_webhook_applies_good_items_reports_bad_ones_and_can_ignore_new_profiles() {
    let app = TestApp::start().await;
    let batch = call(&app, Method::POST, "/v3/observe/hooks/profiles/batch", Some(&app.admin), Some(json!({"profiles": [
        {"uid": "b1", "plan": "pro"},
        {"plan": "no identifier"},
        {"email": "b2@example.com", "plan": "free"},
        "not an object",
    ]}))).await;
    assert_eq!(batch.status, 202, "{}", batch.body);
    let errors = batch.body["errors"].as_array().unwrap();
    assert_eq!(errors.iter().map(|e| e["index"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 3]);
    assert!(errors.iter().all(|e| e["code"] == 422 && e["message"].is_string()));
    let job = app.get(&format!("/v1/imports/{}", batch.body["batch"]["id"].as_str().unwrap()), &app.admin).await;
    assert_eq!(job.status, 200, "{}", job.body);
    assert_eq!(job.body["counts"]["created"], 2);
    assert_eq!(job.body["counts"]["failed"], 2);

    let ignoring = call(&app, Method::POST, "/v3/observe/hooks/profiles/batch", Some(&app.admin), Some(json!({
        "on_model_missing": "ignore",
        "profiles": [{"uid": "b1", "plan": "enterprise"}, {"uid": "b9", "plan": "pro"}]
    }))).await;
    assert_eq!(ignoring.status, 202, "{}", ignoring.body);
    assert!(ignoring.body.get("errors").is_none());
    let b1 = app.get("/v1/profiles/by/uid/b1", &app.admin).await;
    assert_eq!(b1.body["properties"]["plan"], "enterprise");
    assert_eq!(app.get("/v1/profiles/by/uid/b9", &app.admin).await.status, 404);

    let huge = json!({"profiles": [{"uid": "big", "blob": "x".repeat(17 * 1024 * 1024)}]});
    assert_error(&call(&app, Method::POST, "/v3/observe/hooks/profiles/batch", Some(&app.admin), Some(huge)).await, 413);
    assert_error(&call(&app, Method::POST, "/v3/observe/hooks/profiles/batch", Some(&app.admin), Some(json!({"profiles": {}}))).await, 422);
}
}

backend_test! {
#[tokio::test]
async fn forget_batch_takes_a_csv_of_uids_or_emails() {
    let app = TestApp::start().await;
    hook(&app, &app.admin, json!({"uid": "f1"})).await;
    hook(&app, &app.admin, json!({"email": "f2@example.com"})).await;
    hook(&app, &app.admin, json!({"uid": "keep"})).await;
    let csv = "uid,email\nf1,\n,f2@example.com\nnobody,\n,\n";
    let reply = TestApp::read(app.client
        .post(format!("{}/compat/chameleon/v3/edit/profiles/forget/batch", app.base))
        .header("X-Account-Secret", &app.admin)
        .header("content-type", "text/csv")
        .body(csv)
        .send().await.unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["deletions"].as_array().unwrap().len(), 2);
    assert_eq!(reply.body["not_found"], 1);
    assert_eq!(reply.body["errors"][0]["index"], 3);
    assert_eq!(app.get("/v1/profiles/by/uid/f1", &app.admin).await.status, 404);
    assert_eq!(app.get("/v1/profiles/by/email/f2@example.com", &app.admin).await.status, 404);
    assert_eq!(app.get("/v1/profiles/by/uid/keep", &app.admin).await.status, 200);
    let headless = TestApp::read(app.client
        .post(format!("{}/compat/chameleon/v3/edit/profiles/forget/batch", app.base))
        .header("X-Account-Secret", &app.admin)
        .body("keep\n")
        .send().await.unwrap()).await;
    assert_error(&headless, 422);
}
}

backend_test! {
#[tokio::test]
async fn companies_are_written_by_webhook_and_listed_newest_first() {
    let app = TestApp::start().await;
    for (uid, name) in [("acme", "Acme"), ("globex", "Globex"), ("initech", "Initech")] {
        let reply = call(&app, Method::POST, "/v3/observe/hooks/companies", Some(&app.admin), Some(json!({"uid": uid, "companyName": name}))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body["company"]["id"].is_string());
    }
    let first = call(&app, Method::GET, "/v3/analyze/companies?limit=2", Some(&app.admin), None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let uids: Vec<&str> = first.body["companies"].as_array().unwrap().iter().map(|c| c["uid"].as_str().unwrap()).collect();
    assert_eq!(uids, ["initech", "globex"]);
    let before = first.body["cursor"]["before"].as_str().unwrap();
    let rest = call(&app, Method::POST, "/v3/analyze/companies", Some(&app.admin), Some(json!({"limit": 2, "before": before}))).await;
    assert_eq!(rest.body["companies"][0]["uid"], "acme");
    assert!(rest.body["cursor"]["before"].is_null());

    let acme = call(&app, Method::GET, "/v3/analyze/company?uid=acme", Some(&app.admin), None).await;
    assert_eq!(acme.body["company"]["company_name"], "Acme");
    let id = acme.body["company"]["id"].as_str().unwrap();
    let by_id = call(&app, Method::GET, &format!("/v3/analyze/companies/{id}"), Some(&app.admin), None).await;
    assert_eq!(by_id.body["company"]["uid"], "acme");
    let native = app.get(&format!("/v1/companies/{id}"), &app.admin).await;
    assert_eq!(native.body["properties"]["company_name"], "Acme");
    // Updating by id merges properties.
    call(&app, Method::POST, "/v3/observe/hooks/companies", Some(&app.admin), Some(json!({"id": id, "tier": "gold"}))).await;
    let updated = call(&app, Method::GET, "/v3/analyze/company?uid=acme", Some(&app.admin), None).await;
    assert_eq!(updated.body["company"]["tier"], "gold");
    assert_eq!(updated.body["company"]["company_name"], "Acme");

    assert_error(&call(&app, Method::POST, "/v3/observe/hooks/companies", Some(&app.admin), Some(json!({"name": "x"}))).await, 422);
    assert_error(&call(&app, Method::GET, "/v3/analyze/company?uid=none", Some(&app.admin), None).await, 404);
    assert_error(&call(&app, Method::GET, "/v3/analyze/company", Some(&app.admin), None).await, 422);
    // A profile joins a company by uid.
    let joined = hook(&app, &app.admin, json!({"uid": "p1", "company_uid": "globex"})).await;
    let profile = call(&app, Method::GET, &format!("/v3/analyze/profiles/{joined}"), Some(&app.admin), None).await;
    assert_eq!(profile.body["profile"]["company"]["uid"], "globex");
}
}

backend_test! {
#[tokio::test]
async fn secrets_scopes_and_workspaces_are_enforced_in_chameleons_error_shape() {
    let app = TestApp::start().await;
    let write = app.key(Scope::Write).await;
    let read = app.key(Scope::Read).await;
    let id = hook(&app, &write, json!({"uid": "s1", "plan": "pro"})).await;

    assert_error(&call(&app, Method::GET, "/v3/analyze/profile?uid=s1", None, None).await, 403);
    assert_error(&call(&app, Method::GET, "/v3/analyze/profile?uid=s1", Some("prf_wrong"), None).await, 403);
    // A write-only key writes but never reads; a read key reads but never writes.
    assert_error(&call(&app, Method::GET, "/v3/analyze/profile?uid=s1", Some(&write), None).await, 403);
    assert_error(&call(&app, Method::POST, "/v3/observe/hooks/profiles", Some(&read), Some(json!({"uid": "s2"}))).await, 403);
    assert_error(&call(&app, Method::DELETE, &format!("/v3/edit/profiles/{id}/forget"), Some(&read), None).await, 403);
    let cleared = call(&app, Method::DELETE, &format!("/v3/edit/profiles/{id}"), Some(&write), None).await;
    assert_eq!(cleared.body, json!({"profile": {"id": id}}));
    let read_back = call(&app, Method::GET, &format!("/v3/analyze/profile?uid=s1&account_secret={read}"), None, None).await;
    assert_eq!(read_back.status, 200, "{}", read_back.body);
    // The secret in the webhook's path.
    let by_path = call(&app, Method::POST, &format!("/v3/observe/hooks/{write}/profiles"), None, Some(json!({"uid": "s3"}))).await;
    assert_eq!(by_path.status, 200, "{}", by_path.body);
    let me = call(&app, Method::GET, "/", Some(&read), None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(me.body["account"]["id"].is_string());

    // Another workspace sees none of it.
    let acme = app.post("/v1/workspaces", &app.admin, json!({"name": "acme"})).await;
    let acme = acme.body["admin_key"]["secret"].as_str().unwrap().to_owned();
    assert_error(&call(&app, Method::GET, &format!("/v3/analyze/profiles/{id}"), Some(&acme), None).await, 404);
    let counted = call(&app, Method::GET, "/v3/analyze/profiles/count", Some(&acme), None).await;
    assert_eq!(counted.body["count"], 0);
    assert_error(&call(&app, Method::DELETE, &format!("/v3/edit/profiles/{id}/forget"), Some(&acme), None).await, 404);

    assert_error(&call(&app, Method::GET, "/v3/nothing-here", Some(&read), None).await, 404);
    assert_error(&call(&app, Method::PUT, "/v3/analyze/profiles", Some(&read), None).await, 405);
    let broken = app.client.post(format!("{}/compat/chameleon/v3/analyze/profiles", app.base))
        .header("X-Account-Secret", &read).header("content-type", "application/json").body("{").send().await.unwrap();
    assert_error(&TestApp::read(broken).await, 400);
}
}
