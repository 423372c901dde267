//! The one route table, and the OpenAPI document built from it.

pub mod admin;
pub mod billing;
pub mod databases;
pub mod migrations;
pub mod provision;
pub mod query;
pub mod system;
pub mod tokens;

use axum::{Router, extract::DefaultBodyLimit};
use tower_http::{cors::CorsLayer, trace::TraceLayer};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "PerSQL", description = "A SQLite database per user: provision, query, events."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(crate::error::Problem)),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(admin::create_namespace))
        .routes(routes!(
            databases::create_database,
            databases::list_databases
        ))
        .routes(routes!(databases::delete_database))
        .routes(routes!(provision::provision_user))
        .routes(routes!(tokens::create_token))
        .routes(routes!(query::run_query))
        .routes(routes!(query::run_batch))
        .routes(routes!(query::describe_database))
        .routes(routes!(query::export_database))
        .routes(routes!(billing::create_topup))
        .routes(routes!(billing::get_balance))
        .routes(routes!(billing::get_usage))
        .routes(routes!(
            migrations::create_migration,
            migrations::list_migrations
        ))
        .routes(routes!(migrations::get_migration))
        .routes(routes!(migrations::retry_migration))
        .routes(routes!(system::healthz))
}

/// The OpenAPI document the server serves at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let doc = std::sync::Arc::new(doc);
    let body_limit = state.config.max_body_bytes;
    api.merge(system::router(doc))
        .fallback(|| async { crate::error::ApiError::not_found("not_found", "no such resource") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(crate::telemetry::track))
        .layer(TraceLayer::new_for_http())
        .layer(CorsLayer::permissive())
        .with_state(state)
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_document_is_reviewed() {
        // The full document, reviewed like code; `openapi/openapi.json` is the same document
        // as served (checked end to end in tests/e2e/openapi.rs).
        insta::assert_json_snapshot!(super::openapi());
    }
}
