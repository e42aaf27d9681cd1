//! Akinon's storefront profile API under `/compat/akinon`: sessions in `osessionid` or
//! `sessionid`, Django's CSRF double submit, DRF-shaped validation errors, the phone
//! verification flow and the loyalty service, with bodies checked against Akinon's OpenAPI
//! document.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Reply, Setup, TestApp};

/// A copy of `shared/reference/specs/akinon.local.openapi.json`.
const SPEC: &str = include_str!("fixtures/akinon.openapi.json");

fn assert_shape(body: &Value, schema: &str) {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let root =
        json!({"$ref": format!("#/components/schemas/{schema}"), "components": spec["components"]});
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap();
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?} in {body}");
}

/// A shopper: a profile with a session, and the CSRF token `/csrf_token/` issued for it.
struct Shopper {
    token: String,
    csrf: String,
    profile_id: String,
}

async fn shopper(app: &TestApp, user: &str) -> Shopper {
    let created = app
        .upsert(&app.admin, json!({"identities": {"user_id": user}, "set": {"email": format!("{user}@example.com"), "first_name": "Ada"}}))
        .await;
    assert!(created.status.is_success(), "{}", created.body);
    let session = app
        .post(
            "/v1/sessions",
            &app.admin,
            json!({"identity": {"user_id": user}}),
        )
        .await;
    assert_eq!(session.status, 201, "{}", session.body);
    let token = session.body["token"].as_str().unwrap().to_owned();
    let reply = raw(
        app,
        Method::GET,
        "/csrf_token/",
        &[("cookie", format!("osessionid={token}"))],
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let csrf = reply.body["csrf_token"].as_str().unwrap().to_owned();
    let cookie = reply.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("csrftoken={csrf};")),
        "{cookie}"
    );
    Shopper {
        token,
        csrf,
        profile_id: created.body["id"].as_str().unwrap().to_owned(),
    }
}

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}/compat/akinon{path}", app.base));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    TestApp::read(request.send().await.unwrap()).await
}

/// As the storefront's proxy forwards a browser's write: both cookies, `X-CSRFToken`, a
/// Referer and no Origin.
async fn write(app: &TestApp, s: &Shopper, method: Method, path: &str, body: Value) -> Reply {
    let headers = [
        (
            "cookie",
            format!("osessionid={}; csrftoken={}", s.token, s.csrf),
        ),
        ("x-csrftoken", s.csrf.clone()),
        (
            "referer",
            "https://shop.example.com/account/profile".to_owned(),
        ),
        ("x-requested-with", "XMLHttpRequest".to_owned()),
    ];
    raw(app, method, path, &headers, Some(body)).await
}

async fn read(app: &TestApp, s: &Shopper, path: &str) -> Reply {
    raw(
        app,
        Method::GET,
        path,
        &[("cookie", format!("osessionid={}", s.token))],
        None,
    )
    .await
}

async fn properties(app: &TestApp, s: &Shopper) -> Value {
    app.get(&format!("/v1/profiles/{}", s.profile_id), &app.admin)
        .await
        .body["properties"]
        .clone()
}

fn assert_detail(reply: &Reply, status: u16) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert!(reply.body["detail"].is_string(), "{}", reply.body);
}

backend_test! {
#[tokio::test]
async fn the_profile_reads_in_akinons_shape_from_either_session_cookie() {
    let app = TestApp::start().await;
    let s = shopper(&app, "u1").await;
    let reply = read(&app, &s, "/users/profile/").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_shape(&reply.body, "UserProfile");
    assert_eq!(reply.body["first_name"], "Ada");
    assert_eq!(reply.body["email"], "u1@example.com");
    assert_eq!(reply.body["genders"], json!(["male", "female"]));
    let id = reply.body["id"].as_u64().unwrap();
    let again = raw(&app, Method::GET, "/users/profile/", &[("cookie", format!("sessionid={}", s.token))], None).await;
    assert_eq!(again.body["id"].as_u64(), Some(id), "a stable integer id");
    let loyalty = read(&app, &s, "/users/profile-with-loyalty/").await;
    assert_shape(&loyalty.body, "UserProfileWithLoyalty");
    assert_eq!(loyalty.body["code"], Value::Null);

    assert_detail(&raw(&app, Method::GET, "/users/profile/", &[], None).await, 401);
    assert_detail(&raw(&app, Method::GET, "/users/profile/", &[("cookie", "osessionid=pss_forged_x".into())], None).await, 401);
    // API keys are not sessions.
    assert_detail(&raw(&app, Method::GET, "/users/profile/", &[("cookie", format!("osessionid={}", app.admin))], None).await, 401);
    assert_detail(&raw(&app, Method::DELETE, "/users/profile/", &[("cookie", format!("osessionid={}", s.token))], None).await, 405);
}
}

backend_test! {
#[tokio::test]
async fn writes_need_the_csrf_token_issued_for_the_session() {
    let app = TestApp::start().await;
    let s = shopper(&app, "u1").await;
    let other = shopper(&app, "u2").await;
    // The storefront's own PATCH, as @akinon/next sends it.
    let patch = json!({"first_name": "Grace", "last_name": "Hopper", "phone": "+905551112233",
        "date_of_birth": "1906-12-09", "gender": "female", "sms_allowed": true, "email_allowed": false});
    let ok = write(&app, &s, Method::PATCH, "/users/profile/", patch.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_shape(&ok.body, "UserProfile");
    assert_eq!(ok.body["last_name"], "Hopper");
    let stored = properties(&app, &s).await;
    for (field, value) in patch.as_object().unwrap() {
        assert_eq!(&stored[field], value, "{field} in {stored}");
    }

    let cookies = |csrf: &str| format!("osessionid={}; csrftoken={csrf}", s.token);
    let body = Some(json!({"first_name": "Mallory"}));
    let missing = raw(&app, Method::PATCH, "/users/profile/", &[("cookie", cookies(&s.csrf))], body.clone()).await;
    assert_detail(&missing, 403);
    assert!(missing.body["detail"].as_str().unwrap().starts_with("CSRF Failed"));
    let mismatch = raw(&app, Method::PATCH, "/users/profile/", &[("cookie", cookies(&s.csrf)), ("x-csrftoken", other.csrf.clone())], body.clone()).await;
    assert_detail(&mismatch, 403);
    // Another session's token, in both places, is still refused.
    let foreign = raw(&app, Method::PATCH, "/users/profile/", &[("cookie", cookies(&other.csrf)), ("x-csrftoken", other.csrf.clone())], body.clone()).await;
    assert_detail(&foreign, 403);
    let no_cookie = raw(&app, Method::PATCH, "/users/profile/", &[("cookie", format!("osessionid={}", s.token)), ("x-csrftoken", s.csrf.clone())], body.clone()).await;
    assert_detail(&no_cookie, 403);
    let hostile = raw(&app, Method::PATCH, "/users/profile/", &[("cookie", cookies(&s.csrf)), ("x-csrftoken", s.csrf.clone()), ("origin", "https://evil.example".into())], body.clone()).await;
    assert_detail(&hostile, 403);
    assert_eq!(properties(&app, &s).await["first_name"], "Grace", "nothing changed");
    assert_detail(&raw(&app, Method::PATCH, "/users/profile/", &[], body).await, 401);
}
}

backend_test! {
#[tokio::test]
async fn bad_input_is_a_drf_error_and_changes_nothing() {
    let app = TestApp::start().await;
    let s = shopper(&app, "u1").await;
    let set = app.call(Method::PUT, "/v1/workspace/compat/akinon", Some(&app.admin),
        Some(json!({"required_fields": ["first_name", "last_name", "phone"]}))).await;
    assert_eq!(set.status, 200, "{}", set.body);
    let before = properties(&app, &s).await;

    let missing = write(&app, &s, Method::PUT, "/users/profile/", json!({"first_name": "A", "last_name": "B", "id": 5, "date_joined": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert_eq!(missing.body, json!({"phone": ["This field is required."]}));
    let bad_email = write(&app, &s, Method::PATCH, "/users/profile/", json!({"email": "not-an-email"})).await;
    assert_eq!(bad_email.body, json!({"email": ["Enter a valid email address."]}));
    let long = write(&app, &s, Method::PATCH, "/users/profile/", json!({"first_name": "x".repeat(51), "gender": "other"})).await;
    assert_eq!(long.status, 400);
    assert_eq!(long.body["first_name"], json!(["Ensure this field has no more than 50 characters."]));
    assert_eq!(long.body["gender"], json!(["\"other\" is not a valid choice."]));
    let not_object = write(&app, &s, Method::PATCH, "/users/profile/", json!(["x"])).await;
    assert!(not_object.body["non_field_errors"].is_array(), "{}", not_object.body);
    assert_eq!(properties(&app, &s).await, before);

    // The workspace's schema speaks DRF too.
    app.call(Method::PUT, "/v1/workspace/schema", Some(&app.admin),
        Some(json!({"schema": {"type": "object", "properties": {"language_code": {"enum": ["en", "tr"]}}}}))).await;
    let refused = write(&app, &s, Method::PATCH, "/users/profile/", json!({"language_code": "xx"})).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body["language_code"].is_array(), "{}", refused.body);

    let full = write(&app, &s, Method::PUT, "/users/profile/", json!({"first_name": "A", "last_name": "B", "phone": null, "id": 5})).await;
    assert_eq!(full.status, 200, "{}", full.body);
    assert_ne!(full.body["id"], 5, "read-only fields are ignored");
    assert_eq!(full.body["phone"], Value::Null);

    let bad = app.call(Method::PUT, "/v1/workspace/compat/akinon", Some(&app.admin), Some(json!({"required_fields": ["shoe_size"]}))).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
}
}

/// The signature header and the body of each delivery.
type Deliveries = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A loyalty service that fails its first delivery, and records every one.
async fn loyalty_service() -> (String, Deliveries) {
    let received: Deliveries = Arc::default();
    let sink = received.clone();
    let hook = axum::Router::new().route(
        "/changes",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let signature = headers
                        .get("x-profiled-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let mut all = sink.lock().unwrap();
                    all.push((signature, body.to_vec()));
                    if all.len() == 1 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::NO_CONTENT
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/changes", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });
    (url, received)
}

fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

async fn code_for(app: &TestApp, profile_id: &str) -> String {
    let codes = app
        .get(
            &format!("/v1/dev/verification-codes?profile_id={profile_id}"),
            &app.admin,
        )
        .await;
    // Newest first.
    codes.body["codes"][0]["code"].as_str().unwrap().to_owned()
}

backend_test! {
#[tokio::test]
async fn a_phone_change_with_loyalty_waits_for_its_code_and_then_reaches_the_loyalty_service() {
    let app = TestApp::start_setup(Setup { verification: Some(None), ..Default::default() }).await;
    let (url, received) = loyalty_service().await;
    let secret = "loyalty-secret-0123456789";
    let set = app.call(Method::PUT, "/v1/workspace/compat/akinon", Some(&app.admin),
        Some(json!({"loyalty_service": {"url": url, "secret": secret}}))).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["loyalty_service"]["secret"], "********");
    let s = shopper(&app, "u1").await;
    let path = "/users/profile-with-loyalty/";

    let sent = write(&app, &s, Method::PATCH, path, json!({"phone": "+905550000001", "first_name": "Ada"})).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert!(properties(&app, &s).await.get("phone").is_none(), "nothing changed yet");
    let first = code_for(&app, &s.profile_id).await;
    assert_eq!(first.len(), 6);
    let wrong = write(&app, &s, Method::PATCH, path, json!({"phone": "+905550000001", "first_name": "Ada", "code": "000000x"})).await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.body["code"][0].is_string(), "{}", wrong.body);
    let resent = write(&app, &s, Method::PATCH, path, json!({"phone": "+905550000001", "first_name": "Ada", "resend": true})).await;
    assert_eq!(resent.status, 202, "{}", resent.body);
    let second = code_for(&app, &s.profile_id).await;
    let applied = write(&app, &s, Method::PATCH, path, json!({"phone": "+905550000001", "first_name": "Ada", "code": second})).await;
    assert_eq!(applied.status, 200, "{} (first code {first})", applied.body);
    assert_shape(&applied.body, "UserProfileWithLoyalty");
    assert_eq!(applied.body["phone"], "+905550000001");
    assert_eq!(properties(&app, &s).await["phone"], "+905550000001");

    // The loyalty service hears of it, signed, after one failed try.
    let mut deliveries = Vec::new();
    for _ in 0..100 {
        deliveries = received.lock().unwrap().clone();
        if deliveries.len() >= 2 { break; }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(deliveries.len(), 2, "one failure, then the retry");
    let (signature, body) = &deliveries[1];
    assert_eq!(signature, &format!("sha256={}", hmac_hex(secret.as_bytes(), body)));
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["changed"], json!(["phone"]));
    assert_eq!(payload["profile"]["phone"], "+905550000001");

    // The plain route applies a phone change at once, as Akinon does.
    let direct = write(&app, &s, Method::PATCH, "/users/profile/", json!({"phone": "+905550000002"})).await;
    assert_eq!(direct.status, 200, "{}", direct.body);
    assert_eq!(properties(&app, &s).await["phone"], "+905550000002");
    // And a workspace can turn verification off.
    app.call(Method::PUT, "/v1/workspace/compat/akinon", Some(&app.admin),
        Some(json!({"verify_phone": false, "loyalty_service": {"url": url, "secret": "********"}}))).await;
    let unverified = write(&app, &s, Method::PUT, path, json!({"phone": "+905550000003"})).await;
    assert_eq!(unverified.status, 200, "{}", unverified.body);
    let kept = app.get("/v1/workspace/compat/akinon", &app.admin).await;
    assert_eq!(kept.body["verify_phone"], false);
    assert_eq!(kept.body["loyalty_service"]["secret"], "********");
}
}
