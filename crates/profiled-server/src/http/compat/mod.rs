//! Vendors' API shapes, each under `/compat/<vendor>`, so their clients work unchanged. Each
//! dialect maps its requests onto the same use-cases as the native API (and so the same
//! rules: scopes, validation, segments) and answers in the vendor's own shapes, errors
//! included.

pub mod akinon;
pub mod chameleon;
pub mod inkeep;
pub mod mediarithmics;
pub mod userflux;

use axum::http::header;
use axum::response::Response;

/// An error the framework answered itself (a wrong method, an unreadable path, a body over
/// the limit), not yet in a dialect's JSON shape.
pub(crate) fn is_framework_error(response: &Response) -> bool {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    (status.is_client_error() || status.is_server_error()) && !is_json
}
