//! Request extractors of the native API: JSON bodies, the calling API key, `If-Match`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use profiled_core::error::pointer_token;
use profiled_core::{Scope, WorkspaceId};
use serde::de::DeserializeOwned;

use super::AppState;
use super::problem::ApiError;
use crate::service::{Change, Precondition, WriteContext};

/// A JSON body, parsed in two steps so that broken JSON (400) and JSON of the wrong shape
/// (422 with the JSON pointer of the offending value) get distinct, clear answers.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !content_type_is(req.headers(), "application/json") {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The body of `PATCH /v1/profiles/{id}`: a merge patch or operations, by content type.
pub struct PatchBody(pub Change);

impl FromRequest<AppState> for PatchBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if content_type_is(req.headers(), "application/merge-patch+json") {
            let bytes = read_body(req, state).await?;
            let patch: serde_json::Value = parse_json(&bytes)?;
            if !patch.is_object() {
                return Err(ApiError::invalid(
                    "",
                    "a merge patch of properties must be a JSON object",
                ));
            }
            Ok(PatchBody(Change::MergePatch(patch)))
        } else if content_type_is(req.headers(), "application/json") {
            let bytes = read_body(req, state).await?;
            Ok(PatchBody(Change::Ops(parse_json(&bytes)?)))
        } else {
            Err(ApiError::UnsupportedMediaType(
                "send `application/merge-patch+json` (RFC 7396) or `application/json` (operations)"
                    .into(),
            ))
        }
    }
}

pub(crate) fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(expected))
}

pub(crate) async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge(state.service.limits().max_body_bytes)
        } else {
            ApiError::MalformedBody(format!("the body could not be read: {rejection}"))
        }
    })
}

/// Deserialises a whole body, straight from its bytes (through a `Value` first, every body
/// was built twice: docs/benchmarks.md, session 15). Bytes that are not JSON are a
/// malformed body; JSON of the wrong shape is invalid at the pointer where it goes wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed =
        |e: serde_json::Error| ApiError::MalformedBody(format!("the body is not valid JSON: {e}"));
    // Tracking the path costs a third of a parse, so only a body that fails is read again:
    // first whether it is JSON at all, then where it goes wrong.
    let first = match serde_json::from_slice(bytes) {
        Ok(value) => return Ok(value),
        Err(e) if !e.is_data() => return Err(malformed(e)),
        Err(e) => e,
    };
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(malformed)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        // Not expected: the same bytes failed without the tracking.
        Ok(_) => Err(ApiError::invalid("", first.to_string())),
        Err(e) if !e.inner().is_data() => Err(malformed(e.into_inner())),
        Err(e) => {
            // The error's place in the text says less than its pointer, which it gets.
            let inner = e.inner();
            let message = inner.to_string();
            let suffix = format!(" at line {} column {}", inner.line(), inner.column());
            let message = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
            Err(ApiError::invalid(&pointer_of(e.path()), message))
        }
    }
}

/// Deserialises a part of a body; errors point at `base` plus the path inside the part.
pub fn from_value_at<T: DeserializeOwned>(
    value: serde_json::Value,
    base: &str,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        ApiError::invalid(
            &format!("{base}{}", pointer_of(e.path())),
            e.inner().to_string(),
        )
    })
}

/// A serde path as a JSON pointer.
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    path.iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
            serde_path_to_error::Segment::Map { key } => Some(format!("/{}", pointer_token(key))),
            serde_path_to_error::Segment::Enum { variant } => {
                Some(format!("/{}", pointer_token(variant)))
            }
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}

/// The API key a request carries, authenticated. Handlers reach the workspace only through
/// a scope check ([`Caller::read`], [`Caller::write`], [`Caller::admin`]), so no route can
/// forget one.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    workspace: WorkspaceId,
    pub scope: Scope,
}

impl Caller {
    pub fn read(&self) -> Result<WorkspaceId, ApiError> {
        self.require(
            self.scope.can_read(),
            "read",
            "`read`, `read_write` or `admin`",
        )
    }

    pub fn write(&self) -> Result<WorkspaceId, ApiError> {
        self.require(
            self.scope.can_write(),
            "write",
            "`write`, `read_write` or `admin`",
        )
    }

    pub fn admin(&self) -> Result<WorkspaceId, ApiError> {
        self.require(self.scope.can_admin(), "manage the workspace", "`admin`")
    }

    fn require(&self, allowed: bool, action: &str, scopes: &str) -> Result<WorkspaceId, ApiError> {
        if allowed {
            Ok(self.workspace)
        } else {
            Err(ApiError::Forbidden(format!(
                "this key has scope `{}`, which cannot {action}; use a key with scope {scopes}",
                self.scope
            )))
        }
    }
}

impl Caller {
    /// The caller an authenticated key stands for.
    pub fn from_key(key: profiled_store::ApiKeyRecord) -> Self {
        Caller {
            key_id: key.id,
            workspace: key.workspace_id,
            scope: key.scope,
        }
    }

    /// Whether the key belongs to this workspace (a vendor path names one).
    pub fn belongs_to(&self, workspace: WorkspaceId) -> bool {
        self.workspace == workspace
    }

    /// The context a write of this caller is logged with.
    pub fn context(&self, origin: OriginTag) -> WriteContext {
        WriteContext {
            actor: format!("key:{}", self.key_id),
            origin: origin.0,
        }
    }
}

/// `Profiled-Origin`: a tag of the client's choosing recorded with every change the request
/// makes, so that a consumer of the change feed can recognise (and skip) its own writes.
pub struct OriginTag(pub Option<String>);

pub const ORIGIN_HEADER: &str = "profiled-origin";

impl<S: Send + Sync> FromRequestParts<S> for OriginTag {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(ORIGIN_HEADER) else {
            return Ok(OriginTag(None));
        };
        match value.to_str() {
            Ok(tag) if !tag.is_empty() && tag.len() <= 200 => Ok(OriginTag(Some(tag.to_owned()))),
            _ => Err(ApiError::invalid(
                "/headers/Profiled-Origin",
                "an origin tag is 1 to 200 visible ASCII characters",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized(
            "send an API key as `Authorization: Bearer <key>`",
        ))?;
        let key = state
            .service
            .authenticate(token)
            .await?
            .ok_or(ApiError::Unauthorized(
                "the API key is not valid: unknown, revoked or mistyped",
            ))?;
        Ok(Caller::from_key(key))
    }
}

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `If-Match`, as a precondition on the profile's version (its ETag is `"<version>"`).
pub struct IfMatch(pub Option<Precondition>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::MalformedBody("If-Match is not valid text".into()))?;
        Ok(IfMatch(Some(parse_if_match(value))))
    }
}

/// Entity tags that are not one of ours match nothing, so the write fails with 412.
fn parse_if_match(value: &str) -> Precondition {
    if value.trim() == "*" {
        return Precondition::Any;
    }
    let versions = value
        .split(',')
        .filter_map(|tag| {
            let tag = tag.trim();
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
        })
        .collect();
    Precondition::Versions(versions)
}

/// The address of the client the connection came from, when the server knows it (it runs
/// with connection info; a proxy in front should pass the end user's address in the event
/// context instead).
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_star_lists_and_weak_tags() {
        assert_eq!(parse_if_match("*"), Precondition::Any);
        assert_eq!(
            parse_if_match("\"3\", W/\"4\""),
            Precondition::Versions(vec![3, 4])
        );
        assert_eq!(parse_if_match("\"abc\""), Precondition::Versions(vec![]));
    }

    #[test]
    fn wrong_shapes_point_at_the_offending_value() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            items: Vec<Inner>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            n: i64,
        }
        match parse_json::<Body>(br#"{"items": [{"n": 1}, {"n": "x"}]}"#) {
            Err(ApiError::Invalid(v)) => assert_eq!(v[0].pointer, "/items/1/n"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse_json::<Body>(b"{"),
            Err(ApiError::MalformedBody(_))
        ));
    }
}
