//! Composes the crates into a running service: control plane, bus, storage, consumers,
//! and (for `serve`/`api`) the HTTP state.

use std::sync::Arc;

use anyhow::Context;
use persql_events::{
    Backend, Bus, BusConfig, ControlPlane, DatabaseDeleted, Envelope, Provisioned,
    QueryEventBatcher, TemplateMigrationAdded, TokensRevoked, Tx, outbox,
};
use persql_metering::{Funding, MeteringHandler};
use persql_provisioner::{
    ProvisionHandler, ReadyWaiter, Registry, sampler,
    template_migrations::{Rollout, TemplateVersions},
};
use persql_storage::Storage;
use sqlx::Row;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    accounts::{Accounts, PasswordProvider, limiter::SignInLimiter},
    config::Config,
    oauth::usage::GrantUsage,
    principal::Auth,
    state::{App, AppState, DatabaseCache, HttpService},
    tokens::{self, NewToken, Secret, TokenKind},
};

/// Which parts run in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Components {
    /// Everything (`persql serve`).
    All,
    /// HTTP only (`persql api`); provisioning happens in another process.
    Api,
    /// The provisioner consumer and storage sampler only (`persql provisioner`).
    Provisioner,
    /// The metering consumer only (`persql metering`).
    Metering,
}

/// A started service.
pub struct Running {
    /// HTTP state, when this process serves the API.
    pub state: Option<AppState>,
    /// Operator token generated on this start (to print once), if any.
    pub generated_admin_token: Option<String>,
    pub shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    cp: ControlPlane,
}

impl Running {
    /// Stops background tasks (draining queued query events) and closes the control plane.
    /// A background task that panicked is not hidden: its panic resumes here, once everything
    /// else has stopped (so the process, or the test, fails).
    pub async fn stop(self) {
        self.shutdown.cancel();
        let mut panicked = None;
        for t in self.tasks {
            if let Err(e) = t.await
                && e.is_panic()
                && panicked.is_none()
            {
                panicked = Some(e.into_panic());
            }
        }
        self.cp.close().await;
        if let Some(panic) = panicked {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Starts the components of `config`.
pub async fn start(config: Config, components: Components) -> anyhow::Result<Running> {
    crate::telemetry::prometheus();
    let connections = &config.connections;
    std::fs::create_dir_all(&connections.data_dir)
        .with_context(|| format!("creating data dir {}", connections.data_dir.display()))?;
    let cp = ControlPlane::connect(connections.database_url.as_deref(), &connections.data_dir)
        .await
        .context("connecting to the control plane")?;
    let bus = Bus::connect(
        cp.clone(),
        &BusConfig {
            nats_url: connections.nats_url.clone(),
            prefix: connections.nats_prefix.clone(),
        },
    )
    .await
    .context("connecting to the event bus")?;
    let storage = Storage::new(config.storage_config()).context("opening tenant storage")?;
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    let waiter = ReadyWaiter::new();

    if let Some(relay) = bus.spawn_relay(shutdown.clone()) {
        tasks.push(relay);
    }
    let prices = config.prices();
    if matches!(components, Components::All | Components::Provisioner) {
        let handler = ProvisionHandler::new(storage.clone(), cp.backend(), waiter.clone());
        tasks.push(bus.spawn_consumer(Arc::new(handler), shutdown.clone()));
        if config.rollout.migration_rollout.is_on() {
            let rollout = Rollout::new(
                cp.clone(),
                storage.clone(),
                config.rollout.migration_concurrency,
            );
            tasks.push(bus.spawn_consumer(Arc::new(rollout.trigger()), shutdown.clone()));
            tasks.push(rollout.spawn(
                std::time::Duration::from_secs(config.rollout.migration_rescan_secs.max(1)),
                shutdown.clone(),
            ));
        }
        if config.metering_enabled() {
            let interval =
                std::time::Duration::from_secs(config.storage.storage_sample_secs.max(1));
            tasks.push(sampler::spawn(
                cp.clone(),
                storage.clone(),
                interval,
                shutdown.clone(),
            ));
        }
    }
    if matches!(components, Components::All | Components::Metering) && config.metering_enabled() {
        let handler = MeteringHandler::new(prices, cp.backend());
        tasks.push(bus.spawn_consumer(Arc::new(handler), shutdown.clone()));
    }
    if matches!(components, Components::Provisioner | Components::Metering) {
        return Ok(Running {
            state: None,
            generated_admin_token: None,
            shutdown,
            tasks,
            cp,
        });
    }

    let generated_admin_token = bootstrap_operator(&cp, config.http.admin_token.clone()).await?;
    let (query_events, batcher) = QueryEventBatcher::spawn(cp.clone(), shutdown.clone());
    // Subscribe before loading balances, so no balance event falls between the two.
    let tail = bus
        .tail_matching(shutdown.clone(), invalidating)
        .await
        .context("tailing the event bus")?;
    let funding = Funding::load(&cp, prices, config.metering_enabled())
        .await
        .context("loading balances")?;
    let template_versions = TemplateVersions::load(&cp)
        .await
        .context("loading template migration versions")?;
    tasks.push(batcher);
    let cors = crate::cors::layer(&config.http.cors_origins)?;
    let mcp = crate::agents::mcp::service(config.http.max_body_bytes, shutdown.child_token());
    let mcp = HttpService::new(tower::ServiceExt::<axum::extract::Request>::map_response(
        mcp,
        |r| r.map(axum::body::Body::new),
    ));
    let signing_key = crate::oauth::keys::SigningKey::load_or_create(&cp)
        .await
        .context("loading the ID-token signing key")?;
    let limiter = SignInLimiter::new(
        config.http.signin_max_failures,
        config.http.signup_max_per_window,
        std::time::Duration::from_secs(config.http.signin_window_secs.max(1)),
    );
    let admission = crate::admission::Admission::new(config.http.admission_bounds());
    let state = AppState(Arc::new(App {
        registry: Registry::new(cp.clone()),
        auth: Auth::new(cp.clone()),
        databases: DatabaseCache::new(cp.clone(), template_versions.clone()),
        config,
        cp: cp.clone(),
        bus: bus.clone(),
        storage,
        waiter,
        query_events,
        funding,
        mcp,
        cors,
        accounts: Accounts::new(Box::new(PasswordProvider)),
        limiter,
        admission,
        signing_key,
        grants_used: GrantUsage::new(cp.clone()),
        tokens_used: tokens::TokenUsage::new(cp.clone()),
        template_versions,
    }));
    tasks.push(spawn_invalidation(&state, tail));
    Ok(Running {
        state: Some(state),
        generated_admin_token,
        shutdown,
        tasks,
        cp,
    })
}

/// The event types `spawn_invalidation` acts on.
fn invalidating(ty: &str) -> bool {
    ty.starts_with("balance.")
        || matches!(
            ty,
            "token.revoked"
                | "database.deleted"
                | "database.provisioned"
                | "template.migration_added"
        )
}

/// Keeps this process's caches in step with changes made anywhere: revoked tokens and
/// deleted databases are forgotten, provision waiters are woken, balances follow metering,
/// templates' latest migration versions rise.
fn spawn_invalidation(
    state: &AppState,
    mut rx: tokio::sync::mpsc::Receiver<persql_events::Envelope>,
) -> JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if e.type_suffix().starts_with("balance.") {
                state.funding.apply(&e);
            } else if let Some(Ok(r)) = e.decode::<TokensRevoked>() {
                state.auth.forget(&r.token_ids);
            } else if let Some(Ok(d)) = e.decode::<DatabaseDeleted>() {
                state.databases.forget(&d.database_id);
            } else if e.is::<Provisioned>() {
                state.waiter.wake();
            } else if let Some(Ok(m)) = e.decode::<TemplateMigrationAdded>() {
                // Recorded by another API process: databases of the template catch up on
                // their next request.
                state.template_versions.raise(&m.template_id, m.version);
            }
        }
    })
}

/// Ensures an operator token exists. A configured one is stored (hashed) if new; with none
/// configured and none stored, one is generated and returned to be printed once.
async fn bootstrap_operator(
    cp: &ControlPlane,
    configured: Option<Secret>,
) -> anyhow::Result<Option<String>> {
    let no_ns = NewToken {
        kind: TokenKind::Operator,
        namespace_id: None,
        namespace_slug: "_operator",
        database_id: None,
        role: None,
        billed_namespace_id: None,
        expires_at: None,
    };
    let mut tx = cp.begin().await?;
    let generated = match configured {
        Some(secret) => {
            let t = secret.expose();
            anyhow::ensure!(
                t.starts_with("psql_admin_") && t.len() >= "psql_admin_".len() + 32,
                "PERSQL_ADMIN_TOKEN must start with psql_admin_ and carry at least 32 more characters"
            );
            let known: Option<String> =
                sqlx::query_scalar("SELECT id FROM tokens WHERE hash = $1 AND kind = 'operator'")
                    .bind(secret.hash())
                    .fetch_optional(&mut *tx)
                    .await?;
            let id = match known {
                Some(id) => {
                    // Configured again after a rotation away from it: it works again.
                    sqlx::query("UPDATE tokens SET revoked_at = NULL WHERE id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    id
                }
                None => {
                    let id = uuid::Uuid::now_v7().simple().to_string();
                    tokens::insert(&mut tx, &id, &secret, &no_ns).await?;
                    id
                }
            };
            rotate_operator(&mut tx, cp.backend(), &id).await?;
            None
        }
        None => {
            let count: i64 = sqlx::query(
                "SELECT COUNT(*) FROM tokens WHERE kind = 'operator' AND revoked_at IS NULL",
            )
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            if count > 0 {
                None
            } else {
                let (_, secret) = tokens::mint(&mut tx, cp.backend(), &no_ns).await?;
                Some(secret.expose().to_owned())
            }
        }
    };
    cp.commit(tx).await?;
    Ok(generated)
}

/// Rotation: the configured operator token `current` is the only one. Every other operator
/// token is revoked, and `token.revoked` tells running processes to drop it from their caches.
async fn rotate_operator(tx: &mut Tx, backend: Backend, current: &str) -> anyhow::Result<()> {
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM tokens WHERE kind = 'operator' AND revoked_at IS NULL AND id <> $1",
    )
    .bind(current)
    .fetch_all(&mut **tx)
    .await?;
    if old.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE kind = 'operator' AND revoked_at IS NULL AND id <> $2",
    )
    .bind(persql_events::now_ms())
    .bind(current)
    .execute(&mut **tx)
    .await?;
    tracing::info!(
        revoked = old.len(),
        "operator token rotated: the earlier ones no longer work"
    );
    let event = Envelope::new(
        "/persql/api",
        "_operator",
        "tokens",
        &TokensRevoked {
            token_ids: old,
            reason: "operator token rotated".into(),
        },
    );
    outbox::append(tx, backend, &[event]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn running_with(task: JoinHandle<()>) -> (Running, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
        let running = Running {
            state: None,
            generated_admin_token: None,
            shutdown: CancellationToken::new(),
            tasks: vec![task],
            cp,
        };
        (running, dir)
    }

    #[tokio::test]
    #[should_panic(expected = "consumer broke")]
    async fn stopping_resumes_a_background_tasks_panic() {
        let (running, _dir) = running_with(tokio::spawn(async { panic!("consumer broke") })).await;
        running.stop().await;
    }

    #[tokio::test]
    async fn stopping_quietly_ends_tasks_that_end_with_the_shutdown() {
        let token = CancellationToken::new();
        let waiting = token.clone();
        let (mut running, _dir) =
            running_with(tokio::spawn(async move { waiting.cancelled().await })).await;
        running.shutdown = token;
        running.stop().await;
    }
}
