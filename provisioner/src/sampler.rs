//! Storage sampling: once per interval, every ready database's size is logged as a
//! `storage.sampled` event billed to whoever pays for it now. Event ids are derived from
//! (database, interval), so several samplers, or a restart mid-interval, log each sample once.

use std::time::Duration;

use persql_events::{ControlPlane, Envelope, StorageSampled, StoreError, now_ms, outbox};
use persql_storage::{DbLocation, Storage};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const PAGE: i64 = 1000;

/// Samples every ready database for the interval containing `at_ms`; returns how many.
pub async fn sample_once(
    cp: &ControlPlane,
    storage: &Storage,
    interval: Duration,
    at_ms: i64,
) -> Result<u64, StoreError> {
    let secs = interval.as_secs().max(1);
    let window = at_ms / 1000 / secs as i64;
    let window_start_ms = window * secs as i64 * 1000;
    let mut after = String::new();
    let mut sampled = 0;
    loop {
        let rows = sqlx::query(
            "SELECT d.id, d.namespace_id, p.id, p.slug FROM databases d \
             JOIN namespaces p ON p.id = COALESCE(d.payer_namespace_id, d.namespace_id) \
             WHERE d.state = 'ready' AND d.id > $1 ORDER BY d.id LIMIT $2",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(cp.pool())
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get(0)?;
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            let (database_id, namespace_id, payer_id, payer_slug): (
                String,
                String,
                String,
                String,
            ) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            let Ok(loc) = DbLocation::new(&namespace_id, &database_id) else {
                continue;
            };
            // A database deleted since the read has nothing left to bill.
            let Ok(bytes) = storage.size(&loc).await else {
                continue;
            };
            let event = Envelope::new(
                "/persql/provisioner",
                &payer_slug,
                &format!("databases/{database_id}"),
                &StorageSampled {
                    database_id: database_id.clone(),
                    namespace_id,
                    billed_namespace_id: payer_id,
                    bytes,
                    interval_secs: secs,
                },
            )
            .with_id(sample_id(&database_id, window, window_start_ms));
            events.push(event);
        }
        let mut tx = cp.begin().await?;
        outbox::append(&mut tx, cp.backend(), &events).await?;
        cp.commit(tx).await?;
        sampled += events.len() as u64;
    }
    Ok(sampled)
}

/// A UUIDv7 whose time is the window's start and whose random bits come from
/// (database, window): the same sample always gets the same id.
fn sample_id(database_id: &str, window: i64, window_start_ms: i64) -> String {
    let digest = Sha256::digest(format!("{database_id}/{window}").as_bytes());
    let mut rand = [0u8; 10];
    rand.copy_from_slice(&digest[..10]);
    uuid::Builder::from_unix_timestamp_millis(window_start_ms.max(0) as u64, &rand)
        .into_uuid()
        .to_string()
}

/// Samples now, then at the start of every following interval, until `shutdown`.
pub fn spawn(
    cp: ControlPlane,
    storage: Storage,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let secs = interval.as_secs().max(1) as i64;
        loop {
            let now = now_ms();
            match sample_once(&cp, &storage, interval, now).await {
                Ok(n) => tracing::debug!(databases = n, "storage sampled"),
                Err(e) => {
                    tracing::warn!(error = %e, "storage sampling failed; next interval retries")
                }
            }
            let next = (now / 1000 / secs + 1) * secs * 1000;
            let wait = Duration::from_millis((next - now_ms()).max(0) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_ids_are_stable_per_database_and_window() {
        let a = sample_id("db1", 7, 7_000);
        assert_eq!(a, sample_id("db1", 7, 7_000));
        assert_ne!(a, sample_id("db1", 8, 8_000));
        assert_ne!(a, sample_id("db2", 7, 7_000));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 7);
    }
}
