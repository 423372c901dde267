//! A caller's access to one database: the database, the role it holds there and the
//! namespace that pays for the call. Made by the `DatabaseAccess` extractor (`crate::auth`).

use std::sync::Arc;

use persql_storage::{DbLocation, Role};

use crate::{principal::Principal, state::DbEntry};

/// A caller allowed into one database, with the role it holds there.
pub struct DatabaseAccess {
    pub principal: Arc<Principal>,
    pub db: Arc<DbEntry>,
    pub role: Role,
    /// Namespace billed for this call: the caller's.
    pub billed_namespace_id: String,
    /// Its slug (the NATS subject of the call's usage event).
    pub billed_namespace_slug: String,
}

impl DatabaseAccess {
    pub fn location(&self) -> &DbLocation {
        &self.db.location
    }
}
