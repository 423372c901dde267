//! Reading the projections: balances and usage for dashboards.

use persql_events::ControlPlane;
use sqlx::Row;

use crate::money::Money;

/// A namespace's balance as the ledger has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance {
    pub amount: Money,
}

impl Balance {
    /// `funded` above zero, `depleted` at or below.
    pub fn status(&self) -> &'static str {
        if self.amount.nanos() > 0 {
            "funded"
        } else {
            "depleted"
        }
    }
}

/// The balance of `namespace_id` (zero before its first top-up).
pub async fn balance(cp: &ControlPlane, namespace_id: &str) -> Result<Balance, sqlx::Error> {
    let row = sqlx::query("SELECT balance_nanos FROM balances WHERE namespace_id = $1")
        .bind(namespace_id)
        .fetch_optional(cp.pool())
        .await?;
    let nanos = match row {
        Some(r) => r.try_get::<i64, _>(0)?,
        None => 0,
    };
    Ok(Balance {
        amount: Money::from_nanos(nanos),
    })
}

/// Every balance row, for API processes loading their funding view at start.
pub async fn all_balances(cp: &ControlPlane) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query("SELECT namespace_id, balance_nanos, updated_at FROM balances")
        .fetch_all(cp.pool())
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

/// True once the ledger holds the entry of event `event_id`.
pub async fn is_applied(cp: &ControlPlane, event_id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT 1 FROM ledger WHERE event_id = $1")
        .bind(event_id)
        .fetch_optional(cp.pool())
        .await?
        .is_some())
}

/// How usage rows are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Database,
    Caller,
}

/// One row of usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRow {
    /// The day (`YYYY-MM-DD`), database id or caller, per `GroupBy`.
    pub key: String,
    pub queries: i64,
    pub rows_read: i64,
    pub rows_written: i64,
    /// Sum over databases of each day's largest sample.
    pub storage_bytes: i64,
    pub cost: Money,
}

/// Usage of `namespace_id` on days `from..to` (`YYYY-MM-DD`, `to` exclusive), grouped.
pub async fn usage(
    cp: &ControlPlane,
    namespace_id: &str,
    from: &str,
    to: &str,
    group_by: GroupBy,
) -> Result<Vec<UsageRow>, sqlx::Error> {
    let column = match group_by {
        GroupBy::Day => "day",
        GroupBy::Database => "database_id",
        GroupBy::Caller => "caller",
    };
    let sql = format!(
        "SELECT {column}, CAST(SUM(queries) AS BIGINT), CAST(SUM(rows_read) AS BIGINT), \
         CAST(SUM(rows_written) AS BIGINT), CAST(SUM(storage_bytes) AS BIGINT), CAST(SUM(cost_nanos) AS BIGINT) \
         FROM usage_daily WHERE namespace_id = $1 AND day >= $2 AND day < $3 GROUP BY {column} ORDER BY {column}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(namespace_id)
        .bind(from)
        .bind(to)
        .fetch_all(cp.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(UsageRow {
                key: r.try_get(0)?,
                queries: r.try_get(1)?,
                rows_read: r.try_get(2)?,
                rows_written: r.try_get(3)?,
                storage_bytes: r.try_get(4)?,
                cost: Money::from_nanos(r.try_get(5)?),
            })
        })
        .collect()
}
