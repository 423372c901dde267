//! Bounds on work in flight (queued and running): queries per database, per namespace and
//! per token, exports per process and per namespace. Past a bound a request is refused at
//! once (429 `rate_limited` with `Retry-After`) instead of joining a queue without end.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;

/// How long a refused query is asked to wait: a database's queue drains at query speed.
const QUERY_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long a refused export is asked to wait: an export of a large database takes seconds.
const EXPORT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The bounds (settings `PERSQL_MAX_IN_FLIGHT_*`, `PERSQL_MAX_EXPORTS*`).
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Queries and batches in flight on one database.
    pub per_database: usize,
    /// Queries and batches in flight billed to one namespace.
    pub per_namespace: usize,
    /// Queries and batches in flight under one token.
    pub per_token: usize,
    /// Exports in flight in this process (each holds a copy of its database on disk).
    pub exports: usize,
    /// Exports in flight billed to one namespace.
    pub exports_per_namespace: usize,
}

/// What a count is kept for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Scope {
    Database(String),
    Namespace(String),
    Token(String),
    Exports,
    NamespaceExports(String),
}

/// Counts of work in flight, by scope; only non-zero counts are kept.
type Counts = Arc<Mutex<HashMap<Scope, usize>>>;

/// Admits work within the bounds. Cloning shares the counts.
#[derive(Clone)]
pub struct Admission {
    bounds: Bounds,
    counts: Counts,
}

/// A refusal: a bound is reached.
#[derive(Debug, thiserror::Error)]
#[error("{what} in flight {scope} reached its limit of {limit}; retry shortly")]
pub struct RateLimited {
    what: &'static str,
    scope: &'static str,
    limit: usize,
    /// When to try again.
    pub retry_after: Duration,
}

/// Admitted work: counted in flight until dropped.
#[derive(Debug)]
pub struct Ticket {
    counts: Counts,
    scopes: Vec<Scope>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        for scope in self.scopes.drain(..) {
            if let Some(n) = counts.get_mut(&scope) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&scope);
                }
            }
        }
    }
}

/// One bound to check: the scope, its limit and how a refusal names it.
type Check = (Scope, usize, &'static str);

impl Admission {
    pub fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            counts: Counts::default(),
        }
    }

    /// Admits a query or batch on `database_id`, billed to `namespace_id`, under `token_id`.
    pub fn query(
        &self,
        database_id: &str,
        namespace_id: &str,
        token_id: &str,
    ) -> Result<Ticket, RateLimited> {
        let b = self.bounds;
        self.admit(
            "queries",
            QUERY_RETRY_AFTER,
            [
                (
                    Scope::Database(database_id.into()),
                    b.per_database,
                    "on the database",
                ),
                (
                    Scope::Namespace(namespace_id.into()),
                    b.per_namespace,
                    "for the namespace",
                ),
                (
                    Scope::Token(token_id.into()),
                    b.per_token,
                    "under the token",
                ),
            ],
        )
    }

    /// Admits an export billed to `namespace_id`.
    pub fn export(&self, namespace_id: &str) -> Result<Ticket, RateLimited> {
        let b = self.bounds;
        self.admit(
            "exports",
            EXPORT_RETRY_AFTER,
            [
                (Scope::Exports, b.exports, "on this server"),
                (
                    Scope::NamespaceExports(namespace_id.into()),
                    b.exports_per_namespace,
                    "for the namespace",
                ),
            ],
        )
    }

    /// Counts the work in every scope of `checks`, or in none when one is at its limit.
    fn admit<const N: usize>(
        &self,
        what: &'static str,
        retry_after: Duration,
        checks: [Check; N],
    ) -> Result<Ticket, RateLimited> {
        let mut counts = self.counts.lock();
        for (scope, limit, name) in &checks {
            if counts.get(scope).copied().unwrap_or(0) >= *limit {
                return Err(RateLimited {
                    what,
                    scope: name,
                    limit: *limit,
                    retry_after,
                });
            }
        }
        let scopes: Vec<Scope> = checks.into_iter().map(|(scope, ..)| scope).collect();
        for scope in &scopes {
            *counts.entry(scope.clone()).or_default() += 1;
        }
        Ok(Ticket {
            counts: self.counts.clone(),
            scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission() -> Admission {
        Admission::new(Bounds {
            per_database: 2,
            per_namespace: 3,
            per_token: 4,
            exports: 2,
            exports_per_namespace: 1,
        })
    }

    #[test]
    fn each_bound_refuses_past_its_limit_and_dropping_a_ticket_frees_a_place() {
        let a = admission();
        let first = a.query("db1", "ns", "tok").unwrap();
        let _second = a.query("db1", "ns", "tok").unwrap();
        let e = a.query("db1", "ns", "tok").unwrap_err();
        assert!(e.to_string().contains("on the database"), "{e}");
        assert_eq!(e.retry_after, QUERY_RETRY_AFTER);
        let _third = a.query("db2", "ns", "tok").unwrap();
        let e = a.query("db3", "ns", "tok").unwrap_err();
        assert!(e.to_string().contains("for the namespace"), "{e}");
        let _other = a.query("db3", "ns2", "tok").unwrap();
        let e = a.query("db4", "ns3", "tok").unwrap_err();
        assert!(e.to_string().contains("under the token"), "{e}");
        drop(first);
        a.query("db1", "ns", "tok2").unwrap();
    }

    #[test]
    fn a_refusal_counts_nothing_and_counts_vanish_when_idle() {
        let a = admission();
        let held = a.query("db", "ns", "tok").unwrap();
        let also = a.query("db", "ns", "tok").unwrap();
        for _ in 0..10 {
            a.query("db", "ns", "tok").unwrap_err();
        }
        // The refusals above did not count against the namespace: it still has one place.
        a.query("db2", "ns", "tok").unwrap();
        drop((held, also));
        assert!(a.counts.lock().is_empty());
    }

    #[test]
    fn exports_are_bounded_per_namespace_and_per_process() {
        let a = admission();
        let e1 = a.export("ns1").unwrap();
        let e = a.export("ns1").unwrap_err();
        assert!(e.to_string().contains("for the namespace"), "{e}");
        assert_eq!(e.retry_after, EXPORT_RETRY_AFTER);
        let _e2 = a.export("ns2").unwrap();
        let e = a.export("ns3").unwrap_err();
        assert!(e.to_string().contains("on this server"), "{e}");
        drop(e1);
        a.export("ns3").unwrap();
    }
}
