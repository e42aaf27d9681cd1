//! Search and count over HTTP with the filter language; declared indexes.

use profiled_core::Scope;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem};

/// Ten profiles: u0..u9, plan alternating free/pro, age 20..29, tags on the even ones.
async fn seeded() -> TestApp {
    let app = TestApp::start().await;
    for i in 0..10 {
        let (plan, city) = [("free", "Paris"), ("pro", "Lyon")][i % 2];
        let mut set = json!({"plan": plan, "age": 20 + i, "address": {"city": city}});
        if i % 2 == 0 {
            set["tags"] = json!(["even", format!("t{i}")]);
        }
        let reply = app
            .upsert(&app.admin, json!({"identities": {"user_id": format!("u{i}"), "email": format!("u{i}@example.com")}, "set": set}))
            .await;
        assert_eq!(reply.status, 201);
    }
    app
}

fn user_ids(body: &Value) -> Vec<String> {
    body["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["identities"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["kind"] == "user_id")
                .unwrap()["value"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

backend_test! {
#[tokio::test]
async fn the_string_and_json_forms_find_the_same_profiles() {
    let app = seeded().await;
    let text = app
        .post("/v1/profiles/search", &app.admin, json!({"filter": r#"properties.plan = "pro" and properties.age >= 25"#, "sort": [{"field": "properties.age"}]}))
        .await;
    assert_eq!(text.status, 200, "{}", text.body);
    assert_eq!(user_ids(&text.body), ["u5", "u7", "u9"]);
    let tree = app
        .post(
            "/v1/profiles/search",
            &app.admin,
            json!({"filter": {"and": [{"field": "properties.plan", "op": "=", "value": "pro"}, {"field": "properties.age", "op": ">=", "value": 25}]},
                   "sort": [{"field": "properties.age", "order": "asc"}]}),
        )
        .await;
    assert_eq!(tree.body, text.body);
    assert!(text.body["next_cursor"].is_null());
}
}

backend_test! {
#[tokio::test]
async fn every_kind_of_field_and_operator_can_be_searched() {
    let app = seeded().await;
    let cases = [
        (r#"properties.tags contains "even""#, 5),
        (r#"properties.address.city = "Lyon""#, 5),
        (r#"properties.address.city starts_with "Par""#, 5),
        (r#"identities.email = "u3@example.com""#, 1),
        (r#"identities.email starts_with "u1""#, 1),
        (
            r#"properties.plan in ["pro", "team"] and not properties.age > 23"#,
            2,
        ),
        ("properties.tags not exists", 5),
        ("created_at > now-1h and updated_at <= now", 10),
        ("computed.percent >= 0 and computed.percent < 100", 10),
        (r#"properties.age = "25""#, 0),
        ("", 10),
    ];
    for (filter, expected) in cases {
        let reply = app
            .post("/v1/profiles/count", &app.admin, json!({"filter": filter}))
            .await;
        assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
        assert_eq!(reply.body["count"], expected, "{filter}");
        let found = app
            .post("/v1/profiles/search", &app.admin, json!({"filter": filter}))
            .await;
        assert_eq!(
            found.body["profiles"].as_array().unwrap().len(),
            expected,
            "{filter}"
        );
    }
    assert_eq!(
        app.post("/v1/profiles/count", &app.admin, json!({}))
            .await
            .body["count"],
        10
    );
}
}

backend_test! {
#[tokio::test]
async fn cursors_page_through_every_match_once_in_order() {
    let app = seeded().await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut body = json!({"filter": "properties.age >= 21", "sort": [{"field": "properties.plan", "order": "desc"}, {"field": "properties.age", "order": "desc"}], "limit": 3});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page = app.post("/v1/profiles/search", &app.admin, body).await;
        assert_eq!(page.status, 200, "{}", page.body);
        seen.extend(user_ids(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["u9", "u7", "u5", "u3", "u1", "u8", "u6", "u4", "u2"]);

    let first = app.get("/v1/profiles?filter=properties.age%20%3E%3D%2021&sort=-properties.plan,-properties.age&limit=3", &app.admin).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(user_ids(&first.body), ["u9", "u7", "u5"]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app.get(&format!("/v1/profiles?filter=properties.age%20%3E%3D%2021&sort=-properties.plan,-properties.age&limit=3&cursor={cursor}"), &app.admin).await;
    assert_eq!(user_ids(&second.body), ["u3", "u1", "u8"]);
    let other_sort = app
        .get(
            &format!("/v1/profiles?sort=properties.age&cursor={cursor}"),
            &app.admin,
        )
        .await;
    assert_problem(&other_sort, 422);
    assert_problem(&app.get("/v1/profiles?cursor=bogus", &app.admin).await, 422);
}
}

backend_test! {
#[tokio::test]
async fn a_filter_that_does_not_parse_is_a_400_that_points_at_the_position() {
    let app = seeded().await;
    let reply = app
        .post(
            "/v1/profiles/search",
            &app.admin,
            json!({"filter": r#"properties.plan = "pro" and and"#}),
        )
        .await;
    assert_problem(&reply, 400);
    assert_eq!(reply.body["position"], 28);
    let reply = app
        .get("/v1/profiles?filter=plan%20%3D%201", &app.admin)
        .await;
    assert_problem(&reply, 400);
    assert_eq!(reply.body["position"], 0);
    let reply = app
        .post("/v1/profiles/count", &app.admin, json!({"filter": {"or": [{"field": "properties.a", "op": "=", "value": 1}, {"field": "properties.a", "op": "like", "value": 1}]}}))
        .await;
    assert_problem(&reply, 400);
    assert_eq!(reply.violation_pointers(), ["/filter/or/1/op"]);
    assert_problem(
        &app.post("/v1/profiles/search", &app.admin, json!({"filter": 5}))
            .await,
        422,
    );
    assert_problem(
        &app.post("/v1/profiles/search", &app.admin, json!({"limit": 5000}))
            .await,
        422,
    );
    assert_problem(
        &app.post(
            "/v1/profiles/search",
            &app.admin,
            json!({"sort": [{"field": "identities.email"}]}),
        )
        .await,
        422,
    );
    assert_problem(
        &app.post("/v1/profiles/search", &app.admin, json!({"filtr": ""}))
            .await,
        422,
    );
}
}

backend_test! {
#[tokio::test]
async fn values_are_bound_never_spliced_into_sql() {
    let app = seeded().await;
    for filter in [
        r#"properties.plan = "pro' OR 1=1 --""#,
        r#"identities.email = "x' OR '1'='1""#,
        r#"properties.plan = "\"); DROP TABLE profiles; --""#,
    ] {
        let reply = app
            .post("/v1/profiles/count", &app.admin, json!({"filter": filter}))
            .await;
        assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
        assert_eq!(reply.body["count"], 0, "{filter}");
    }
    let quoted_key = app
        .post(
            "/v1/profiles/count",
            &app.admin,
            json!({"filter": r#"properties."a')=1 OR (1" = 1"#}),
        )
        .await;
    assert_eq!(quoted_key.body["count"], 0, "{}", quoted_key.body);
    let bad_key = app
        .post(
            "/v1/profiles/count",
            &app.admin,
            json!({"filter": r#"properties."a\"b" = 1"#}),
        )
        .await;
    assert_problem(&bad_key, 400);
    assert_eq!(
        app.post("/v1/profiles/count", &app.admin, json!({}))
            .await
            .body["count"],
        10
    );
}
}

backend_test! {
#[tokio::test]
async fn searching_needs_a_read_scope_and_stays_in_the_workspace() {
    let app = seeded().await;
    let write = app.key(Scope::Write).await;
    assert_problem(
        &app.post("/v1/profiles/search", &write, json!({})).await,
        403,
    );
    assert_problem(
        &app.post("/v1/profiles/count", &write, json!({})).await,
        403,
    );
    assert_problem(&app.get("/v1/profiles", &write).await, 403);
    let read = app.key(Scope::Read).await;
    assert_eq!(
        app.post("/v1/profiles/count", &read, json!({})).await.body["count"],
        10
    );

    let other = app
        .post("/v1/workspaces", &app.admin, json!({"name": "other"}))
        .await;
    let other_key = other.body["admin_key"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.post("/v1/profiles/count", &other_key, json!({}))
            .await
            .body["count"],
        0
    );
    assert_eq!(
        app.get("/v1/profiles", &other_key).await.body["profiles"],
        json!([])
    );
}
}

backend_test! {
#[tokio::test]
async fn admins_declare_list_and_drop_indexes() {
    let app = seeded().await;
    let declared = app
        .post(
            "/v1/workspace/indexes",
            &app.admin,
            json!({"field": "properties.plan", "type": "string"}),
        )
        .await;
    assert_eq!(declared.status, 200, "{}", declared.body);
    assert_eq!(declared.body["field"], "properties.plan");
    assert_eq!(declared.body["type"], "string");
    app.post(
        "/v1/workspace/indexes",
        &app.admin,
        json!({"field": "computed.percent", "type": "number"}),
    )
    .await;
    let listed = app.get("/v1/workspace/indexes", &app.admin).await;
    let fields: Vec<&str> = listed.body["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["computed.percent", "properties.plan"]);
    // Results are the same with the index as without.
    assert_eq!(
        app.post(
            "/v1/profiles/count",
            &app.admin,
            json!({"filter": r#"properties.plan = "pro""#})
        )
        .await
        .body["count"],
        5
    );

    let rw = app.key(Scope::ReadWrite).await;
    assert_problem(&app.get("/v1/workspace/indexes", &rw).await, 403);
    assert_problem(
        &app.post(
            "/v1/workspace/indexes",
            &rw,
            json!({"field": "properties.age", "type": "number"}),
        )
        .await,
        403,
    );
    assert_problem(
        &app.post(
            "/v1/workspace/indexes",
            &app.admin,
            json!({"field": "created_at", "type": "timestamp"}),
        )
        .await,
        422,
    );
    assert_problem(
        &app.post(
            "/v1/workspace/indexes",
            &app.admin,
            json!({"field": "properties.age", "type": "date"}),
        )
        .await,
        422,
    );

    assert_eq!(
        app.delete("/v1/workspace/indexes/properties.plan", &app.admin)
            .await
            .status,
        204
    );
    assert_problem(
        &app.delete("/v1/workspace/indexes/properties.plan", &app.admin)
            .await,
        404,
    );
    assert_eq!(
        app.get("/v1/workspace/indexes", &app.admin).await.body["indexes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
}
