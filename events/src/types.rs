//! One Rust type per event payload. Field names are camelCase on the wire.

use serde::{Deserialize, Serialize};

use crate::envelope::EventPayload;

macro_rules! payload {
    ($ty:ident, $name:literal) => {
        impl EventPayload for $ty {
            const TYPE: &'static str = $name;
        }
    };
}

/// An operator created a namespace (and its first workspace token).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceCreated {
    pub namespace_id: String,
    pub slug: String,
}
payload!(NamespaceCreated, "namespace.created");

/// A database was registered and must be created (by the provisioner), optionally from a template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionRequested {
    pub database_id: String,
    pub namespace_id: String,
    pub slug: String,
    pub template_id: Option<String>,
    /// Set for per-user databases: SHA-256 of (namespace, subject); the subject itself is not logged.
    pub subject_hash: Option<String>,
    /// Namespace that pays for the provision (the caller's).
    pub billed_namespace_id: String,
}
payload!(ProvisionRequested, "database.provision_requested");

/// The database file exists with its template's schema and is query-ready.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provisioned {
    pub database_id: String,
    pub namespace_id: String,
    pub slug: String,
    pub template_id: Option<String>,
    pub billed_namespace_id: String,
    pub duration_us: u64,
}
payload!(Provisioned, "database.provisioned");

/// The provisioner could not create the database (e.g. its template vanished).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionFailed {
    pub database_id: String,
    pub namespace_id: String,
    pub reason: String,
}
payload!(ProvisionFailed, "database.provision_failed");

/// A database and its tokens were deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseDeleted {
    pub database_id: String,
    pub namespace_id: String,
    pub slug: String,
}
payload!(DatabaseDeleted, "database.deleted");

/// A token was minted. Never carries the secret or its hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenCreated {
    pub token_id: String,
    pub kind: String,
    pub namespace_id: String,
    pub database_id: Option<String>,
    pub role: Option<String>,
    pub expires_at: Option<i64>,
}
payload!(TokenCreated, "token.created");

/// Tokens stopped working; every API process drops them from its cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokensRevoked {
    pub token_ids: Vec<String>,
    pub reason: String,
}
payload!(TokensRevoked, "token.revoked");

/// One query (or batch) ran against a tenant database. Batched off the hot path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryExecuted {
    pub database_id: String,
    /// Namespace that owns the database.
    pub namespace_id: String,
    /// Namespace billed for the call: the caller's (the token's billing namespace).
    pub billed_namespace_id: String,
    pub token_id: String,
    pub role: String,
    pub statements: u32,
    pub rows_read: u64,
    pub rows_written: u64,
    /// Approximate size of the result sent back.
    pub bytes: u64,
    pub duration_us: u64,
    /// The problem `code` when the query failed after reaching SQLite, else `None`.
    pub error: Option<String>,
}
payload!(QueryExecuted, "query.executed");

/// Storage of one database over one sampling interval, billed pro rata to its payer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageSampled {
    pub database_id: String,
    pub namespace_id: String,
    /// Namespace that pays for the database's storage now.
    pub billed_namespace_id: String,
    /// Size of the database file and its WAL.
    pub bytes: u64,
    /// Length of the interval this sample stands for.
    pub interval_secs: u64,
}
payload!(StorageSampled, "storage.sampled");

/// An operator topped up a namespace's prepaid balance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceToppedUp {
    pub namespace_id: String,
    /// Decimal string in currency units.
    pub amount: String,
    /// The operator's idempotency reference.
    pub reference: String,
}
payload!(BalanceToppedUp, "balance.topped_up");

/// Metering charged a namespace for the usage in one batch of events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceCharged {
    pub namespace_id: String,
    /// Total charged, a positive decimal string.
    pub amount: String,
    /// Number of ledger entries this covers.
    pub charges: u64,
    /// Balance after the charges.
    pub balance: String,
    /// Creation time (unix ms) of the newest event charged: API processes drop their local
    /// spend estimates up to here.
    pub through_ms: i64,
}
payload!(BalanceCharged, "balance.charged");

/// Metering applied a top-up to the ledger; `balance` is the balance after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceCredited {
    pub namespace_id: String,
    pub amount: String,
    pub balance: String,
    /// Id of the `balance.topped_up` event applied.
    pub topup_event_id: String,
}
payload!(BalanceCredited, "balance.credited");

/// A namespace's balance reached zero or below: billed calls get 402.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceDepleted {
    pub namespace_id: String,
    pub balance: String,
}
payload!(BalanceDepleted, "balance.depleted");

/// A depleted namespace's balance is above zero again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceRestored {
    pub namespace_id: String,
    pub balance: String,
}
payload!(BalanceRestored, "balance.restored");

/// A person approved an OAuth app: it holds a database in their namespace (created on the
/// first approval, reused after) and gets a new token for it at the code exchange.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantCreated {
    pub grant_id: String,
    /// The account's namespace: owns the database.
    pub namespace_id: String,
    pub client_id: String,
    /// The app's namespace: billed for the app's calls and the database's storage.
    pub app_namespace_id: String,
    pub database_id: String,
}
payload!(GrantCreated, "grant.created");

/// A person disconnected an OAuth app: its token stopped working, the data stays, storage
/// bills the owner again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantRevoked {
    pub grant_id: String,
    pub namespace_id: String,
    pub client_id: String,
    pub app_namespace_id: String,
    pub database_id: String,
    /// Tokens revoked with it (also announced by `token.revoked`).
    pub token_ids: Vec<String>,
}
payload!(GrantRevoked, "grant.revoked");
/// A migration was recorded for a template (and applied to the template itself); the
/// provisioner rolls it out to every database created from the template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMigrationAdded {
    pub template_id: String,
    pub namespace_id: String,
    pub version: i64,
    pub name: String,
    /// Hex SHA-256 of the migration's SQL.
    pub checksum: String,
}
payload!(TemplateMigrationAdded, "template.migration_added");

/// A workspace asked to retry a migration on the databases it failed on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMigrationRetried {
    pub template_id: String,
    pub namespace_id: String,
    pub version: i64,
    /// Failed databases queued for another attempt.
    pub databases: u64,
}
payload!(TemplateMigrationRetried, "template.migration_retried");

/// A database reached a template migration version (whoever applied it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationApplied {
    pub database_id: String,
    pub namespace_id: String,
    pub template_id: String,
    /// The version now in the database.
    pub version: i64,
    /// The version the control plane knew before.
    pub from_version: i64,
}
payload!(MigrationApplied, "migration.applied");

/// A template migration failed on a database; it stays at its last good version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationFailed {
    pub database_id: String,
    pub namespace_id: String,
    pub template_id: String,
    /// The version that failed.
    pub version: i64,
    /// The version the database stays at.
    pub current_version: i64,
    /// SQLite's message.
    pub error: String,
    pub attempts: u64,
}
payload!(MigrationFailed, "migration.failed");

#[cfg(test)]
mod tests;
