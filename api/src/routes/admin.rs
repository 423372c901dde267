//! Operator endpoints: namespaces.

use axum::{Json, extract::State, http::StatusCode};
use persql_events::{Backend, Envelope, NamespaceCreated, Tx, now_ms, outbox};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    auth::Operator,
    error::{ApiError, Problem},
    extract::ApiJson,
    slug::NamespaceSlug,
    state::AppState,
    tokens::{self, NewToken, TokenKind},
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
    let (namespace, token) = create(&state, &slug).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateNamespaceResponse { namespace, token }),
    ))
}

/// Inserts the namespace, its `namespace.created` event and a workspace token, atomically.
pub async fn create(
    state: &AppState,
    slug: &NamespaceSlug,
) -> Result<(Namespace, String), ApiError> {
    let mut tx = state.cp.begin().await?;
    let (id, created) = insert_namespace(&mut tx, state.cp.backend(), slug).await?;
    let (_, secret) = tokens::mint(
        &mut tx,
        state.cp.backend(),
        &NewToken {
            kind: TokenKind::Workspace,
            namespace_id: Some(&id),
            namespace_slug: slug.as_str(),
            database_id: None,
            role: None,
            billed_namespace_id: Some(&id),
            expires_at: None,
        },
    )
    .await?;
    state.cp.commit(tx).await?;
    let namespace = Namespace {
        id,
        slug: slug.as_str().into(),
        created_at: crate::telemetry::rfc3339(created),
    };
    Ok((namespace, secret.expose().to_owned()))
}

/// Inserts namespace `slug` and its `namespace.created` event in `tx`; returns its id and
/// creation time, or 409 `namespace_exists`.
pub async fn insert_namespace(
    tx: &mut Tx,
    backend: Backend,
    slug: &NamespaceSlug,
) -> Result<(String, i64), ApiError> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let created = now_ms();
    let inserted = sqlx::query("INSERT INTO namespaces (id, slug, created_at) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING")
        .bind(&id)
        .bind(slug.as_str())
        .bind(created)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if inserted == 0 {
        return Err(ApiError::Conflict {
            code: "namespace_exists",
            detail: format!("namespace {:?} exists", slug.as_str()),
        });
    }
    let event = Envelope::new(
        "/persql/api",
        slug.as_str(),
        &format!("namespaces/{id}"),
        &NamespaceCreated {
            namespace_id: id.clone(),
            slug: slug.as_str().into(),
        },
    );
    outbox::append(tx, backend, &[event]).await?;
    Ok((id, created))
}
