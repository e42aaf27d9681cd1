//! The OpenAPI document, the docs page and the health check.

use crate::support::TestApp;
use reqwest::Method;

#[tokio::test]
async fn openapi_is_served_and_describes_every_route() {
    let app = TestApp::start().await;
    let doc = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    for path in [
        "/v1/profiles",
        "/v1/profiles/{id}",
        "/v1/profiles/by/{kind}/{value}",
        "/v1/profiles/{id}/properties",
        "/v1/profiles/{id}/identities",
        "/v1/profiles/{id}/identities/{kind}/{value}",
        "/v1/workspaces",
        "/v1/workspace",
        "/v1/keys",
        "/v1/keys/{id}",
        "/healthz",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} is missing from the OpenAPI document"
        );
    }
    assert!(doc.body["components"]["securitySchemes"]["api_key"].is_object());
}

#[tokio::test]
async fn the_committed_openapi_document_matches_the_code() {
    let generated = profiled_server::openapi().to_pretty_json().unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p profiled --test api docs::` and commit it"
    );
}

#[tokio::test]
async fn the_docs_page_and_health_check_answer_without_a_key() {
    let app = TestApp::start().await;
    let page = app.call(Method::GET, "/docs/", None, None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.as_str().unwrap_or_default().contains("swagger"),
        "not the docs page"
    );
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "ok");
    assert_eq!(health.body["backend"], "sqlite");
}
