//! Shared application state handed to every handler.

use std::{
    ops::Deref,
    sync::{Arc, atomic::AtomicI64},
    time::Duration,
};

use moka::future::Cache;
use persql_events::{Bus, ControlPlane, QueryEventBatcher};
use persql_metering::Funding;
use persql_provisioner::{
    DatabaseState, ReadyWaiter, Registry, template_migrations::TemplateVersions,
};
use persql_storage::{DbLocation, Storage};
use sqlx::Row;

use crate::{
    accounts::{Accounts, limiter::SignInLimiter},
    admission::Admission,
    config::Config,
    error::ApiError,
    oauth::{keys::SigningKey, usage::GrantUsage},
    principal::Auth,
    tokens::TokenUsage,
};

/// A boxed tower service answering HTTP requests (the MCP server), so that this module
/// needs no import of what it serves.
pub type HttpService = tower::util::BoxCloneSyncService<
    axum::extract::Request,
    axum::response::Response,
    std::convert::Infallible,
>;

/// Everything a request may need. Cloning is cheap.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// The composed service.
pub struct App {
    pub config: Config,
    pub cp: ControlPlane,
    pub bus: Bus,
    pub storage: Storage,
    pub registry: Registry,
    pub auth: Auth,
    pub databases: DatabaseCache,
    pub waiter: ReadyWaiter,
    pub query_events: QueryEventBatcher,
    pub funding: Funding,
    /// The per-database MCP server (one service; the caller comes with each request).
    pub mcp: HttpService,
    /// CORS for browsers (`PERSQL_CORS_ORIGINS`).
    pub cors: tower_http::cors::CorsLayer,
    /// People's accounts (sign-in through an identity provider).
    pub accounts: Accounts,
    pub limiter: SignInLimiter,
    /// Bounds on queries and exports in flight (429 `rate_limited` past them).
    pub admission: Admission,
    /// Signs ID tokens.
    pub signing_key: SigningKey,
    /// Debounced `last_used_at` of OAuth grants.
    pub grants_used: GrantUsage,
    /// Debounced `last_used_at` of tokens.
    pub tokens_used: TokenUsage,
    /// Each template's latest migration version (the query path's catch-up check).
    pub template_versions: TemplateVersions,
}

impl App {
    /// The public base URL (OAuth issuer), without a trailing `/`.
    pub fn issuer(&self) -> String {
        self.config.public_url()
    }

    /// Cookies get `Secure` when the service is served over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.issuer().starts_with("https://")
    }
}

/// A query-ready database as the query path needs it.
#[derive(Debug)]
pub struct DbEntry {
    pub id: String,
    pub namespace_id: String,
    pub namespace_slug: String,
    pub slug: String,
    pub location: DbLocation,
    /// The template it was created from, with that template's latest migration version
    /// (a cell shared by every database of the template, raised when one is recorded).
    pub template: Option<(String, Arc<AtomicI64>)>,
    /// The migration version this process knows the database has (a lower bound: the
    /// file's user_version is the truth).
    pub version: AtomicI64,
    /// A version whose catch-up failed here: not tried again on every query (the rollout
    /// and its retry endpoint take it from there).
    pub blocked: AtomicI64,
    /// Held while this process catches the database up: one catch-up at a time.
    pub migrating: tokio::sync::Mutex<()>,
}

/// `(namespace slug, database slug)` → ready database, cached. Deletion invalidates.
#[derive(Clone)]
pub struct DatabaseCache {
    cp: ControlPlane,
    versions: TemplateVersions,
    cache: Cache<(String, String), Arc<DbEntry>>,
}

impl DatabaseCache {
    pub fn new(cp: ControlPlane, versions: TemplateVersions) -> Self {
        let cache = Cache::builder()
            .max_capacity(200_000)
            .time_to_idle(Duration::from_secs(600))
            .support_invalidation_closures()
            .build();
        Self {
            cp,
            versions,
            cache,
        }
    }

    /// The ready database `ns/db`, if any.
    pub async fn lookup(&self, ns: &str, db: &str) -> Result<Option<Arc<DbEntry>>, ApiError> {
        let key = (ns.to_owned(), db.to_owned());
        if let Some(e) = self.cache.get(&key).await {
            return Ok(Some(e));
        }
        let row = sqlx::query(
            "SELECT d.id, d.namespace_id, d.state, d.template_id, d.schema_version \
             FROM databases d JOIN namespaces n ON n.id = d.namespace_id \
             WHERE n.slug = $1 AND d.slug = $2",
        )
        .bind(ns)
        .bind(db)
        .fetch_optional(self.cp.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let state: String = r.try_get(2)?;
        if state != "ready" {
            return Ok(None);
        }
        let id: String = r.try_get(0)?;
        let namespace_id: String = r.try_get(1)?;
        let location = DbLocation::new(&namespace_id, &id)?;
        let template: Option<String> = r.try_get(3)?;
        let entry = Arc::new(DbEntry {
            id,
            namespace_id,
            namespace_slug: ns.to_owned(),
            slug: db.to_owned(),
            location,
            template: template.map(|t| {
                let cell = self.versions.cell(&t);
                (t, cell)
            }),
            version: AtomicI64::new(r.try_get(4)?),
            blocked: AtomicI64::new(0),
            migrating: tokio::sync::Mutex::new(()),
        });
        self.cache.insert(key, entry.clone()).await;
        Ok(Some(entry))
    }

    /// Forgets the database with id `id`.
    pub fn forget(&self, id: &str) {
        let id = id.to_owned();
        if self
            .cache
            .invalidate_entries_if(move |_, e| e.id == id)
            .is_err()
        {
            self.cache.invalidate_all();
        }
    }
}

/// Maps a registry state for display.
pub fn state_name(s: DatabaseState) -> &'static str {
    match s {
        DatabaseState::Pending => "pending",
        DatabaseState::Ready => "ready",
        DatabaseState::Failed => "failed",
    }
}
