//! `POST /v1/databases/{ns}/{template}/migrations`: record a migration (applied to the
//! template first, then rolled out), or with `dryRun=true` try it without effect.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use persql_provisioner::template_migrations::{self, DryRunFailure, NewMigration};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{MigrationInfo, template, template_of};
use crate::{
    auth::Workspace,
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    state::AppState,
};

/// Body of `POST …/migrations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMigrationRequest {
    /// Positive; above every version recorded for the template. Becomes each database's
    /// `PRAGMA user_version` (the `schemaVersion` of its schema).
    pub version: i64,
    /// 1–100 of `[A-Za-z0-9_.-]`, e.g. `add_done_column`.
    pub name: String,
    /// One or more statements separated by `;`, run as an admin token's DDL would be.
    pub sql: String,
}

/// Options of `POST …/migrations`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CreateMigrationParams {
    /// Try the migration in rolled-back transactions (template and a random sample of its
    /// databases) and report; record nothing.
    pub dry_run: Option<bool>,
    /// Databases sampled by a dry run, 1–10000 (default 100).
    pub sample: Option<i64>,
}

/// A database a dry run would fail on.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WouldFail {
    /// Slug of the database; absent for the template itself.
    pub database: Option<String>,
    /// True when this is the template.
    pub template: bool,
    /// The version that would fail (this one, or an earlier one the database lacks).
    pub version: i64,
    /// SQLite's message.
    pub error: String,
}

impl From<DryRunFailure> for WouldFail {
    fn from(f: DryRunFailure) -> Self {
        Self {
            template: f.database_id.is_none(),
            database: f.slug,
            version: f.version,
            error: f.error,
        }
    }
}

/// What a dry run found; nothing was changed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRunResponse {
    pub dry_run: bool,
    pub version: i64,
    /// Databases of the template tried (besides the template).
    pub sampled: u64,
    pub would_fail: Vec<WouldFail>,
}

/// Record a template migration (201; 200 when this version is already recorded with the
/// same SQL), or dry-run it.
#[utoipa::path(post, path = "/v1/databases/{ns}/{template}/migrations", tag = "template-migrations",
    params(("ns" = String, Path), ("template" = String, Path), CreateMigrationParams),
    request_body = CreateMigrationRequest,
    responses(
        (status = 201, body = MigrationInfo), (status = 200, description = "already recorded, or a dry run's report", body = DryRunResponse),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
    ))]
pub async fn create_migration(
    State(state): State<AppState>,
    ws: Workspace,
    ApiPath((ns, tpl)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<CreateMigrationParams>,
    ApiJson(req): ApiJson<CreateMigrationRequest>,
) -> Result<Response, ApiError> {
    let rec = template_of(&state, &ws, &ns, &tpl).await?;
    let new = parse(&req)?;
    let template = template(&rec, &ws);
    if params.dry_run.unwrap_or(false) {
        let sample = params.sample.unwrap_or(100);
        if !(1..=10_000).contains(&sample) {
            return Err(ApiError::bad_request(
                "invalid_request",
                "sample must be between 1 and 10000",
            ));
        }
        let report = template_migrations::dry_run::dry_run(
            &state.cp,
            &state.storage,
            &template,
            &new,
            sample,
        )
        .await?;
        let body = DryRunResponse {
            dry_run: true,
            version: new.version,
            sampled: report.sampled,
            would_fail: report.failures.into_iter().map(WouldFail::from).collect(),
        };
        return Ok(Json(body).into_response());
    }
    let (recorded, created) =
        template_migrations::record(&state.cp, &state.storage, &template, &new).await?;
    // Databases of the template catch up on their next request in this process at once;
    // other processes learn it from `template.migration_added`.
    state.template_versions.raise(&rec.id, recorded.version);
    let status = template_migrations::status::status(&state.cp, &rec.id, recorded.version).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(MigrationInfo::from(status))).into_response())
}

/// Checks the request's fields.
fn parse(req: &CreateMigrationRequest) -> Result<NewMigration<'_>, ApiError> {
    if req.version < 1 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "version must be a positive integer",
        ));
    }
    let name_ok = (1..=100).contains(&req.name.len())
        && req
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !name_ok {
        return Err(ApiError::bad_request(
            "invalid_request",
            "name must be 1-100 of A-Z a-z 0-9 _ - .",
        ));
    }
    if req.sql.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "sql must not be empty",
        ));
    }
    Ok(NewMigration {
        version: req.version,
        name: &req.name,
        sql: &req.sql,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: i64, name: &str, sql: &str) -> CreateMigrationRequest {
        CreateMigrationRequest {
            version,
            name: name.into(),
            sql: sql.into(),
        }
    }

    #[test]
    fn parse_accepts_file_style_names_and_refuses_the_rest() {
        assert!(parse(&req(1, "add_done-col.v2", "SELECT 1")).is_ok());
        for bad in [
            req(0, "a", "SELECT 1"),
            req(-3, "a", "SELECT 1"),
            req(1, "", "SELECT 1"),
            req(1, "has space", "SELECT 1"),
            req(1, "../x", "SELECT 1"),
            req(1, &"a".repeat(101), "SELECT 1"),
            req(1, "a", "  \n"),
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }
}
