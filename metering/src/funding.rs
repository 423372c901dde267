//! Which namespaces may make billed calls. Each API process keeps every namespace's last
//! known balance (loaded at start, then fed by `balance.*` events) minus a running estimate
//! of the spend it served that metering has not charged yet, and answers 402 when that
//! estimate is at or below zero — without waiting for the metering consumer.

use std::collections::{HashMap, VecDeque};

use crate::{Money, Prices};
use parking_lot::Mutex;
use persql_events::{
    BalanceCharged, BalanceCredited, BalanceDepleted, BalanceRestored, ControlPlane, Envelope,
};

/// A billed call refused: the namespace has no funds left (the API answers 402
/// `insufficient_funds`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("namespace {namespace_slug:?} has no funds left")]
pub struct Unfunded {
    pub namespace_slug: String,
}

#[derive(Default)]
struct NsFunding {
    /// Balance as of metering's last word.
    balance: i64,
    /// Newest event time metering has charged for this namespace.
    through_ms: i64,
    /// Spend served here and not yet charged: (event time, nano-units), oldest first.
    local: VecDeque<(i64, i64)>,
    local_sum: i64,
}

impl NsFunding {
    fn prune(&mut self) {
        while let Some(&(t, n)) = self.local.front() {
            if t > self.through_ms {
                break;
            }
            self.local.pop_front();
            self.local_sum -= n;
        }
    }
}

/// The funding view of one API process.
pub struct Funding {
    enabled: bool,
    prices: Prices,
    namespaces: Mutex<HashMap<String, NsFunding>>,
    /// Ids of the latest top-ups this view has seen credited (bounded).
    credited: Mutex<VecDeque<String>>,
    credited_notify: tokio::sync::Notify,
}

/// How many credited top-up ids `Funding` remembers.
const CREDITED_MEMORY: usize = 1024;

impl Funding {
    /// Loads every balance. With metering off, everything is allowed.
    pub async fn load(
        cp: &ControlPlane,
        prices: Prices,
        enabled: bool,
    ) -> Result<Self, sqlx::Error> {
        let mut namespaces = HashMap::new();
        if enabled {
            for (id, balance, through_ms) in crate::read::all_balances(cp).await? {
                namespaces.insert(
                    id,
                    NsFunding {
                        balance,
                        through_ms,
                        ..Default::default()
                    },
                );
            }
        }
        Ok(Self::with(enabled, prices, namespaces))
    }

    fn with(enabled: bool, prices: Prices, namespaces: HashMap<String, NsFunding>) -> Self {
        Self {
            enabled,
            prices,
            namespaces: Mutex::new(namespaces),
            credited: Mutex::new(VecDeque::new()),
            credited_notify: tokio::sync::Notify::new(),
        }
    }

    /// The prices in force.
    pub fn prices(&self) -> &Prices {
        &self.prices
    }

    /// [`Unfunded`] unless `namespace_id` has funds left (by this process's estimate). A
    /// namespace never topped up has none.
    pub fn check(&self, namespace_id: &str, namespace_slug: &str) -> Result<(), Unfunded> {
        if !self.enabled {
            return Ok(());
        }
        let map = self.namespaces.lock();
        let funded = map
            .get(namespace_id)
            .is_some_and(|f| f.balance - f.local_sum > 0);
        if funded {
            Ok(())
        } else {
            Err(Unfunded {
                namespace_slug: namespace_slug.to_owned(),
            })
        }
    }

    /// Records spend served at `time_ms` (the usage event's time), until metering charges it.
    pub fn spend(&self, namespace_id: &str, time_ms: i64, cost: Money) {
        if !self.enabled || cost.nanos() <= 0 {
            return;
        }
        let mut map = self.namespaces.lock();
        // Look up before `entry`: this runs once per query, and `entry` needs an owned key.
        let f = match map.get_mut(namespace_id) {
            Some(f) => f,
            None => map.entry(namespace_id.to_owned()).or_default(),
        };
        match f.local.back_mut() {
            Some((t, n)) if *t == time_ms => *n += cost.nanos(),
            _ => f.local.push_back((time_ms, cost.nanos())),
        }
        f.local_sum += cost.nanos();
    }

    /// Applies a `balance.*` event from the bus (in log order).
    pub fn apply(&self, e: &Envelope) {
        if !self.enabled {
            return;
        }
        let update = |ns: &str, balance: &str, through: Option<i64>| {
            let Ok(balance) = Money::parse(balance) else {
                return;
            };
            let mut map = self.namespaces.lock();
            let f = map.entry(ns.to_owned()).or_default();
            f.balance = balance.nanos();
            if let Some(t) = through {
                f.through_ms = f.through_ms.max(t);
                f.prune();
            }
        };
        if let Some(Ok(c)) = e.decode::<BalanceCharged>() {
            update(&c.namespace_id, &c.balance, Some(c.through_ms));
        } else if let Some(Ok(c)) = e.decode::<BalanceCredited>() {
            update(&c.namespace_id, &c.balance, None);
            let mut credited = self.credited.lock();
            if credited.len() == CREDITED_MEMORY {
                credited.pop_front();
            }
            credited.push_back(c.topup_event_id);
            drop(credited);
            self.credited_notify.notify_waiters();
        } else if let Some(Ok(d)) = e.decode::<BalanceDepleted>() {
            update(&d.namespace_id, &d.balance, None);
        } else if let Some(Ok(r)) = e.decode::<BalanceRestored>() {
            update(&r.namespace_id, &r.balance, None);
        }
    }
}

impl Funding {
    /// Waits (up to `timeout`) until this view has seen top-up `event_id` credited, so the
    /// caller's next request is served by this process.
    pub async fn wait_credited(&self, event_id: &str, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.credited_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.credited.lock().iter().any(|id| id == event_id) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funding(balance: i64) -> Funding {
        let mut m = HashMap::new();
        m.insert(
            "ns".to_owned(),
            NsFunding {
                balance,
                ..Default::default()
            },
        );
        Funding::with(true, Prices::default(), m)
    }

    #[test]
    fn unknown_namespaces_have_no_funds() {
        assert!(funding(10).check("other", "other").is_err());
    }

    #[test]
    fn local_spend_depletes_before_metering_catches_up() {
        let f = funding(3_000);
        assert!(f.check("ns", "ns").is_ok());
        f.spend("ns", 1, Money::from_nanos(1_000));
        f.spend("ns", 2, Money::from_nanos(1_000));
        assert!(f.check("ns", "ns").is_ok());
        f.spend("ns", 3, Money::from_nanos(1_000));
        assert!(f.check("ns", "ns").is_err());
    }

    #[test]
    fn charged_events_replace_the_estimate_up_to_their_time() {
        let f = funding(3_000);
        for t in 1..=3 {
            f.spend("ns", t, Money::from_nanos(1_000));
        }
        // Metering charged the first two: balance 1000, one local spend (t=3) remains.
        let e = Envelope::new(
            "/t",
            "ns",
            "x",
            &BalanceCharged {
                namespace_id: "ns".into(),
                amount: "0.000002".into(),
                charges: 2,
                balance: "0.000001".into(),
                through_ms: 2,
            },
        );
        f.apply(&e);
        assert!(f.check("ns", "ns").is_err());
        let e = Envelope::new(
            "/t",
            "ns",
            "x",
            &BalanceRestored {
                namespace_id: "ns".into(),
                balance: "1.00".into(),
            },
        );
        f.apply(&e);
        assert!(f.check("ns", "ns").is_ok());
    }

    #[test]
    fn metering_off_allows_everything() {
        let f = Funding::with(false, Prices::default(), HashMap::new());
        assert!(f.check("any", "any").is_ok());
    }
}
