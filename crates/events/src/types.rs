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
