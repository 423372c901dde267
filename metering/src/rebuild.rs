//! `persql metering rebuild`: drop the projections and replay the event log through the
//! same handler, so balances, ledger and usage come out exactly as if charged live.

use persql_events::{Backend, ControlPlane, Envelope, Handler, StoreError};
use sqlx::Row;

use crate::{
    consumer::{MeteringHandler, TYPES},
    prices::Prices,
};

/// What a rebuild did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Events replayed.
    pub events: u64,
    /// Log position replayed through.
    pub through_seq: i64,
}

const PAGE: i64 = 5000;

/// Rebuilds ledger, balances and usage from the log in one transaction.
pub async fn rebuild(cp: &ControlPlane, prices: Prices) -> Result<RebuildReport, StoreError> {
    let handler = MeteringHandler::replaying(prices, cp.backend());
    let mut tx = cp.begin().await?;
    if cp.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7202)")
            .execute(&mut *tx)
            .await?;
    }
    for table in [
        "DELETE FROM ledger",
        "DELETE FROM balances",
        "DELETE FROM usage_daily",
    ] {
        sqlx::query(table).execute(&mut *tx).await?;
    }
    let types = TYPES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT seq, body FROM events WHERE seq > $1 AND type IN ({types}) ORDER BY seq LIMIT $2"
    );
    let mut report = RebuildReport::default();
    loop {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(report.through_seq)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await?;
        let Some(last) = rows.last() else { break };
        report.through_seq = last.try_get(0)?;
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            let body: String = r.try_get(1)?;
            events.push(serde_json::from_str::<Envelope>(&body)?);
        }
        report.events += events.len() as u64;
        handler
            .handle_batch(&mut tx, &events)
            .await
            .map_err(|e| StoreError::Apply(e.0))?;
    }
    tx.commit().await?;
    Ok(report)
}
