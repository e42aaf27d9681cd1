//! Events: they create and update profiles, add up to computed values (built-in and
//! workspace-defined), fill location and device, and are erased by clear and forget.

use jiff::{SignedDuration, Timestamp};
use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Setup, TestApp, assert_problem};

fn ago(minutes: i64) -> String {
    (Timestamp::now() - SignedDuration::from_mins(minutes)).to_string()
}

async fn send(app: &TestApp, key: &str, events: Value) -> Value {
    let reply = app
        .post("/v1/events", key, json!({ "events": events }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn profile(app: &TestApp, id: &Value) -> Value {
    let reply = app
        .get(
            &format!("/v1/profiles/{}", id.as_str().unwrap()),
            &app.admin,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

backend_test! {
#[tokio::test]
async fn events_create_a_profile_and_add_up_to_sessions_and_counts_in_any_order() {
    let app = TestApp::start().await;
    let a1 = json!({"anonymous_id": "a1"});
    // Out of order, newest first: 300 and 250 minutes ago are one session; 100 minutes ago,
    // 150 minutes later, starts another.
    let sent = send(&app, &app.admin, json!([
        {"identities": a1, "name": "view", "timestamp": ago(100)},
        {"identities": a1, "name": "view", "timestamp": ago(300)},
        {"identities": a1, "name": "purchase", "timestamp": ago(250), "properties": {"amount": 5}},
    ])).await;
    assert_eq!(sent["accepted"], 3);
    let ids = sent["profiles"].as_array().unwrap();
    assert!(ids.iter().all(|id| id == &ids[0]), "one profile: {sent}");
    let p = profile(&app, &ids[0]).await;
    assert_eq!(p["identities"], json!([{"kind": "anonymous_id", "value": "a1"}]));
    let computed = &p["computed"];
    assert_eq!(computed["session_count"], 2, "{computed}");
    assert_eq!(computed["event_counts"], json!({"view": 2, "purchase": 1}));
    let first: Timestamp = computed["first_seen_at"].as_str().unwrap().parse().unwrap();
    let last: Timestamp = computed["last_seen_at"].as_str().unwrap().parse().unwrap();
    assert!(last.duration_since(first) > SignedDuration::from_mins(199), "{computed}");
    assert_eq!(computed["last_event_at"]["purchase"].as_str().unwrap().len(), 27);
    assert!(computed["percent"].is_number());

    // A late event between the two sessions, within 90 minutes of both, joins them.
    send(&app, &app.admin, json!([{"identities": a1, "name": "view", "timestamp": ago(175)}])).await;
    let p = profile(&app, &ids[0]).await;
    assert_eq!(p["computed"]["session_count"], 1, "{}", p["computed"]);

    // Searchable like any computed value.
    let found = app.get("/v1/profiles?filter=computed.event_counts.view%20%3E%3D%203", &app.admin).await;
    assert_eq!(found.body["profiles"].as_array().unwrap().len(), 1, "{}", found.body);

    // Kept, newest first, and paged.
    let page = app.get(&format!("/v1/profiles/{}/events?limit=2", ids[0].as_str().unwrap()), &app.admin).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let names: Vec<&str> = page.body["events"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["view", "view"], "100 and 175 minutes ago");
    let next = page.body["next_before"].as_str().unwrap();
    let rest = app.get(&format!("/v1/profiles/{}/events?before={next}", ids[0].as_str().unwrap()), &app.admin).await;
    let names: Vec<&str> = rest.body["events"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["purchase", "view"]);
}
}

backend_test! {
#[tokio::test]
async fn an_event_sent_twice_with_its_id_counts_once() {
    let app = TestApp::start().await;
    let batch = json!([
        {"id": "e1", "identities": {"user_id": "u1"}, "name": "signup"},
        {"id": "e2", "identities": {"user_id": "u1"}, "name": "view"},
    ]);
    let first = send(&app, &app.admin, batch.clone()).await;
    assert_eq!((first["accepted"].as_u64(), first["duplicates"].as_u64()), (Some(2), Some(0)));
    let before = profile(&app, &first["profiles"][0]).await;
    let again = send(&app, &app.admin, batch).await;
    assert_eq!((again["accepted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(2)));
    let after = profile(&app, &first["profiles"][0]).await;
    assert_eq!(after["computed"]["event_counts"], json!({"signup": 1, "view": 1}));
    assert_eq!(after["version"], before["version"], "a retried batch changes nothing");
}
}

backend_test! {
#[tokio::test]
async fn a_batch_with_one_bad_event_is_refused_whole() {
    let app = TestApp::start().await;
    let reply = app.post("/v1/events", &app.admin, json!({"events": [
        {"identities": {"user_id": "good"}, "name": "view"},
        {"identities": {}, "name": "view"},
        {"identities": {"user_id": "late"}, "name": "x", "timestamp": "yesterday"},
    ]})).await;
    assert_problem(&reply, 422);
    assert_eq!(reply.violation_pointers(), ["/events/1/identities", "/events/2/timestamp"]);
    let reply = app.post("/v1/events", &app.admin, json!({"events": [
        {"identities": {"user_id": "good"}, "name": "view"},
        {"identities": {"user_id": "nameless"}, "name": ""},
        {"identities": {"user_id": "future"}, "name": "x", "timestamp": (Timestamp::now() + SignedDuration::from_hours(48)).to_string()},
    ]})).await;
    assert_problem(&reply, 422);
    assert_eq!(reply.violation_pointers(), ["/events/1/name", "/events/2/timestamp"]);
    let count = app.post("/v1/profiles/count", &app.admin, json!({})).await;
    assert_eq!(count.body["count"], 0, "nothing applied: {}", count.body);
    let empty = app.post("/v1/events", &app.admin, json!({"events": []})).await;
    assert_problem(&empty, 422);
    let unknown = app.post("/v1/events", &app.admin, json!({"events": [{"identities": {"user_id": "u"}, "name": "v", "props": {}}]})).await;
    assert_problem(&unknown, 422);
}
}

backend_test! {
#[tokio::test]
async fn workspaces_define_computed_properties_over_events_and_windows() {
    let app = TestApp::start().await;
    let reader = app.key(Scope::Read).await;
    let define = |key: &str, body: Value| {
        let app = &app;
        let key = key.to_owned();
        async move { app.call(Method::PUT, &format!("/v1/computed/{key}"), Some(&app.admin), Some(body)).await }
    };
    let created = define("total_spent", json!({"event": "purchase", "aggregate": "sum", "property": "amount"})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["aggregate"], "sum");
    let windowed = define("purchases_7d", json!({"event": "purchase", "aggregate": "count", "window": "7d"})).await;
    assert_eq!(windowed.status, 201, "{}", windowed.body);
    let last_plan = define("last_plan", json!({"aggregate": "last", "property": "plan"})).await;
    assert_eq!(last_plan.status, 201);
    let replaced = define("last_plan", json!({"event": "upgrade", "aggregate": "last", "property": "plan"})).await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);

    for bad in [
        ("session_count", json!({"aggregate": "count"})),
        ("Bad-Key", json!({"aggregate": "count"})),
        ("total", json!({"aggregate": "sum"})),
        ("total", json!({"aggregate": "count", "window": "90d"})),
        ("total", json!({"aggregate": "median", "property": "x"})),
    ] {
        let reply = define(bad.0, bad.1.clone()).await;
        assert_problem(&reply, 422);
    }
    let forbidden = app.call(Method::PUT, "/v1/computed/x", Some(&reader), Some(json!({"aggregate": "count"}))).await;
    assert_problem(&forbidden, 403);
    let listed = app.get("/v1/computed", &reader).await;
    let keys: Vec<&str> = listed.body["computed"].as_array().unwrap().iter().map(|d| d["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["last_plan", "purchases_7d", "total_spent"]);

    let u1 = json!({"user_id": "u1"});
    let sent = send(&app, &app.admin, json!([
        {"identities": u1, "name": "purchase", "timestamp": ago(60 * 24 * 10), "properties": {"amount": 100}},
        {"identities": u1, "name": "purchase", "timestamp": ago(60), "properties": {"amount": 20}},
        {"identities": u1, "name": "upgrade", "timestamp": ago(50), "properties": {"plan": "pro"}},
        {"identities": u1, "name": "upgrade", "timestamp": ago(70), "properties": {"plan": "team"}},
    ])).await;
    let p = profile(&app, &sent["profiles"][0]).await;
    assert_eq!(p["computed"]["total_spent"], 120, "{}", p["computed"]);
    assert_eq!(p["computed"]["purchases_7d"], 1, "{}", p["computed"]);
    assert_eq!(p["computed"]["last_plan"], "pro", "{}", p["computed"]);
    // The window is recomputed from kept events on the next one.
    send(&app, &app.admin, json!([{"identities": u1, "name": "purchase", "properties": {"amount": 1}}])).await;
    let p = profile(&app, &sent["profiles"][0]).await;
    assert_eq!(p["computed"]["purchases_7d"], 2);
    assert_eq!(p["computed"]["total_spent"], 121);

    let removed = app.delete("/v1/computed/purchases_7d", &app.admin).await;
    assert_eq!(removed.status, 204);
    assert_problem(&app.delete("/v1/computed/purchases_7d", &app.admin).await, 404);
    assert_problem(&app.get("/v1/computed/purchases_7d", &app.admin).await, 404);
}
}

backend_test! {
#[tokio::test]
async fn events_of_profiles_that_merge_add_up_together() {
    let app = TestApp::start().await;
    let anon = send(&app, &app.admin, json!([
        {"identities": {"anonymous_id": "a9"}, "name": "view", "timestamp": ago(500)},
        {"identities": {"anonymous_id": "a9"}, "name": "view", "timestamp": ago(490)},
    ])).await;
    let known = app.post("/v1/profiles", &app.admin, json!({"identities": {"user_id": "u9"}, "set": {"plan": "pro"}})).await;
    assert_eq!(known.status, 201);
    let both = send(&app, &app.admin, json!([
        {"identities": {"user_id": "u9", "anonymous_id": "a9"}, "name": "view", "timestamp": ago(10)},
    ])).await;
    assert_eq!(both["profiles"][0], known.body["id"], "the known user survives");
    let p = profile(&app, &both["profiles"][0]).await;
    assert_eq!(p["computed"]["event_counts"]["view"], 3, "{}", p["computed"]);
    assert_eq!(p["computed"]["session_count"], 2);
    assert_eq!(p["properties"]["plan"], "pro");
    // The absorbed profile's events moved with it.
    let events = app.get(&format!("/v1/profiles/{}/events", anon["profiles"][0].as_str().unwrap()), &app.admin).await;
    assert_eq!(events.body["events"].as_array().unwrap().len(), 3, "{}", events.body);
}
}

backend_test! {
#[tokio::test]
async fn clear_and_forget_erase_events() {
    let app = TestApp::start().await;
    let sent = send(&app, &app.admin, json!([
        {"identities": {"user_id": "c1"}, "name": "view", "context": {"user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"}},
        {"identities": {"user_id": "f1"}, "name": "view"},
    ])).await;
    let (cleared, forgotten) = (sent["profiles"][0].as_str().unwrap(), sent["profiles"][1].as_str().unwrap());
    assert_eq!(profile(&app, &sent["profiles"][0]).await["device"]["browser"], "Chrome");

    let reply = app.post(&format!("/v1/profiles/{cleared}/clear"), &app.admin, json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["device"], json!({}));
    assert!(reply.body["computed"].get("event_counts").is_none(), "{}", reply.body);
    let events = app.get(&format!("/v1/profiles/{cleared}/events"), &app.admin).await;
    assert_eq!(events.body["events"], json!([]));

    let ws = app.service.workspace_by_name("default").await.unwrap().id;
    let gone = app.delete(&format!("/v1/profiles/{forgotten}"), &app.admin).await;
    assert_eq!(gone.status, 200);
    let left = app.service.store().events(ws, &profiled_core::ProfileId(forgotten.into()), None, 10).await.unwrap();
    assert!(left.is_empty(), "forget erases events: {left:?}");
}
}

backend_test! {
#[tokio::test]
async fn write_only_keys_send_events_and_read_nothing() {
    let app = TestApp::start().await;
    let writer = app.key(Scope::Write).await;
    let sent = send(&app, &writer, json!([{"identities": {"user_id": "w1"}, "name": "view"}])).await;
    let id = sent["profiles"][0].as_str().unwrap();
    assert_problem(&app.get(&format!("/v1/profiles/{id}/events"), &writer).await, 403);
    assert_problem(&app.get("/v1/computed", &writer).await, 403);
    // Another workspace sees none of it.
    let (_, other_key) = app.service.create_workspace("other").await.unwrap();
    let other_key = other_key.token.0;
    assert_problem(&app.get(&format!("/v1/profiles/{id}/events"), &other_key).await, 404);
}
}

/// A small GeoIP2-City-shaped database: 203.0.113.0/24 is Berlin, 127.0.0.0/8 is Antarctica.
pub(crate) fn geoip_database(dir: &std::path::Path) -> std::path::PathBuf {
    use maxminddb_writer::Database;
    use maxminddb_writer::paths::IpAddrWithMask;
    let mut db = Database::default();
    db.metadata.database_type = "GeoIP2-City".into();
    db.metadata.languages = vec!["en".into()];
    db.metadata.binary_format_major_version = 2;
    let berlin = db
        .insert_value(json!({
            "country": {"iso_code": "DE", "names": {"en": "Germany"}},
            "subdivisions": [{"iso_code": "BE", "names": {"en": "Land Berlin"}}],
            "city": {"names": {"en": "Berlin"}},
            "postal": {"code": "10115"},
            "location": {"latitude": 52.52, "longitude": 13.405, "time_zone": "Europe/Berlin"},
        }))
        .unwrap();
    db.insert_node("203.0.113.0/24".parse::<IpAddrWithMask>().unwrap(), berlin);
    let local = db
        .insert_value(json!({"country": {"iso_code": "AQ", "names": {"en": "Antarctica"}}}))
        .unwrap();
    db.insert_node("127.0.0.0/8".parse::<IpAddrWithMask>().unwrap(), local);
    let path = dir.join("test-city.mmdb");
    db.write_to(std::fs::File::create(&path).unwrap()).unwrap();
    path
}

backend_test! {
#[tokio::test]
async fn the_newest_event_locates_the_profile_and_names_its_device() {
    let files = tempfile::tempdir().unwrap();
    let app = TestApp::start_setup(Setup {
        geoip: Some(geoip_database(files.path())),
        ..Setup::default()
    })
    .await;
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    let sent = send(&app, &app.admin, json!([
        {"identities": {"user_id": "g1"}, "name": "view", "timestamp": ago(5), "context": {"ip": "203.0.113.9", "user_agent": iphone}},
        // Older: neither its place nor its device replaces the newest event's.
        {"identities": {"user_id": "g1"}, "name": "view", "timestamp": ago(50), "context": {"ip": "127.0.0.1", "user_agent": "Googlebot/2.1"}},
    ])).await;
    let p = profile(&app, &sent["profiles"][0]).await;
    assert_eq!(p["location"], json!({
        "country": "DE", "country_name": "Germany", "region": "Land Berlin", "region_code": "BE",
        "city": "Berlin", "postal_code": "10115", "latitude": 52.52, "longitude": 13.405,
        "time_zone": "Europe/Berlin",
    }));
    assert_eq!(p["device"]["type"], "mobile");
    assert_eq!(p["device"]["bot"], false);
    let found = app.get("/v1/profiles?filter=location.country%20%3D%20%22DE%22%20and%20device.type%20%3D%20%22mobile%22", &app.admin).await;
    assert_eq!(found.body["profiles"].as_array().unwrap().len(), 1, "{}", found.body);

    // Asked to, the request's own address locates events that carry none.
    let sent = send(&app, &app.admin, json!([{"identities": {"user_id": "g2"}, "name": "view"}])).await;
    assert_eq!(profile(&app, &sent["profiles"][0]).await["location"], json!({}));
    let reply = app.post("/v1/events?use_request_ip=true", &app.admin, json!({"events": [{"identities": {"user_id": "g2"}, "name": "view"}]})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(profile(&app, &sent["profiles"][0]).await["location"]["country"], "AQ");
}
}

backend_test! {
#[tokio::test]
async fn an_event_that_merges_within_its_batch_takes_the_earlier_events_along() {
    let app = TestApp::start().await;
    let known = app.post("/v1/profiles", &app.admin, json!({"identities": {"user_id": "u7"}})).await;
    assert_eq!(known.status, 201);
    let sent = send(&app, &app.admin, json!([
        {"identities": {"anonymous_id": "a7"}, "name": "view", "timestamp": ago(20)},
        {"identities": {"anonymous_id": "a7", "user_id": "u7"}, "name": "signup", "timestamp": ago(10)},
    ])).await;
    assert_eq!(sent["profiles"], json!([known.body["id"], known.body["id"]]), "both events end on the survivor");
    let events = app.get(&format!("/v1/profiles/{}/events", known.body["id"].as_str().unwrap()), &app.admin).await;
    let names: Vec<&str> = events.body["events"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["signup", "view"]);
    let p = profile(&app, &known.body["id"]).await;
    assert_eq!(p["computed"]["event_counts"], json!({"view": 1, "signup": 1}));
}
}
