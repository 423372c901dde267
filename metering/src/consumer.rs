//! The metering consumer: one ledger entry per charged event, billed to the namespace the
//! event names (the caller's), with balances and daily usage updated in the same
//! transaction, and `balance.*` events when a balance is charged, depleted or restored.

use async_trait::async_trait;
use persql_events::{
    Backend, BalanceToppedUp, Envelope, Handler, HandlerError, Provisioned, QueryExecuted,
    StorageSampled, Tx, outbox,
};

use self::{
    balances::update_balances,
    ledger::{Fresh, insert_ledger},
    usage::update_usage,
};
use crate::{money::Money, prices::Prices};

mod balances;
mod ledger;
#[cfg(test)]
mod tests;
mod usage;

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
