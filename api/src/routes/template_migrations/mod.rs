//! Template migrations over HTTP (workspace token only): record (or dry-run) a migration,
//! list them with rollout counts, inspect the databases one failed on, retry those.

mod create;
mod progress;

pub use create::*;
pub use progress::*;

use persql_provisioner::{
    DatabaseRecord, DatabaseState,
    template_migrations::{MigrationCounts, MigrationStatus, Template},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{auth::Workspace, error::ApiError, state::AppState, telemetry::rfc3339};

/// Rollout counts of one migration over the template's ready databases.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CountsBody {
    pub total: i64,
    pub applied: i64,
    pub pending: i64,
    pub failed: i64,
}

impl From<MigrationCounts> for CountsBody {
    fn from(c: MigrationCounts) -> Self {
        Self {
            total: c.total,
            applied: c.applied,
            pending: c.pending,
            failed: c.failed,
        }
    }
}

/// A recorded migration and how far its rollout has come.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationInfo {
    pub version: i64,
    pub name: String,
    /// Hex SHA-256 of `sql` (what `persql migrate` compares its files with).
    pub checksum: String,
    pub sql: String,
    /// RFC 3339.
    pub created_at: String,
    pub counts: CountsBody,
}

impl From<MigrationStatus> for MigrationInfo {
    fn from(s: MigrationStatus) -> Self {
        Self {
            version: s.migration.version,
            name: s.migration.name,
            checksum: s.migration.checksum,
            sql: s.migration.sql,
            created_at: rfc3339(s.migration.created_at),
            counts: s.counts.into(),
        }
    }
}

/// The ready template `ns/template` of the workspace; another namespace's is not found.
pub(crate) async fn template_of(
    state: &AppState,
    ws: &Workspace,
    ns: &str,
    template: &str,
) -> Result<DatabaseRecord, ApiError> {
    let missing = || ApiError::not_found("template_not_found", "no such template database");
    if ns != ws.namespace_slug {
        return Err(missing());
    }
    let slug = crate::databases::template_slug(template)?;
    match state.registry.find(&ws.namespace_id, slug).await? {
        Some(rec) if rec.state == DatabaseState::Ready => Ok(rec),
        _ => Err(missing()),
    }
}

/// The domain's view of the template.
pub(crate) fn template<'a>(rec: &'a DatabaseRecord, ws: &'a Workspace) -> Template<'a> {
    Template {
        id: &rec.id,
        namespace_id: &rec.namespace_id,
        namespace_slug: &ws.namespace_slug,
    }
}
