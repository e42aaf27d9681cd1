//! End users' authentication: a session token as `Authorization: Bearer` or in the session
//! cookie, with CSRF and origin checks on cookie-authenticated writes.
//!
//! A cookie goes along with every request the browser makes, including ones a hostile page
//! triggers, so a write authenticated by the cookie must also carry the session's CSRF token
//! (`X-CSRF-Token`, which another site cannot read), and when the browser says where the
//! request comes from (`Origin`, `Sec-Fetch-Site`), that must be profiled's own origin or one
//! the workspace allows. Server-side callers send neither header and keep working; a bearer
//! token is never sent by the browser on its own, so it needs neither check.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};

use crate::http::AppState;
use crate::http::extract::bearer_token;
use crate::http::problem::ApiError;
use crate::service::sessions::{EndUser, is_session_token};

pub const CSRF_HEADER: &str = "x-csrf-token";

/// The end user a request is authenticated as.
pub struct Me(pub EndUser);

/// The value of a cookie, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// Whether the request reached profiled over TLS (directly, or as a proxy in front says).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that hands a session to a browser.
pub fn session_cookie(name: &str, token: &str, max_age_secs: i64, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("tokens and cookie names are header-safe")
}

/// profiled's own origin for this request: scheme and `Host`.
fn own_origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = if over_tls(headers) { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// The checks a cookie-authenticated write must pass; `allowed` are the workspace's other
/// origins.
fn check_cookie_write(
    headers: &HeaderMap,
    user: &EndUser,
    allowed: &[String],
) -> Result<(), ApiError> {
    let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !csrf.is_some_and(|token| user.csrf_matches(token)) {
        return Err(ApiError::Forbidden(
            "a write authenticated by the session cookie needs the session's CSRF token in `X-CSRF-Token`".into(),
        ));
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let origin_ok = |origin: &str| {
        own_origin(headers).as_deref() == Some(origin) || allowed.iter().any(|a| a == origin)
    };
    if let Some(origin) = origin
        && !origin_ok(origin)
    {
        return Err(ApiError::Forbidden(format!(
            "requests from `{origin}` may not write with the session cookie; the workspace allows its own origin and `allowed_origins`"
        )));
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    match site {
        None | Some("same-origin") | Some("none") => Ok(()),
        // Another site's page: only with an Origin the workspace allows (checked above).
        Some(_) if origin.is_some() => Ok(()),
        Some(site) => Err(ApiError::Forbidden(format!(
            "a `{site}` request may not write with the session cookie"
        ))),
    }
}

impl FromRequestParts<AppState> for Me {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let cookie_name = &state.service.session_settings().cookie_name;
        let (token, by_cookie) = match bearer_token(&parts.headers) {
            Some(token) if is_session_token(token) => (token, false),
            Some(_) => {
                return Err(ApiError::Unauthorized(
                    "this route is for end users: send a session token, not an API key",
                ));
            }
            None => match cookie(&parts.headers, cookie_name) {
                Some(token) => (token, true),
                None => {
                    return Err(ApiError::Unauthorized(
                        "send the session as the session cookie or `Authorization: Bearer <token>`",
                    ));
                }
            },
        };
        let user =
            state
                .service
                .authenticate_session(token)
                .await?
                .ok_or(ApiError::Unauthorized(
                    "the session is not valid: unknown, expired or revoked",
                ))?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if by_cookie && !safe {
            let settings = state.service.end_user_settings(user.workspace).await?;
            check_cookie_write(&parts.headers, &user, &settings.allowed_origins)?;
        }
        Ok(Me(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; profiled_session=pss_abc; x=\"1\""),
        );
        assert_eq!(cookie(&headers, "profiled_session"), Some("pss_abc"));
        assert_eq!(cookie(&headers, "x"), Some("1"));
        assert_eq!(cookie(&headers, "session"), None);
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_over_tls() {
        let plain = session_cookie("s", "t", 60, false);
        assert_eq!(plain, "s=t; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
        assert!(
            session_cookie("s", "t", 60, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }
}
