//! Balances: a batch's charges and credits per namespace, and the `balance.*` events they
//! cause.

use std::collections::{BTreeMap, HashMap};

use persql_events::{
    Backend, BalanceCharged, BalanceCredited, BalanceDepleted, BalanceRestored, Envelope,
    HandlerError, Tx, sql::shaped_chunks,
};
use sqlx::Row;

use super::{Entry, SOURCE};
use crate::money::Money;

/// Per-namespace effect of a batch.
#[derive(Default)]
pub(super) struct NsDelta {
    slug: String,
    delta: i64,
    charged: i64,
    charges: u64,
    through_ms: i64,
}

/// Applies the batch to balances; returns the `balance.*` events it causes.
pub(super) async fn update_balances(
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
