//! Operational endpoints: health, metrics (operator token), the OpenAPI document and its
//! offline docs page.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{Html, IntoResponse},
    routing::get,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{auth::Operator, error::ApiError, state::AppState};

/// Health of this process.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the control plane answers.
    pub status: String,
}

/// Liveness and readiness: 200 when the control plane answers.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, body = Health), (status = 500, body = crate::error::Problem)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    sqlx::query("SELECT 1").execute(state.cp.pool()).await?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

/// Routes outside the OpenAPI document.
pub fn router(doc: Arc<utoipa::openapi::OpenApi>) -> Router<AppState> {
    Router::new()
        .route(
            "/openapi.json",
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        .route("/docs", get(|| async { Html(include_str!("docs.html")) }))
        .route("/metrics", get(metrics))
}

/// Prometheus text, for the operator token only: it names every route and its traffic.
async fn metrics(_: Operator) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::prometheus().render(),
    )
}
