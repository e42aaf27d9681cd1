//! The HTTP edge: the native API under `/v1`, `/openapi.json`, `/docs`, `/healthz`.

pub mod compat;
pub mod end_user;
pub mod extract;
mod health;
pub mod problem;
pub mod v1;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::service::Service;
use problem::Problem;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "profiled",
        description = "A self-hosted user profile service: profiles of your end users, their identities and properties, behind one API.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "profiles", description = "Profiles, their properties and identities"),
        (name = "search", description = "Search and count with the filter language; declared indexes"),
        (name = "events", description = "Events, and the computed properties they add up to"),
        (name = "segments", description = "Named filters whose members are kept current"),
        (name = "companies", description = "Accounts profiles belong to"),
        (name = "sessions", description = "End users' sessions, opened by the product's backend"),
        (name = "end users", description = "The end user's own profile, through their session"),
        (name = "changes", description = "The change log: profile history and the workspace's change feed"),
        (name = "imports", description = "Bulk upserts and deletes from NDJSON or CSV, as jobs"),
        (name = "deletions", description = "Forgetting people: deletion receipts, bulk erasure"),
        (name = "workspaces", description = "Tenants"),
        (name = "keys", description = "API keys of a workspace"),
        (name = "health", description = "Liveness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // An end user's session token, as a bearer token or (in a browser) the session
        // cookie; see `/v1/sessions`.
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(v1::profiles::upsert, v1::search::list))
        .routes(routes!(v1::search::search))
        .routes(routes!(v1::changes::history))
        .routes(routes!(v1::merges::merge))
        .routes(routes!(v1::merges::list))
        .routes(routes!(v1::merges::undo))
        .routes(routes!(v1::changes::feed))
        .routes(routes!(v1::search::count))
        .routes(routes!(v1::exports::export))
        .routes(routes!(v1::imports::list, v1::imports::import))
        .routes(routes!(v1::imports::get))
        .routes(routes!(v1::indexes::list, v1::indexes::declare))
        .routes(routes!(v1::indexes::drop))
        .routes(routes!(
            v1::profiles::get_profile,
            v1::profiles::patch_profile,
            v1::deletions::forget
        ))
        .routes(routes!(
            v1::profiles::get_by_identity,
            v1::deletions::forget_by_identity
        ))
        .routes(routes!(v1::deletions::list, v1::deletions::bulk))
        .routes(routes!(v1::deletions::get))
        .routes(routes!(v1::profiles::replace_properties))
        .routes(routes!(v1::profiles::add_identities))
        .routes(routes!(v1::profiles::remove_identity))
        .routes(routes!(v1::profiles::clear))
        .routes(routes!(v1::events::ingest))
        .routes(routes!(v1::events::list))
        .routes(routes!(v1::computed::list))
        .routes(routes!(
            v1::computed::get,
            v1::computed::put,
            v1::computed::delete
        ))
        .routes(routes!(
            v1::schema::get,
            v1::schema::put,
            v1::schema::delete
        ))
        .routes(routes!(v1::schema::check))
        .routes(routes!(v1::sessions::create))
        .routes(routes!(v1::sessions::exchange))
        .routes(routes!(v1::end_users::development_codes))
        .routes(routes!(
            v1::end_users::get_inkeep_mapping,
            v1::end_users::put_inkeep_mapping
        ))
        .routes(routes!(
            v1::end_users::get_akinon_settings,
            v1::end_users::put_akinon_settings
        ))
        .routes(routes!(
            v1::end_users::get_mediarithmics_settings,
            v1::end_users::put_mediarithmics_settings
        ))
        .routes(routes!(
            v1::end_users::get_identity_provider,
            v1::end_users::put_identity_provider,
            v1::end_users::delete_identity_provider
        ))
        .routes(routes!(v1::sessions::revoke))
        .routes(routes!(v1::sessions::revoke_all))
        .routes(routes!(v1::me::get, v1::me::patch, v1::me::put))
        .routes(routes!(v1::end_users::get, v1::end_users::put))
        .routes(routes!(v1::companies::list, v1::companies::upsert))
        .routes(routes!(v1::companies::get, v1::companies::delete))
        .routes(routes!(v1::companies::get_by_uid))
        .routes(routes!(v1::segments::list))
        .routes(routes!(
            v1::segments::get,
            v1::segments::put,
            v1::segments::delete
        ))
        .routes(routes!(v1::segments::members))
        .routes(routes!(v1::workspaces::current))
        .routes(routes!(v1::workspaces::list, v1::workspaces::create))
        .routes(routes!(v1::keys::list, v1::keys::create))
        .routes(routes!(v1::keys::revoke))
        .routes(routes!(health::healthz))
}

/// The OpenAPI document of the native API, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// The complete application.
pub fn router(service: Arc<Service>) -> Router {
    service.combine_upserts();
    let body_limit = service.limits().max_body_bytes;
    let state = AppState { service };
    let userflux = compat::userflux::router().with_state(state.clone());
    let inkeep = compat::inkeep::router().with_state(state.clone());
    let chameleon = compat::chameleon::router().with_state(state.clone());
    let mediarithmics = compat::mediarithmics::router().with_state(state.clone());
    let akinon = compat::akinon::router().with_state(state.clone());
    let chameleon_root = compat::chameleon::root_with_slash().with_state(state.clone());
    let (api, openapi) = api().with_state(state).split_for_parts();
    Router::new()
        .merge(api)
        .nest("/compat/userflux", userflux)
        .nest("/compat/inkeep", inkeep)
        .nest("/compat/chameleon", chameleon)
        .nest("/compat/mediarithmics", mediarithmics)
        .nest("/compat/akinon", akinon)
        .route("/compat/chameleon/", chameleon_root)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(|| async { Problem::for_status(StatusCode::NOT_FOUND) })
        .layer(middleware::map_response(framework_errors_as_problems))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            problem::internal_error().into_response()
        }))
        .layer(TraceLayer::new_for_http())
}

/// Errors that the framework answers itself (a wrong method without a body, a path segment
/// that is not valid UTF-8 as plain text, ...) get the same problem+json shape as ours,
/// keeping their headers (e.g. `Allow`) and their message as the detail.
async fn framework_errors_as_problems(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    // Compat dialects answer in their vendors' JSON shapes: left as they are.
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Framework messages are short; anything longer is not one and is not echoed.
    let text = axum::body::to_bytes(body, 1024).await.unwrap_or_default();
    let mut problem = Problem::for_status(status);
    if !text.is_empty() && status.is_client_error() {
        problem.detail = String::from_utf8_lossy(&text).into_owned();
    }
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut response = problem.into_response();
    for (name, value) in parts.headers.iter() {
        response.headers_mut().entry(name).or_insert(value.clone());
    }
    response
}
