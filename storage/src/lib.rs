//! PerSQL storage: tenant SQLite files, their connections and safe execution.
//!
//! One token, one file: every tenant statement is compiled under an
//! authorizer for its [`Role`], bounded by [`Limits`], and runs on the
//! blocking pool against one cached connection per database.

mod authorizer;
mod background;
mod cache;
mod config;
mod conn;
mod describe;
mod error;
mod exec;
mod keyword;
mod location;
mod params;
mod storage;
mod template;
mod template_migration;
mod values;

#[cfg(test)]
mod tests;

pub use background::lower_current_thread;
pub use config::{BackgroundPolicy, Limits, StorageConfig, Synchronous};
pub use describe::{
    Column, EstimateMethod, ForeignKey, Index, RowEstimate, Schema, TEXT_BUDGET, Table, Trigger,
    View,
};
pub use error::{BatchError, StorageError};
pub use exec::QueryResult;
pub use location::{DbLocation, Role, UnknownRole};
pub use params::{Params, Statement};
pub use storage::Storage;
pub use template_migration::{MigrateOutcome, Migration, Migrations};
