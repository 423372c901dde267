//! The metering consumer: one ledger entry per charged event, billed to the namespace the
//! event names (the caller's), with balances and daily usage updated in the same
//! transaction, and `balance.*` events when a balance is charged, depleted or restored.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use persql_events::sql::shaped_chunks;
use persql_events::{
    Backend, BalanceCharged, BalanceCredited, BalanceDepleted, BalanceRestored, BalanceToppedUp,
    Envelope, Handler, HandlerError, Provisioned, QueryExecuted, StorageSampled, Tx, outbox,
};
use sqlx::Row;

use crate::{money::Money, prices::Prices};

/// Event types the consumer charges or credits.
pub const TYPES: &[&str] = &[
    "query.executed",
    "database.provisioned",
    "storage.sampled",
    "balance.topped_up",
];

const SOURCE: &str = "/persql/metering";

/// One ledger entry derived from one event.
#[derive(Clone, Debug)]
struct Entry {
    event_id: String,
    namespace_slug: String,
    namespace_id: String,
    kind: &'static str,
    amount: Money,
    database_id: Option<String>,
    caller: Option<String>,
    time_ms: i64,
    day: time::Date,
    queries: i64,
    rows_read: i64,
    rows_written: i64,
    storage_bytes: i64,
}

/// Charges events by caller.
pub struct MeteringHandler {
    prices: Prices,
    backend: Backend,
    /// False while rebuilding: the `balance.*` events are already in the log.
    emit: bool,
}

impl MeteringHandler {
    /// The live consumer.
    pub fn new(prices: Prices, backend: Backend) -> Self {
        Self {
            prices,
            backend,
            emit: true,
        }
    }

    pub(crate) fn replaying(prices: Prices, backend: Backend) -> Self {
        Self {
            prices,
            backend,
            emit: false,
        }
    }

    fn entry(&self, e: &Envelope) -> Result<Option<Entry>, serde_json::Error> {
        let time_ms = e.time_ms();
        let day = e.time.date();
        // Takes the decoded payload's strings by value: one event, one ledger entry, no copies.
        let base = |namespace_id: String,
                    kind,
                    amount,
                    database_id: Option<String>,
                    caller: Option<String>| {
            Entry {
                event_id: e.id.clone(),
                namespace_slug: e.namespace.clone(),
                namespace_id,
                kind,
                amount,
                database_id,
                caller,
                time_ms,
                day,
                queries: 0,
                rows_read: 0,
                rows_written: 0,
                storage_bytes: 0,
            }
        };
        if let Some(q) = e.decode::<QueryExecuted>() {
            let q = q?;
            let cost = self
                .prices
                .query_cost(q.statements as u64, q.rows_read, q.rows_written);
            let mut entry = base(
                q.billed_namespace_id,
                "query",
                -cost,
                Some(q.database_id),
                Some(q.token_id),
            );
            entry.queries = q.statements as i64;
            entry.rows_read = q.rows_read as i64;
            entry.rows_written = q.rows_written as i64;
            return Ok(Some(entry));
        }
        if let Some(p) = e.decode::<Provisioned>() {
            let p = p?;
            let cost = self.prices.database_cost();
            return Ok(Some(base(
                p.billed_namespace_id,
                "database",
                -cost,
                Some(p.database_id),
                Some("provision".to_owned()),
            )));
        }
        if let Some(s) = e.decode::<StorageSampled>() {
            let s = s?;
            let cost = self.prices.storage_cost(s.bytes, s.interval_secs);
            let mut entry = base(
                s.billed_namespace_id,
                "storage",
                -cost,
                Some(s.database_id),
                Some("storage".to_owned()),
            );
            entry.storage_bytes = s.bytes as i64;
            return Ok(Some(entry));
        }
        if let Some(t) = e.decode::<BalanceToppedUp>() {
            let t = t?;
            let Ok(amount) = Money::parse_positive(&t.amount) else {
                tracing::error!(id = %e.id, amount = %t.amount, "top-up with an invalid amount; ignored");
                return Ok(None);
            };
            return Ok(Some(base(t.namespace_id, "topup", amount, None, None)));
        }
        Ok(None)
    }
}

#[async_trait]
impl Handler for MeteringHandler {
    fn name(&self) -> &'static str {
        "metering"
    }

    fn types(&self) -> &'static [&'static str] {
        TYPES
    }

    async fn handle(&self, tx: &mut Tx, event: &Envelope) -> Result<(), HandlerError> {
        self.handle_batch(tx, std::slice::from_ref(event)).await
    }

    async fn handle_batch(&self, tx: &mut Tx, events: &[Envelope]) -> Result<(), HandlerError> {
        let mut entries = Vec::with_capacity(events.len());
        for e in events {
            match self.entry(e) {
                Ok(Some(entry)) => entries.push(entry),
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(id = %e.id, error = %err, "malformed event; not charged")
                }
            }
        }
        if entries.is_empty() {
            return Ok(());
        }
        if self.backend == Backend::Postgres {
            // Serializes charging with `persql metering rebuild` and other metering consumers.
            sqlx::query("SELECT pg_advisory_xact_lock(7202)")
                .execute(&mut **tx)
                .await?;
        }
        let entries: Vec<&Entry> = match insert_ledger(tx, self.backend, &entries).await? {
            Fresh::All => entries.iter().collect(),
            // `remove`: an id twice in one batch (a duplicate publish) is charged once.
            Fresh::Only(mut fresh) => entries
                .iter()
                .filter(|e| fresh.remove(&e.event_id))
                .collect(),
        };
        if entries.is_empty() {
            return Ok(());
        }
        let emitted = update_balances(tx, self.backend, &entries).await?;
        update_usage(tx, self.backend, &entries).await?;
        if self.emit && !emitted.is_empty() {
            outbox::append(tx, self.backend, &emitted).await?;
        }
        Ok(())
    }
}

/// Which entries of a batch the ledger did not hold yet.
enum Fresh {
    All,
    Only(HashSet<String>),
}

/// Inserts ledger rows and tells which were new (the others were charged by an earlier
/// delivery and must have no further effect). The common case, every entry new, is checked
/// by the inserted-row count, sparing a returned row per event; when some already existed
/// (redelivery, replay) the insert is undone and redone returning the new ids.
async fn insert_ledger(
    tx: &mut Tx,
    backend: Backend,
    entries: &[Entry],
) -> Result<Fresh, HandlerError> {
    sqlx::query("SAVEPOINT ledger_insert")
        .execute(&mut **tx)
        .await?;
    let mut inserted = 0;
    for chunk in shaped_chunks(entries) {
        inserted += ledger_insert(backend, chunk, false)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    if inserted != entries.len() as u64 {
        sqlx::query("ROLLBACK TO SAVEPOINT ledger_insert")
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("RELEASE SAVEPOINT ledger_insert")
        .execute(&mut **tx)
        .await?;
    if inserted == entries.len() as u64 {
        return Ok(Fresh::All);
    }
    let mut fresh = HashSet::with_capacity(entries.len());
    for chunk in shaped_chunks(entries) {
        for row in ledger_insert(backend, chunk, true)
            .fetch_all(&mut **tx)
            .await?
        {
            fresh.insert(row.try_get::<String, _>(0)?);
        }
    }
    Ok(Fresh::Only(fresh))
}

/// `INSERT INTO ledger` for `chunk`, skipping event ids already charged.
fn ledger_insert(
    backend: Backend,
    chunk: &[Entry],
    returning: bool,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    let rows = backend.rows(1, chunk.len(), 7);
    let returning = if returning { " RETURNING event_id" } else { "" };
    let sql = format!(
        "INSERT INTO ledger (event_id, namespace_id, kind, amount_nanos, database_id, caller, created_at) \
         VALUES {rows} ON CONFLICT (event_id) DO NOTHING{returning}"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in chunk {
        q = q
            .bind(&e.event_id)
            .bind(&e.namespace_id)
            .bind(e.kind)
            .bind(e.amount.nanos())
            .bind(e.database_id.as_deref())
            .bind(e.caller.as_deref())
            .bind(e.time_ms);
    }
    q
}

/// Per-namespace effect of a batch.
#[derive(Default)]
struct NsDelta {
    slug: String,
    delta: i64,
    charged: i64,
    charges: u64,
    through_ms: i64,
}

/// Applies the batch to balances; returns the `balance.*` events it causes.
async fn update_balances(
    tx: &mut Tx,
    backend: Backend,
    entries: &[&Entry],
) -> Result<Vec<Envelope>, HandlerError> {
    let mut by_ns: BTreeMap<&str, NsDelta> = BTreeMap::new();
    for e in entries {
        let d = by_ns.entry(&e.namespace_id).or_default();
        d.slug.clone_from(&e.namespace_slug);
        d.delta = d.delta.saturating_add(e.amount.nanos());
        if e.amount.nanos() < 0 {
            d.charged = d.charged.saturating_sub(e.amount.nanos());
            d.charges += 1;
        }
        d.through_ms = d.through_ms.max(e.time_ms);
    }
    let ids: Vec<&str> = by_ns.keys().copied().collect();
    let mut current: HashMap<String, i64> = HashMap::new();
    for chunk in shaped_chunks(&ids) {
        let sql = format!(
            "SELECT namespace_id, balance_nanos FROM balances WHERE namespace_id IN ({})",
            backend.list(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut **tx).await? {
            current.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    let mut events = Vec::new();
    let mut running = current.clone();
    for e in entries.iter().filter(|e| e.kind == "topup") {
        let b = running.entry(e.namespace_id.clone()).or_insert(0);
        *b = b.saturating_add(e.amount.nanos());
        events.push(Envelope::new(
            SOURCE,
            &e.namespace_slug,
            &format!("namespaces/{}", e.namespace_id),
            &BalanceCredited {
                namespace_id: e.namespace_id.clone(),
                amount: e.amount.to_string(),
                balance: Money::from_nanos(*b).to_string(),
                topup_event_id: e.event_id.clone(),
            },
        ));
    }
    let new_balances: Vec<(&str, i64, i64)> = by_ns
        .iter()
        .map(|(ns, d)| {
            (
                *ns,
                current
                    .get(*ns)
                    .copied()
                    .unwrap_or(0)
                    .saturating_add(d.delta),
                d.through_ms,
            )
        })
        .collect();
    // One statement for every namespace of the batch.
    for chunk in shaped_chunks(&new_balances) {
        let sql = format!(
            "INSERT INTO balances (namespace_id, balance_nanos, updated_at) VALUES {} \
             ON CONFLICT (namespace_id) DO UPDATE SET balance_nanos = excluded.balance_nanos, \
             updated_at = CASE WHEN excluded.updated_at > balances.updated_at \
             THEN excluded.updated_at ELSE balances.updated_at END",
            backend.rows(1, chunk.len(), 3)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (ns, balance, through) in chunk {
            q = q.bind(*ns).bind(*balance).bind(*through);
        }
        q.execute(&mut **tx).await?;
    }
    for (ns, d) in &by_ns {
        let old = current.get(*ns).copied().unwrap_or(0);
        let new = old.saturating_add(d.delta);
        let subject = format!("namespaces/{ns}");
        let balance = Money::from_nanos(new).to_string();
        if d.charges > 0 {
            events.push(Envelope::new(
                SOURCE,
                &d.slug,
                &subject,
                &BalanceCharged {
                    namespace_id: (*ns).to_owned(),
                    amount: Money::from_nanos(d.charged).to_string(),
                    charges: d.charges,
                    balance: balance.clone(),
                    through_ms: d.through_ms,
                },
            ));
        }
        if old > 0 && new <= 0 {
            events.push(Envelope::new(
                SOURCE,
                &d.slug,
                &subject,
                &BalanceDepleted {
                    namespace_id: (*ns).to_owned(),
                    balance,
                },
            ));
        } else if old <= 0 && new > 0 {
            events.push(Envelope::new(
                SOURCE,
                &d.slug,
                &subject,
                &BalanceRestored {
                    namespace_id: (*ns).to_owned(),
                    balance,
                },
            ));
        }
    }
    Ok(events)
}

#[derive(Default)]
struct UsageDelta {
    queries: i64,
    rows_read: i64,
    rows_written: i64,
    storage_bytes: i64,
    cost: i64,
}

/// Adds the batch's charges to the daily usage projection.
async fn update_usage(
    tx: &mut Tx,
    backend: Backend,
    entries: &[&Entry],
) -> Result<(), HandlerError> {
    let mut by_key: BTreeMap<(&str, time::Date, &str, &str), UsageDelta> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.amount.nanos() <= 0) {
        let key = (
            e.namespace_id.as_str(),
            e.day,
            e.database_id.as_deref().unwrap_or(""),
            e.caller.as_deref().unwrap_or(""),
        );
        let u = by_key.entry(key).or_default();
        u.queries += e.queries;
        u.rows_read += e.rows_read;
        u.rows_written += e.rows_written;
        u.storage_bytes = u.storage_bytes.max(e.storage_bytes);
        u.cost = u.cost.saturating_sub(e.amount.nanos());
    }
    let keys: Vec<_> = by_key.into_iter().collect();
    for chunk in shaped_chunks(&keys) {
        let rows = backend.rows(1, chunk.len(), 9);
        let sql = format!(
            "INSERT INTO usage_daily (namespace_id, day, database_id, caller, queries, rows_read, rows_written, storage_bytes, cost_nanos) \
             VALUES {rows} ON CONFLICT (namespace_id, day, database_id, caller) DO UPDATE SET \
             queries = usage_daily.queries + excluded.queries, \
             rows_read = usage_daily.rows_read + excluded.rows_read, \
             rows_written = usage_daily.rows_written + excluded.rows_written, \
             storage_bytes = CASE WHEN excluded.storage_bytes > usage_daily.storage_bytes \
                             THEN excluded.storage_bytes ELSE usage_daily.storage_bytes END, \
             cost_nanos = usage_daily.cost_nanos + excluded.cost_nanos"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((ns, day, db, caller), u) in chunk {
            q = q
                .bind(*ns)
                .bind(day.to_string())
                .bind(*db)
                .bind(*caller)
                .bind(u.queries)
                .bind(u.rows_read)
                .bind(u.rows_written)
                .bind(u.storage_bytes)
                .bind(u.cost);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use persql_events::{ControlPlane, EventPayload};

    use super::*;

    fn query(billed: &str) -> Envelope {
        Envelope::new(
            "/t",
            "acme",
            "databases/d",
            &QueryExecuted {
                database_id: "d".into(),
                namespace_id: billed.into(),
                billed_namespace_id: billed.into(),
                token_id: "t".into(),
                role: "read".into(),
                statements: 1,
                rows_read: 0,
                rows_written: 0,
                bytes: 0,
                duration_us: 1,
                error: None,
            },
        )
    }

    async fn apply(cp: &ControlPlane, handler: &MeteringHandler, events: &[Envelope]) {
        let mut tx = cp.begin().await.unwrap();
        handler.handle_batch(&mut tx, events).await.unwrap();
        cp.commit(tx).await.unwrap();
    }

    async fn charged(cp: &ControlPlane) -> (i64, i64, i64) {
        let balance: i64 =
            sqlx::query("SELECT balance_nanos FROM balances WHERE namespace_id = 'n'")
                .fetch_one(cp.pool())
                .await
                .unwrap()
                .try_get(0)
                .unwrap();
        let ledger: i64 = sqlx::query("SELECT COUNT(*) FROM ledger")
            .fetch_one(cp.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        let queries: i64 = sqlx::query("SELECT SUM(queries) FROM usage_daily")
            .fetch_one(cp.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        (balance, ledger, queries)
    }

    #[tokio::test]
    async fn batches_longer_than_a_statement_are_charged_once_each_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
        let handler = MeteringHandler::replaying(Prices::default(), cp.backend());
        // 700 events: statements of 256, 256, 128, 32, 16, 8 and 4 rows.
        let first: Vec<Envelope> = (0..700).map(|_| query("n")).collect();
        apply(&cp, &handler, &first).await;
        let once = charged(&cp).await;
        assert_eq!((once.1, once.2), (700, 700));
        // 300 of them again, with 301 new ones in between: only the new ones are charged.
        let fresh: Vec<Envelope> = (0..301).map(|_| query("n")).collect();
        let mut mixed: Vec<Envelope> = first[..300].to_vec();
        mixed.extend(fresh);
        mixed.rotate_left(150);
        apply(&cp, &handler, &mixed).await;
        let (balance, ledger, queries) = charged(&cp).await;
        assert_eq!((ledger, queries), (1001, 1001));
        assert_eq!(balance * 700, once.0 * 1001);
        cp.close().await;
    }

    #[tokio::test]
    async fn redelivered_and_duplicated_events_are_charged_once() {
        let dir = tempfile::tempdir().unwrap();
        let cp = ControlPlane::connect(None, dir.path()).await.unwrap();
        let handler = MeteringHandler::replaying(Prices::default(), cp.backend());
        let (a, b, c) = (query("n"), query("n"), query("n"));
        assert_eq!(QueryExecuted::TYPE, "query.executed");
        apply(&cp, &handler, &[a.clone(), b.clone()]).await;
        let once = charged(&cp).await;
        assert_eq!((once.1, once.2), (2, 2));
        // A redelivery of the whole batch changes nothing.
        apply(&cp, &handler, &[a.clone(), b.clone()]).await;
        assert_eq!(charged(&cp).await, once);
        // Old and new mixed, and one id twice in the same batch: only `c` is charged, once.
        apply(&cp, &handler, &[a, c.clone(), b, c]).await;
        let (balance, ledger, queries) = charged(&cp).await;
        assert_eq!((ledger, queries), (3, 3));
        assert_eq!(balance - once.0, once.0 / 2);
        cp.close().await;
    }
}
