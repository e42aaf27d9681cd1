//! Acknowledged writes survive a restart.

use serde_json::json;

use crate::support::TestApp;

backend_test! {
#[tokio::test]
async fn a_restart_finds_every_acknowledged_write() {
    let app = TestApp::start().await;
    let mut expected = Vec::new();
    for i in 0..25 {
        let reply = app
            .upsert(&app.admin, json!({"identities": {"user_id": format!("u{i}")}, "set": {"i": i, "nested": {"deep": [i]}}}))
            .await;
        assert_eq!(reply.status, 201);
        expected.push(reply.body);
    }
    let id0 = expected[0]["id"].as_str().unwrap().to_owned();
    let patched = app
        .post(
            &format!("/v1/profiles/{id0}/identities"),
            &app.admin,
            json!({"identities": {"email": "zero@example.com"}}),
        )
        .await;
    expected[0] = patched.body;

    let app = app.restart().await;
    for profile in &expected {
        let id = profile["id"].as_str().unwrap();
        let reply = app.get(&format!("/v1/profiles/{id}"), &app.admin).await;
        assert_eq!(&reply.body, profile);
    }
    assert_eq!(
        app.get("/v1/profiles/by/email/zero@example.com", &app.admin)
            .await
            .body["id"],
        id0.as_str()
    );
}
}
