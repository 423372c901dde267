//! Typed setting values: the enums clap accepts and the parsers of prices and the operator
//! token.

use clap::ValueEnum;
use persql_metering::{Money, MoneyError};
use persql_storage::{BackgroundPolicy, Synchronous};

use crate::tokens::Secret;

/// A feature switched `on` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    /// True for `on`.
    pub fn is_on(self) -> bool {
        self == Self::On
    }
}

/// `PRAGMA synchronous` of tenant connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SynchronousMode {
    /// Every commit is flushed to disk before it is acknowledged: it survives power loss.
    Full,
    /// Commits are flushed at checkpoints: the last ones may roll back on power loss; the
    /// database stays consistent.
    Normal,
}

impl From<SynchronousMode> for Synchronous {
    fn from(mode: SynchronousMode) -> Self {
        match mode {
            SynchronousMode::Full => Self::Full,
            SynchronousMode::Normal => Self::Normal,
        }
    }
}

/// How the kernel schedules the threads a template migration rollout runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MigrationPolicy {
    /// Linux `SCHED_IDLE`: only CPU time queries leave, and a waking query thread preempts
    /// them (`nice` where the call is refused).
    Idle,
    /// The normal policy at `PERSQL_MIGRATION_NICE`.
    Nice,
}

impl From<MigrationPolicy> for BackgroundPolicy {
    fn from(policy: MigrationPolicy) -> Self {
        match policy {
            MigrationPolicy::Idle => Self::Idle,
            MigrationPolicy::Nice => Self::Nice,
        }
    }
}

/// A price: a plain decimal amount, not negative, at most 9 decimals.
pub(super) fn price(s: &str) -> Result<Money, MoneyError> {
    Money::parse_non_negative(s)
}

/// The operator token, kept out of `Debug` output from the moment it is read.
pub(super) fn operator_token(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::from_config(s.to_owned()))
}
