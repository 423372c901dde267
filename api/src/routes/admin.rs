//! Operator endpoints: namespaces.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    auth::Operator,
    error::{ApiError, Problem},
    extract::ApiJson,
    namespaces,
    slug::NamespaceSlug,
    state::AppState,
    telemetry::rfc3339,
};

/// Body of `POST /v1/admin/namespaces`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNamespaceRequest {
    /// 1–63 of `[a-z0-9-]`, starting with a letter.
    pub slug: String,
}

/// A namespace.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    pub id: String,
    pub slug: String,
    /// RFC 3339.
    pub created_at: String,
}

/// A new namespace and its workspace token (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateNamespaceResponse {
    pub namespace: Namespace,
    /// `psql_ws_…`: reaches every database of the namespace.
    pub token: String,
}

/// Create a namespace and its first workspace token.
#[utoipa::path(post, path = "/v1/admin/namespaces", tag = "operator",
    request_body = CreateNamespaceRequest,
    responses(
        (status = 201, body = CreateNamespaceResponse),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem),
    ))]
pub async fn create_namespace(
    State(state): State<AppState>,
    _op: Operator,
    ApiJson(req): ApiJson<CreateNamespaceRequest>,
) -> Result<(StatusCode, Json<CreateNamespaceResponse>), ApiError> {
    let slug = NamespaceSlug::parse(&req.slug)?;
    let (namespace, token) = namespaces::create(&state.cp, &slug).await?;
    let namespace = Namespace {
        id: namespace.id,
        slug: namespace.slug,
        created_at: rfc3339(namespace.created_at),
    };
    let token = token.expose().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(CreateNamespaceResponse { namespace, token }),
    ))
}
