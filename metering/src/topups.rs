//! Top-ups: an operator's credit to a namespace, recorded with its `balance.topped_up` event
//! once per (namespace, reference); the metering consumer credits it.

use std::time::Duration;

use persql_events::{BalanceToppedUp, ControlPlane, Envelope, StoreError, now_ms, outbox};
use sqlx::Row;

use crate::{Money, read};

/// Why a top-up was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum TopupError {
    /// The reference was used before for a different amount (409 `reference_conflict`).
    #[error("reference {reference:?} was used for a top-up of {earlier}")]
    ReferenceConflict { reference: String, earlier: Money },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TopupError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// A top-up to record.
#[derive(Debug, Clone, Copy)]
pub struct Topup<'a> {
    pub namespace_id: &'a str,
    /// The namespace's slug: the event's NATS subject.
    pub namespace_slug: &'a str,
    pub amount: Money,
    /// The caller's idempotency key (1–200 characters, checked by the caller).
    pub reference: &'a str,
}

/// Records the top-up and its `balance.topped_up` event once per reference; returns the
/// event's id (the earlier one for a repeated reference with the same amount).
pub async fn record(cp: &ControlPlane, t: Topup<'_>) -> Result<String, TopupError> {
    let event = Envelope::new(
        "/persql/api",
        t.namespace_slug,
        &format!("namespaces/{}", t.namespace_id),
        &BalanceToppedUp {
            namespace_id: t.namespace_id.to_owned(),
            amount: t.amount.to_string(),
            reference: t.reference.to_owned(),
        },
    );
    let mut tx = cp.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO topups (namespace_id, reference, amount_nanos, event_id, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (namespace_id, reference) DO NOTHING",
    )
    .bind(t.namespace_id)
    .bind(t.reference)
    .bind(t.amount.nanos())
    .bind(&event.id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        let row = sqlx::query(
            "SELECT amount_nanos, event_id FROM topups WHERE namespace_id = $1 AND reference = $2",
        )
        .bind(t.namespace_id)
        .bind(t.reference)
        .fetch_one(&mut *tx)
        .await?;
        let (earlier, event_id): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        if earlier != t.amount.nanos() {
            return Err(TopupError::ReferenceConflict {
                reference: t.reference.to_owned(),
                earlier: Money::from_nanos(earlier),
            });
        }
        return Ok(event_id);
    }
    outbox::append(&mut tx, cp.backend(), std::slice::from_ref(&event)).await?;
    cp.commit(tx).await?;
    Ok(event.id)
}

/// Waits (up to `timeout`) for the metering consumer to apply top-up event `event_id`.
/// False when it did not happen in time.
pub async fn wait_applied(
    cp: &ControlPlane,
    event_id: &str,
    timeout: Duration,
) -> Result<bool, sqlx::Error> {
    let mut poll = Duration::from_millis(2);
    let deadline = tokio::time::Instant::now() + timeout;
    while !read::is_applied(cp, event_id).await? {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(event_id, "top-up recorded but not yet applied by metering");
            return Ok(false);
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(Duration::from_millis(100));
    }
    Ok(true)
}
