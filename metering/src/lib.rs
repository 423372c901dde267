//! Metering and prepaid billing: prices, the ledger, balances and usage projections, and
//! the consumer that charges by caller from the event stream.

pub mod consumer;
pub mod funding;
pub mod money;
pub mod prices;
pub mod read;
pub mod rebuild;
pub mod topups;

pub use consumer::MeteringHandler;
pub use funding::{Funding, Unfunded};
pub use money::{Money, MoneyError};
pub use prices::Prices;
pub use read::{Balance, GroupBy, UsageRow};
pub use rebuild::rebuild;
