//! Prices: what each kind of usage costs, in nano-units, and the cost formulas shared by
//! the metering consumer and the API's local spend estimate.

use crate::money::Money;

/// Seconds in the 30-day month storage is priced by.
const MONTH_SECS: i128 = 30 * 24 * 3600;
const GB: i128 = 1_000_000_000;

/// Prices in nano-units. Defaults (currency units): a query 0.000001, a row read
/// 0.000000001, a row written 0.000001, a GB-month of storage 0.20, a database 0.00001.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prices {
    pub query: Money,
    pub row_read: Money,
    pub row_written: Money,
    pub storage_gb_month: Money,
    pub database: Money,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            query: Money::from_nanos(1_000),
            row_read: Money::from_nanos(1),
            row_written: Money::from_nanos(1_000),
            storage_gb_month: Money::from_nanos(200_000_000),
            database: Money::from_nanos(10_000),
        }
    }
}

impl Prices {
    /// Cost of `statements` statements that read and wrote these many rows.
    pub fn query_cost(&self, statements: u64, rows_read: u64, rows_written: u64) -> Money {
        let n = |m: Money, k: u64| (m.nanos() as i128).saturating_mul(k as i128);
        let total = n(self.query, statements)
            + n(self.row_read, rows_read)
            + n(self.row_written, rows_written);
        Money::from_nanos(total.min(i64::MAX as i128) as i64)
    }

    /// Cost of keeping `bytes` for `secs` seconds, pro rata of a 30-day month, rounded to the
    /// nearest nano-unit.
    pub fn storage_cost(&self, bytes: u64, secs: u64) -> Money {
        let num = (self.storage_gb_month.nanos() as i128) * (bytes as i128) * (secs as i128);
        let den = GB * MONTH_SECS;
        Money::from_nanos(((num + den / 2) / den).min(i64::MAX as i128) as i64)
    }

    /// Cost of provisioning one database.
    pub fn database_cost(&self) -> Money {
        self.database
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_cost_adds_per_statement_and_per_row_prices() {
        let p = Prices::default();
        assert_eq!(p.query_cost(1, 0, 0).nanos(), 1_000);
        assert_eq!(p.query_cost(2, 10, 3).nanos(), 2_000 + 10 + 3_000);
        assert_eq!(p.query_cost(u64::MAX, u64::MAX, u64::MAX).nanos(), i64::MAX);
    }

    #[test]
    fn storage_is_charged_pro_rata() {
        let p = Prices::default();
        // 1 GB for a whole month costs the monthly price.
        assert_eq!(
            p.storage_cost(1_000_000_000, 30 * 24 * 3600).nanos(),
            200_000_000
        );
        // A fresh 32 KiB schema-only database for an hour costs almost nothing.
        assert!(p.storage_cost(32 * 1024, 3600).nanos() < 100);
    }
}
