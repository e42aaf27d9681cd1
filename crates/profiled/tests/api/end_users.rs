//! End users and their own profile: sessions opened by the backend, the cookie with CSRF and
//! origin checks, writable and hidden properties, revocation and expiry.

use profiled_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Reply, TestApp, assert_problem};

struct Session {
    id: String,
    token: String,
    csrf: String,
    profile_id: String,
}

async fn open(app: &TestApp, user: &str, ttl: Option<i64>) -> Session {
    let mut body = json!({"identity": {"user_id": user}});
    if let Some(ttl) = ttl {
        body["ttl"] = json!(ttl);
    }
    let reply = app.post("/v1/sessions", &app.admin, body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let cookie = reply.header("set-cookie").unwrap().to_owned();
    let token = reply.body["token"].as_str().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("profiled_session={token};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    Session {
        id: reply.body["id"].as_str().unwrap().to_owned(),
        token,
        csrf: reply.body["csrf_token"].as_str().unwrap().to_owned(),
        profile_id: reply.body["profile_id"].as_str().unwrap().to_owned(),
    }
}

/// A request as a browser sends it: the session in the cookie, and the given headers.
async fn browser(
    app: &TestApp,
    method: Method,
    session: &Session,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}/v1/me", app.base))
        .header(
            "cookie",
            format!("theme=dark; profiled_session={}", session.token),
        );
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    TestApp::read(request.send().await.unwrap()).await
}

async fn bearer(app: &TestApp, method: Method, token: &str, body: Option<Value>) -> Reply {
    app.call(method, "/v1/me", Some(token), body).await
}

async fn configure(app: &TestApp) {
    let reply = app
        .call(
            Method::PUT,
            "/v1/workspace/end-users",
            Some(&app.admin),
            Some(json!({"writable": ["name", "prefs"], "hidden": ["internal"], "allowed_origins": ["https://app.example.com"]})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

backend_test! {
#[tokio::test]
async fn an_end_user_reads_and_edits_only_their_own_visible_writable_properties() {
    let app = TestApp::start().await;
    configure(&app).await;
    app.upsert(&app.admin, json!({"identities": {"user_id": "u1"}, "set": {"name": "Ada", "plan": "pro", "internal": {"score": 7}}})).await;
    app.upsert(&app.admin, json!({"identities": {"user_id": "u2"}, "set": {"name": "Bo"}})).await;
    let s = open(&app, "u1", None).await;

    let me = bearer(&app, Method::GET, &s.token, None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["id"], s.profile_id.as_str());
    assert_eq!(me.body["properties"], json!({"name": "Ada", "plan": "pro"}));

    // Writable paths change; read-only and hidden ones are refused, naming each.
    let ok = bearer(&app, Method::PATCH, &s.token, Some(json!({"set": {"name": "Ada L.", "prefs": {"theme": "dark"}}}))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["properties"], json!({"name": "Ada L.", "plan": "pro", "prefs": {"theme": "dark"}}));
    let refused = bearer(&app, Method::PATCH, &s.token, Some(json!({"set": {"plan": "enterprise", "internal": 0, "name": "X"}}))).await;
    assert_problem(&refused, 403);
    assert_eq!(refused.violation_pointers(), ["/properties/internal", "/properties/plan"]);
    // A replacement keeps what the end user cannot see, and may not drop what they cannot change.
    let replaced = bearer(&app, Method::PUT, &s.token, Some(json!({"name": "Ada", "plan": "pro"}))).await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_problem(&bearer(&app, Method::PUT, &s.token, Some(json!({"name": "Ada"}))).await, 403);
    let stored = app.get("/v1/profiles/by/user_id/u1", &app.admin).await;
    assert_eq!(stored.body["properties"], json!({"name": "Ada", "plan": "pro", "internal": {"score": 7}}));
    let history = app.get(&format!("/v1/profiles/{}/history", s.profile_id), &app.admin).await;
    assert_eq!(history.body["changes"][0]["actor"], format!("session:{}", s.id));

    // The session reaches no other profile and no key-protected route.
    assert_problem(&app.get("/v1/profiles/by/user_id/u2", &s.token).await, 401);
    assert_problem(&app.get(&format!("/v1/profiles/{}", s.profile_id), &s.token).await, 401);
    assert_problem(&app.get("/v1/keys", &s.token).await, 401);
    assert_problem(&bearer(&app, Method::GET, &app.admin, None).await, 401);
}
}

backend_test! {
#[tokio::test]
async fn cookie_writes_need_the_csrf_token_and_a_trusted_origin() {
    let app = TestApp::start().await;
    configure(&app).await;
    let s = open(&app, "u1", None).await;
    let change = || Some(json!({"set": {"name": "Z"}}));
    let host = app.base.trim_start_matches("http://").to_owned();
    let own = format!("http://{host}");

    // Reading by cookie needs nothing more.
    assert_eq!(browser(&app, Method::GET, &s, &[], None).await.status, 200);
    // Writing needs the CSRF token...
    assert_problem(&browser(&app, Method::PATCH, &s, &[], change()).await, 403);
    assert_problem(&browser(&app, Method::PATCH, &s, &[("x-csrf-token", "wrong")], change()).await, 403);
    // ...and, when the browser names one, an origin that is ours or allowed.
    let evil = [("x-csrf-token", s.csrf.as_str()), ("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    assert_problem(&browser(&app, Method::PATCH, &s, &evil, change()).await, 403);
    let sneaky = [("x-csrf-token", s.csrf.as_str()), ("sec-fetch-site", "cross-site")];
    assert_problem(&browser(&app, Method::PATCH, &s, &sneaky, change()).await, 403);
    let same = [("x-csrf-token", s.csrf.as_str()), ("origin", own.as_str()), ("sec-fetch-site", "same-origin")];
    assert_eq!(browser(&app, Method::PATCH, &s, &same, change()).await.status, 200);
    let allowed = [("x-csrf-token", s.csrf.as_str()), ("origin", "https://app.example.com"), ("sec-fetch-site", "cross-site")];
    assert_eq!(browser(&app, Method::PATCH, &s, &allowed, change()).await.status, 200);
    // A server-side proxy sends neither header.
    let proxy = [("x-csrf-token", s.csrf.as_str())];
    assert_eq!(browser(&app, Method::PUT, &s, &proxy, Some(json!({"name": "P"}))).await.status, 200);
    let stored = app.get("/v1/profiles/by/user_id/u1", &app.admin).await;
    assert_eq!(stored.body["properties"], json!({"name": "P"}));
}
}

backend_test! {
#[tokio::test]
async fn revoked_and_expired_sessions_stop_working() {
    let app = TestApp::start().await;
    let a = open(&app, "u1", None).await;
    let b = open(&app, "u1", None).await;
    let short = open(&app, "u2", Some(1)).await;
    assert_eq!(bearer(&app, Method::GET, &a.token, None).await.status, 200);
    assert_eq!(app.delete(&format!("/v1/sessions/{}", a.id), &app.admin).await.status, 204);
    assert_problem(&bearer(&app, Method::GET, &a.token, None).await, 401);
    assert_problem(&app.delete(&format!("/v1/sessions/{}", a.id), &app.admin).await, 404);
    assert_eq!(bearer(&app, Method::GET, &b.token, None).await.status, 200);
    let all = app.delete(&format!("/v1/profiles/{}/sessions", b.profile_id), &app.admin).await;
    assert_eq!(all.body["revoked"], 1);
    assert_problem(&bearer(&app, Method::GET, &b.token, None).await, 401);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_problem(&bearer(&app, Method::GET, &short.token, None).await, 401);
    // A forged token of the right shape authenticates nobody.
    let forged = format!("{}x", &b.token[..b.token.len() - 1]);
    assert_problem(&bearer(&app, Method::GET, &forged, None).await, 401);
}
}

#[tokio::test]
async fn sessions_are_opened_by_read_write_and_admin_keys_only() {
    let app = TestApp::start().await;
    for scope in [Scope::Write, Scope::Read] {
        let key = app.key(scope).await;
        assert_problem(
            &app.post("/v1/sessions", &key, json!({"identity": {"user_id": "u1"}}))
                .await,
            403,
        );
    }
    let rw = app.key(Scope::ReadWrite).await;
    assert_eq!(
        app.post("/v1/sessions", &rw, json!({"identity": {"user_id": "u1"}}))
            .await
            .status,
        201
    );
    assert_problem(
        &app.post(
            "/v1/sessions",
            &rw,
            json!({"identity": {"user_id": "u1", "email": "a@x.io"}}),
        )
        .await,
        422,
    );
    assert_problem(
        &app.post(
            "/v1/sessions",
            &rw,
            json!({"identity": {"user_id": "u1"}, "ttl": 0}),
        )
        .await,
        422,
    );
    assert_problem(
        &app.post(
            "/v1/sessions",
            &rw,
            json!({"identity": {"user_id": "u1"}, "ttl": 9_999_999}),
        )
        .await,
        422,
    );
    assert_problem(&app.get("/v1/me", &rw).await, 401);
    let bad = app
        .call(
            Method::PUT,
            "/v1/workspace/end-users",
            Some(&app.admin),
            Some(json!({"writable": ["a..b"], "allowed_origins": []})),
        )
        .await;
    assert_problem(&bad, 422);
    let origin = app
        .call(
            Method::PUT,
            "/v1/workspace/end-users",
            Some(&app.admin),
            Some(json!({"allowed_origins": ["app.example.com"]})),
        )
        .await;
    assert_problem(&origin, 422);
    assert_eq!(origin.violation_pointers(), ["/allowed_origins/0"]);
}

fn jwt(alg: jsonwebtoken::Algorithm, kid: Option<&str>, claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let key = match alg {
        jsonwebtoken::Algorithm::HS256 => {
            jsonwebtoken::EncodingKey::from_secret(b"a-shared-secret-of-at-least-32-bytes!")
        }
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("fixtures/idp-test-key.pem"))
            .unwrap(),
    };
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn in_secs(secs: i64) -> i64 {
    jiff::Timestamp::now().as_second() + secs
}

async fn exchange(app: &TestApp, token: &str) -> Reply {
    app.client
        .post(format!("{}/v1/sessions/exchange", app.base))
        .json(&json!({"workspace": "default", "token": token}))
        .send()
        .await
        .map(TestApp::read)
        .unwrap()
        .await
}

backend_test! {
#[tokio::test]
async fn jwts_of_the_workspaces_identity_provider_open_sessions() {
    let app = TestApp::start().await;
    let hs = jwt(jsonwebtoken::Algorithm::HS256, None, json!({"sub": "u1", "exp": in_secs(300), "iss": "https://idp.example.com"}));
    assert_problem(&exchange(&app, &hs).await, 401);

    let idp = json!({
        "hs256_secret": "a-shared-secret-of-at-least-32-bytes!",
        "jwks": serde_json::from_str::<Value>(include_str!("fixtures/idp-test-jwks.json")).unwrap(),
        "issuer": "https://idp.example.com",
        "audience": "profiled"
    });
    let set = app.call(Method::PUT, "/v1/workspace/identity-provider", Some(&app.admin), Some(idp)).await;
    assert_eq!(set.status, 204, "{}", set.body);
    let shown = app.get("/v1/workspace/identity-provider", &app.admin).await;
    assert_eq!(shown.body["hs256_secret"], "********");

    let claims = |sub: &str, exp: i64| json!({"sub": sub, "exp": exp, "iss": "https://idp.example.com", "aud": "profiled"});
    let opened = exchange(&app, &jwt(jsonwebtoken::Algorithm::HS256, None, claims("u1", in_secs(300)))).await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    assert!(opened.header("set-cookie").unwrap().starts_with("profiled_session="));
    let token = opened.body["token"].as_str().unwrap();
    let me = bearer(&app, Method::GET, token, None).await;
    assert_eq!(me.body["identities"], json!([{"kind": "user_id", "value": "u1"}]));
    let history = app.get(&format!("/v1/profiles/{}/history", me.body["id"].as_str().unwrap()), &app.admin).await;
    assert_eq!(history.body["changes"][0]["actor"], "jwt:https://idp.example.com");

    let rs = exchange(&app, &jwt(jsonwebtoken::Algorithm::RS256, Some("test-1"), claims("u2", in_secs(300)))).await;
    assert_eq!(rs.status, 201, "{}", rs.body);

    // Expired, wrong audience, wrong issuer, unknown key, a forged signature, no sub.
    let refused = [
        jwt(jsonwebtoken::Algorithm::HS256, None, claims("u1", in_secs(-120))),
        jwt(jsonwebtoken::Algorithm::HS256, None, json!({"sub": "u1", "exp": in_secs(300), "iss": "https://idp.example.com", "aud": "other"})),
        jwt(jsonwebtoken::Algorithm::HS256, None, json!({"sub": "u1", "exp": in_secs(300), "iss": "https://evil.example", "aud": "profiled"})),
        jwt(jsonwebtoken::Algorithm::RS256, Some("unknown"), claims("u1", in_secs(300))),
        format!("{}x", &jwt(jsonwebtoken::Algorithm::RS256, Some("test-1"), claims("u1", in_secs(300)))),
        jwt(jsonwebtoken::Algorithm::HS256, None, json!({"exp": in_secs(300), "iss": "https://idp.example.com", "aud": "profiled"})),
        "not a jwt".to_owned(),
    ];
    for token in refused {
        assert_problem(&exchange(&app, &token).await, 401);
    }

    let weak = app
        .call(Method::PUT, "/v1/workspace/identity-provider", Some(&app.admin), Some(json!({"hs256_secret": "short"})))
        .await;
    assert_problem(&weak, 422);
    assert_eq!(app.delete("/v1/workspace/identity-provider", &app.admin).await.status, 204);
    assert_problem(&exchange(&app, &jwt(jsonwebtoken::Algorithm::HS256, None, claims("u1", in_secs(300)))).await, 401);
}
}

async fn codes(app: &TestApp, profile_id: &str) -> Vec<Value> {
    let reply = app
        .get(
            &format!("/v1/dev/verification-codes?profile_id={profile_id}"),
            &app.admin,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["codes"].as_array().unwrap().clone()
}

async fn verified(app: &TestApp, token: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
    let mut request = app
        .client
        .patch(format!("{}/v1/me", app.base))
        .bearer_auth(token)
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    TestApp::read(request.send().await.unwrap()).await
}

backend_test! {
#[tokio::test]
async fn a_verified_property_changes_only_with_the_code_sent_to_the_new_value() {
    let app = TestApp::start_setup(crate::support::Setup {
        verification: Some(None),
        ..Default::default()
    })
    .await;
    let settings = json!({"writable": ["name", "phone"], "verified": ["phone"]});
    app.call(Method::PUT, "/v1/workspace/end-users", Some(&app.admin), Some(settings)).await;
    let s = open(&app, "u1", None).await;
    let change = json!({"set": {"phone": "+4915112345678", "name": "Ada"}});

    // The write waits, whole: 202, a code to the new number, nothing changed.
    let pending = verified(&app, &s.token, change.clone(), &[]).await;
    assert_eq!(pending.status, 202, "{}", pending.body);
    assert_eq!(pending.body["status"], "verification_sent");
    let sent = codes(&app, &s.profile_id).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["values"], json!({"phone": "+4915112345678"}));
    let code = sent[0]["code"].as_str().unwrap().to_owned();
    assert_eq!(bearer(&app, Method::GET, &s.token, None).await.body["properties"], json!({}));

    // A wrong code says so and changes nothing; another change is not this one's.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let reply = verified(&app, &s.token, change.clone(), &[("x-verification-code", wrong)]).await;
    assert_problem(&reply, 400);
    assert!(reply.body["detail"].as_str().unwrap().contains("wrong"), "{}", reply.body);
    let other = json!({"set": {"phone": "+4900000000", "name": "Ada"}});
    let reply = verified(&app, &s.token, other, &[("x-verification-code", code.as_str())]).await;
    assert_problem(&reply, 400);
    assert!(reply.body["detail"].as_str().unwrap().contains("no code was sent"), "{}", reply.body);

    // The right code applies it, once.
    let applied = verified(&app, &s.token, change.clone(), &[("x-verification-code", code.as_str())]).await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert_eq!(applied.body["properties"], json!({"phone": "+4915112345678", "name": "Ada"}));
    assert_problem(&verified(&app, &s.token, json!({"set": {"phone": "+1"}}), &[("x-verification-code", code.as_str())]).await, 400);

    // Other writable properties change at once.
    assert_eq!(verified(&app, &s.token, json!({"set": {"name": "Bo"}}), &[]).await.status, 200);

    // Five wrong tries use a code up; resend gives a new one.
    let next = json!({"set": {"phone": "+4917000000000"}});
    assert_eq!(verified(&app, &s.token, next.clone(), &[]).await.status, 202);
    let code = codes(&app, &s.profile_id).await[0]["code"].as_str().unwrap().to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert_problem(&verified(&app, &s.token, next.clone(), &[("x-verification-code", wrong)]).await, 400);
    }
    let used_up = verified(&app, &s.token, next.clone(), &[("x-verification-code", code.as_str())]).await;
    assert_problem(&used_up, 400);
    assert!(used_up.body["detail"].as_str().unwrap().contains("resend"), "{}", used_up.body);
    let resent = verified(&app, &s.token, next.clone(), &[("x-verification-resend", "true")]).await;
    assert_eq!(resent.status, 202);
    let fresh = codes(&app, &s.profile_id).await[0]["code"].as_str().unwrap().to_owned();
    assert_eq!(verified(&app, &s.token, next.clone(), &[("x-verification-code", fresh.as_str())]).await.status, 200);

    // At most five codes an hour per profile (three were sent so far).
    let third = json!({"set": {"phone": "+4917111111111"}});
    for _ in 0..2 {
        assert_eq!(verified(&app, &s.token, third.clone(), &[("x-verification-resend", "true")]).await.status, 202);
    }
    assert_problem(&verified(&app, &s.token, third, &[("x-verification-resend", "true")]).await, 429);
}
}

#[tokio::test]
async fn an_expired_code_is_refused_and_without_a_sender_verified_properties_stay() {
    let app = TestApp::start_setup(crate::support::Setup {
        verification: Some(None),
        code_ttl: Some(jiff::SignedDuration::from_secs(1)),
        ..Default::default()
    })
    .await;
    let settings = json!({"writable": ["phone"], "verified": ["phone"]});
    app.call(
        Method::PUT,
        "/v1/workspace/end-users",
        Some(&app.admin),
        Some(settings.clone()),
    )
    .await;
    let s = open(&app, "u1", None).await;
    let change = json!({"set": {"phone": "+4915112345678"}});
    assert_eq!(
        verified(&app, &s.token, change.clone(), &[]).await.status,
        202
    );
    let code = codes(&app, &s.profile_id).await[0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let expired = verified(
        &app,
        &s.token,
        change,
        &[("x-verification-code", code.as_str())],
    )
    .await;
    assert_problem(&expired, 400);
    assert!(
        expired.body["detail"].as_str().unwrap().contains("expired"),
        "{}",
        expired.body
    );

    let plain = TestApp::start().await;
    plain
        .call(
            Method::PUT,
            "/v1/workspace/end-users",
            Some(&plain.admin),
            Some(settings),
        )
        .await;
    let s = open(&plain, "u1", None).await;
    assert_problem(
        &verified(&plain, &s.token, json!({"set": {"phone": "+1"}}), &[]).await,
        503,
    );
    assert_problem(
        &plain.get("/v1/dev/verification-codes", &plain.admin).await,
        404,
    );
}

#[tokio::test]
async fn the_webhook_sender_posts_signed_codes() {
    use std::sync::{Arc, Mutex};
    /// The signature header and the body of each code posted.
    type Posted = Vec<(Option<String>, Value)>;
    let received: Arc<Mutex<Posted>> = Arc::default();
    let sink = received.clone();
    let hook = axum::Router::new().route(
        "/codes",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    let signature = headers
                        .get("x-profiled-signature")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    sink.lock().unwrap().push((signature, body));
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/codes", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });

    let app = TestApp::start_setup(crate::support::Setup {
        verification: Some(Some(url)),
        ..Default::default()
    })
    .await;
    app.call(
        Method::PUT,
        "/v1/workspace/end-users",
        Some(&app.admin),
        Some(json!({"writable": ["email"], "verified": ["email"]})),
    )
    .await;
    let s = open(&app, "u1", None).await;
    let reply = verified(
        &app,
        &s.token,
        json!({"set": {"email": "new@example.com"}}),
        &[],
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (signature, body) = &received[0];
    assert!(
        signature.as_deref().unwrap().starts_with("sha256="),
        "{signature:?}"
    );
    assert_eq!(signature.as_deref().unwrap().len(), "sha256=".len() + 64);
    assert_eq!(body["values"], json!({"email": "new@example.com"}));
    assert_eq!(body["profile_id"], s.profile_id.as_str());
    assert_eq!(body["code"].as_str().unwrap().len(), 6);
    // The development route does not exist with another sender.
    assert_problem(
        &app.get("/v1/dev/verification-codes", &app.admin).await,
        404,
    );
}
