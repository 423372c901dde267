//! Workspace database management: create (e.g. a template), list, delete.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use persql_events::{DatabaseDeleted, Envelope, TokensRevoked, outbox};
use persql_provisioner::{DatabaseRecord, DatabaseState, Registry, registry::NewDatabase};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    auth::{Caller, Workspace},
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    slug::{DatabaseSlug, is_database_path_segment},
    state::{AppState, state_name},
    telemetry::rfc3339,
    tokens::TokenKind,
};

/// Body of `POST /v1/databases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDatabaseRequest {
    /// 1–63 of `[a-z0-9-]`, starting with a letter.
    pub slug: String,
    /// Slug of a database of the same namespace whose schema (not rows) to copy.
    pub template: Option<String>,
}

/// A database of a namespace.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseInfo {
    pub id: String,
    pub slug: String,
    /// Slug of the template it was created from.
    pub template: Option<String>,
    /// `pending`, `ready` or `failed`.
    pub state: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&DatabaseRecord> for DatabaseInfo {
    fn from(r: &DatabaseRecord) -> Self {
        Self {
            id: r.id.clone(),
            slug: r.slug.clone(),
            template: r.template_slug.clone(),
            state: state_name(r.state).into(),
            created_at: rfc3339(r.created_at),
        }
    }
}

/// A page of databases.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseList {
    pub databases: Vec<DatabaseInfo>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// Paging for `GET /v1/databases`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Return databases whose slug sorts after this one.
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// Create a database in the workspace's namespace, empty or from a template.
#[utoipa::path(post, path = "/v1/databases", tag = "workspace",
    request_body = CreateDatabaseRequest,
    responses(
        (status = 201, body = DatabaseInfo),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 503, body = Problem),
    ))]
pub async fn create_database(
    State(state): State<AppState>,
    ws: Workspace,
    ApiJson(req): ApiJson<CreateDatabaseRequest>,
) -> Result<(StatusCode, Json<DatabaseInfo>), ApiError> {
    let slug = DatabaseSlug::parse(&req.slug)?;
    let template = req.template.as_deref().map(template_slug).transpose()?;
    state.funding.check(&ws.namespace_id, &ws.namespace_slug)?;
    let (rec, created) = ensure(&state, &ws, slug.as_str(), template, None).await?;
    if !created {
        return Err(ApiError::Conflict {
            code: "database_exists",
            detail: format!("database {:?} exists", slug.as_str()),
        });
    }
    Ok((StatusCode::CREATED, Json(DatabaseInfo::from(&rec))))
}

/// Parses a template slug; one that cannot exist is simply not found.
pub fn template_slug(s: &str) -> Result<&str, ApiError> {
    if is_database_path_segment(s) {
        Ok(s)
    } else {
        Err(ApiError::not_found(
            "template_not_found",
            "no such template database",
        ))
    }
}

/// Returns the ready database `slug`, registering it (and waiting for the provisioner)
/// when it does not exist. The flag says whether this call created it.
pub async fn ensure(
    state: &AppState,
    ws: &Workspace,
    slug: &str,
    template: Option<&str>,
    subject_hash: Option<String>,
) -> Result<(DatabaseRecord, bool), ApiError> {
    let owner = Owner {
        namespace_id: &ws.namespace_id,
        namespace_slug: &ws.namespace_slug,
        billed_namespace_id: &ws.namespace_id,
    };
    ensure_in(state, &owner, slug, template, subject_hash).await
}

/// Where a database lives and who pays for creating it.
#[derive(Debug)]
pub struct Owner<'a> {
    pub namespace_id: &'a str,
    pub namespace_slug: &'a str,
    pub billed_namespace_id: &'a str,
}

/// [`ensure`] for any owner: e.g. an OAuth app's database in a person's namespace, whose
/// creation the app pays for.
pub async fn ensure_in(
    state: &AppState,
    owner: &Owner<'_>,
    slug: &str,
    template: Option<&str>,
    subject_hash: Option<String>,
) -> Result<(DatabaseRecord, bool), ApiError> {
    let existing = state.registry.find(owner.namespace_id, slug).await?;
    let (rec, created) = match existing {
        Some(rec) if rec.state != DatabaseState::Failed => (rec, false),
        failed => {
            // A database whose provisioning failed (its template vanished) never became
            // reachable: forget it and try again, so the subject is not stuck for good.
            if let Some(rec) = failed {
                state.registry.forget_failed(&rec.id).await?;
            }
            let new = NewDatabase {
                namespace_id: owner.namespace_id,
                namespace_slug: owner.namespace_slug,
                slug,
                template_slug: template,
                subject_hash,
                billed_namespace_id: owner.billed_namespace_id,
            };
            state.registry.register(new, "/persql/api").await?
        }
    };
    if created {
        let cost = state.funding.prices().database_cost();
        state
            .funding
            .spend(owner.billed_namespace_id, persql_events::now_ms(), cost);
    }
    let rec = match rec.state {
        DatabaseState::Ready => rec,
        _ => state
            .waiter
            .wait(
                &state.cp,
                &rec.id,
                Duration::from_millis(state.config.http.provision_timeout_ms),
            )
            .await?
            .ok_or_else(|| ApiError::Unavailable {
                code: "provision_timeout",
                detail: "the database is still being created; retry shortly".into(),
            })?,
    };
    if rec.state == DatabaseState::Failed {
        return Err(ApiError::Unavailable {
            code: "provision_failed",
            detail: rec
                .error
                .clone()
                .unwrap_or_else(|| "the database could not be created".into()),
        });
    }
    Ok((rec, created))
}

/// List the workspace's databases (templates and per-user ones), by slug.
#[utoipa::path(get, path = "/v1/databases", tag = "workspace", params(ListParams),
    responses((status = 200, body = DatabaseList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_databases(
    State(state): State<AppState>,
    ws: Workspace,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<DatabaseList>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "limit must be between 1 and 1000",
        ));
    }
    let recs = state
        .registry
        .list(
            &ws.namespace_id,
            params.after.as_deref().unwrap_or(""),
            limit,
        )
        .await?;
    let next_after = (recs.len() as i64 == limit)
        .then(|| recs.last().map(|r| r.slug.clone()))
        .flatten();
    Ok(Json(DatabaseList {
        databases: recs.iter().map(DatabaseInfo::from).collect(),
        next_after,
    }))
}

/// Delete a database, its file and every token that reaches it.
#[utoipa::path(delete, path = "/v1/databases/{ns}/{db}", tag = "workspace",
    params(("ns" = String, Path), ("db" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_database(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath((ns, db)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let allowed = match caller.kind {
        TokenKind::Operator => true,
        TokenKind::Workspace => caller.namespace_slug.as_deref() == Some(ns.as_str()),
        TokenKind::Database => {
            return Err(ApiError::forbidden(
                "database tokens cannot delete databases",
            ));
        }
    };
    if !allowed {
        return Err(ApiError::database_not_found());
    }
    let entry = state
        .databases
        .lookup(&ns, &db)
        .await?
        .ok_or_else(ApiError::database_not_found)?;
    let mut tx = state.cp.begin().await?;
    let token_ids = Registry::delete_in(&mut tx, &entry.id).await?;
    let subject = format!("databases/{}", entry.id);
    let events = [
        Envelope::new(
            "/persql/api",
            &ns,
            &subject,
            &DatabaseDeleted {
                database_id: entry.id.clone(),
                namespace_id: entry.namespace_id.clone(),
                slug: entry.slug.clone(),
            },
        ),
        Envelope::new(
            "/persql/api",
            &ns,
            &subject,
            &TokensRevoked {
                token_ids: token_ids.clone(),
                reason: "database deleted".into(),
            },
        ),
    ];
    outbox::append(&mut tx, state.cp.backend(), &events).await?;
    state.cp.commit(tx).await?;
    state.auth.forget(&token_ids);
    state.databases.forget(&entry.id);
    state.storage.delete(&entry.location).await?;
    Ok(StatusCode::NO_CONTENT)
}
