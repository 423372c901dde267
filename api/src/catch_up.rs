//! The lazy half of template migrations: before a request reaches a database that is behind
//! its template's latest migration, apply what it lacks, once (one catch-up per database at a
//! time in this process; the tenant file's user_version, read under SQLite's write lock,
//! keeps other processes and the rollout from applying anything twice).

use std::sync::atomic::Ordering;

use persql_provisioner::template_migrations;

use crate::state::{AppState, DbEntry};

/// Brings `entry` up to its template's latest migration when it is behind. Costs two atomic
/// loads when it is not. A migration that fails leaves the database serving at its last good
/// version (the rollout records the failure; retrying is an endpoint).
pub async fn catch_up(state: &AppState, entry: &DbEntry) {
    let Some((template_id, latest)) = &entry.template else {
        return;
    };
    let behind = |target: i64| {
        entry.version.load(Ordering::Acquire) < target
            && entry.blocked.load(Ordering::Acquire) < target
    };
    if !behind(latest.load(Ordering::Acquire)) {
        return;
    }
    let _one_at_a_time = entry.migrating.lock().await;
    let target = latest.load(Ordering::Acquire);
    if !behind(target) {
        return;
    }
    let known = entry.version.load(Ordering::Acquire);
    match template_migrations::catch_up(
        &state.cp,
        &state.storage,
        template_id,
        &entry.location,
        known,
    )
    .await
    {
        Ok(out) => {
            entry.version.fetch_max(out.after, Ordering::AcqRel);
            if let Some((version, error)) = out.failed {
                tracing::warn!(database = %entry.id, version, %error, "catching up a database failed");
                entry.blocked.fetch_max(target, Ordering::AcqRel);
            } else if out.after < target {
                // The control plane had fewer migrations than this process was told of
                // (not possible when recording commits before the news spreads).
                entry.blocked.fetch_max(target, Ordering::AcqRel);
            }
        }
        Err(e) => {
            tracing::warn!(database = %entry.id, error = %e, "catching up a database failed");
            entry.blocked.fetch_max(target, Ordering::AcqRel);
        }
    }
}
