//! The one route table, and the OpenAPI document built from it.

pub mod account;
pub mod admin;
pub mod agents;
pub mod apps;
pub mod billing;
pub mod databases;
pub mod oauth;
pub mod provision;
pub mod query;
pub mod system;
pub mod template_migrations;
pub mod tokens;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};
use tower_http::trace::TraceLayer;
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
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(query::run_query))
        .routes(routes!(query::run_batch))
        .routes(routes!(agents::describe_database))
        .routes(routes!(agents::list_tools))
        .routes(routes!(agents::serve_mcp))
        .routes(routes!(query::export_database))
        .routes(routes!(billing::create_topup))
        .routes(routes!(billing::get_balance))
        .routes(routes!(billing::get_usage))
        .routes(routes!(
            template_migrations::create_migration,
            template_migrations::list_migrations
        ))
        .routes(routes!(template_migrations::get_migration))
        .routes(routes!(template_migrations::retry_migration))
        .routes(routes!(system::healthz))
        .routes(routes!(apps::create_app))
        .routes(routes!(account::api::list_connected_apps))
        .routes(routes!(account::api::disconnect_app))
        .routes(routes!(oauth::get_openid_configuration))
        .routes(routes!(oauth::get_jwks))
        .routes(routes!(oauth::token::exchange_code))
}

/// The HTML pages (sign-in, consent, account): not part of the OpenAPI document.
fn page_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/oauth/authorize",
            get(oauth::authorize::authorize_page).post(oauth::authorize::decide_consent),
        )
        .route(
            "/account/signin",
            get(account::forms::sign_in_page).post(account::forms::sign_in),
        )
        .route(
            "/account/signup",
            get(account::forms::sign_up_page).post(account::forms::sign_up),
        )
        .route("/account/signout", post(account::forms::sign_out))
        .route("/account", get(account::pages::account_page))
        .route("/account/tokens", post(account::pages::mint_token_form))
        .route(
            "/account/apps/{client_id}/browse",
            get(account::pages::browse_page),
        )
        .route(
            "/account/apps/{client_id}/export",
            get(account::pages::export_page),
        )
        .route(
            "/account/apps/{client_id}/disconnect",
            post(account::pages::disconnect_form),
        )
}

/// The OpenAPI document the server serves at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let doc = std::sync::Arc::new(doc);
    let body_limit = state.config.http.max_body_bytes;
    let cors = state.cors.clone();
    api.merge(system::router(doc))
        .merge(page_routes())
        .fallback(|| async { crate::error::ApiError::not_found("not_found", "no such resource") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(crate::telemetry::track))
        .layer(TraceLayer::new_for_http())
        .layer(cors)
        .with_state(state)
}
