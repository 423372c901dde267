//! Databases of a namespace: create one (registered, then made by the provisioner) and wait
//! until it is query-ready, and delete one with its file and every token that reaches it.

use std::time::Duration;

use persql_events::{DatabaseDeleted, Envelope, StoreError, TokensRevoked, now_ms, outbox};
use persql_metering::Unfunded;
use persql_provisioner::{
    DatabaseRecord, DatabaseState, Registry, RegistryError, registry::NewDatabase, subject_slug,
};
use persql_storage::{Role, StorageError};
use sha2::{Digest, Sha256};

use crate::{
    slug::{Subject, is_database_path_segment},
    state::{AppState, DbEntry},
    tokens::{self, Secret},
};

/// Why a database was not created, found or deleted.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// `POST /v1/databases` of a slug that exists (409 `database_exists`).
    #[error("database {0:?} exists")]
    Exists(String),
    /// The template named does not exist (404 `template_not_found`).
    #[error("no such template database")]
    TemplateNotFound,
    /// The provisioner did not make the database in time (503 `provision_timeout`).
    #[error("the database is still being created; retry shortly")]
    ProvisionTimeout,
    /// The provisioner could not make the database (503 `provision_failed`).
    #[error("{0}")]
    ProvisionFailed(String),
    #[error(transparent)]
    Unfunded(#[from] Unfunded),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DatabaseError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Parses a template slug; one that cannot exist is simply not found.
pub fn template_slug(s: &str) -> Result<&str, DatabaseError> {
    if is_database_path_segment(s) {
        Ok(s)
    } else {
        Err(DatabaseError::TemplateNotFound)
    }
}

/// Where a database lives and who pays for creating it.
#[derive(Debug)]
pub struct Owner<'a> {
    pub namespace_id: &'a str,
    pub namespace_slug: &'a str,
    pub billed_namespace_id: &'a str,
}

impl<'a> Owner<'a> {
    /// A database of namespace `id`/`slug`, paid for by that namespace.
    pub fn namespace(id: &'a str, slug: &'a str) -> Self {
        Self {
            namespace_id: id,
            namespace_slug: slug,
            billed_namespace_id: id,
        }
    }
}

/// Returns the ready database `slug` of `owner`, registering it (and waiting for the
/// provisioner) when it does not exist. The flag says whether this call created it.
pub async fn ensure(
    state: &AppState,
    owner: &Owner<'_>,
    slug: &str,
    template: Option<&str>,
    subject_hash: Option<String>,
) -> Result<(DatabaseRecord, bool), DatabaseError> {
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
            .spend(owner.billed_namespace_id, now_ms(), cost);
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
            .ok_or(DatabaseError::ProvisionTimeout)?,
    };
    if rec.state == DatabaseState::Failed {
        return Err(DatabaseError::ProvisionFailed(
            rec.error
                .clone()
                .unwrap_or_else(|| "the database could not be created".into()),
        ));
    }
    Ok((rec, created))
}

/// A user's database, provisioned, with a fresh write token for it.
#[derive(Debug)]
pub struct Provisioned {
    pub database: DatabaseRecord,
    pub token: Secret,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// Provisions (or finds) the database of `subject` in namespace `namespace` (id, slug),
/// from `template` on first call, and mints a write token for it that lives `token_ttl`.
pub async fn provision(
    state: &AppState,
    namespace: (&str, &str),
    subject: &Subject,
    template: Option<&str>,
    token_ttl: Duration,
) -> Result<Provisioned, DatabaseError> {
    let (namespace_id, namespace_slug) = namespace;
    state.funding.check(namespace_id, namespace_slug)?;
    let slug = subject_slug(namespace_id, subject.as_str());
    let subject_hash = hex::encode(Sha256::digest(format!(
        "{namespace_id}\0{}",
        subject.as_str()
    )));
    let owner = Owner::namespace(namespace_id, namespace_slug);
    let (database, _) = ensure(state, &owner, &slug, template, Some(subject_hash)).await?;
    let expires_at = now_ms() + token_ttl.as_millis() as i64;
    let (token, _) =
        tokens::mint_database_token(&state.cp, namespace, &database.id, Role::Write, expires_at)
            .await?;
    Ok(Provisioned {
        database,
        token,
        expires_at,
    })
}

/// Creates database `slug` in `owner`'s namespace (empty, or from `template`'s schema);
/// [`DatabaseError::Exists`] when it exists.
pub async fn create(
    state: &AppState,
    owner: &Owner<'_>,
    slug: &str,
    template: Option<&str>,
) -> Result<DatabaseRecord, DatabaseError> {
    state
        .funding
        .check(owner.billed_namespace_id, owner.namespace_slug)?;
    let (rec, created) = ensure(state, owner, slug, template, None).await?;
    if !created {
        return Err(DatabaseError::Exists(slug.to_owned()));
    }
    Ok(rec)
}

/// Deletes database `entry`: its registry row and tokens (with `database.deleted` and
/// `token.revoked` events, atomically), then the cached entries and the file.
pub async fn delete(state: &AppState, entry: &DbEntry) -> Result<(), DatabaseError> {
    let mut tx = state.cp.begin().await?;
    let token_ids = Registry::delete_in(&mut tx, &entry.id).await?;
    let subject = format!("databases/{}", entry.id);
    let events = [
        Envelope::new(
            "/persql/api",
            &entry.namespace_slug,
            &subject,
            &DatabaseDeleted {
                database_id: entry.id.clone(),
                namespace_id: entry.namespace_id.clone(),
                slug: entry.slug.clone(),
            },
        ),
        Envelope::new(
            "/persql/api",
            &entry.namespace_slug,
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
    Ok(())
}
