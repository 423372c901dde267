//! The one mapping of each domain module's error onto [`ApiError`] (status and problem code).

use persql_metering::{Unfunded, topups::TopupError};

use super::ApiError;
use crate::{
    admission::RateLimited, databases::DatabaseError, namespaces::NamespaceError,
    queries::QueryError,
};

impl From<NamespaceError> for ApiError {
    fn from(e: NamespaceError) -> Self {
        match e {
            NamespaceError::Exists(_) => Self::Conflict {
                code: "namespace_exists",
                detail: e.to_string(),
            },
            NamespaceError::Store(e) => e.into(),
        }
    }
}

impl From<Unfunded> for ApiError {
    fn from(e: Unfunded) -> Self {
        Self::InsufficientFunds {
            namespace: e.namespace_slug,
        }
    }
}

impl From<RateLimited> for ApiError {
    fn from(e: RateLimited) -> Self {
        Self::RateLimited {
            retry_after_secs: e.retry_after.as_secs().max(1),
            detail: e.to_string(),
        }
    }
}

impl From<TopupError> for ApiError {
    fn from(e: TopupError) -> Self {
        match e {
            TopupError::ReferenceConflict { .. } => Self::Conflict {
                code: "reference_conflict",
                detail: e.to_string(),
            },
            TopupError::Store(e) => e.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Unfunded(e) => e.into(),
            QueryError::RateLimited(e) => e.into(),
            QueryError::Storage(e) => e.into(),
            QueryError::Batch { index, error } => Self::Batch {
                index,
                source: Box::new(error.into()),
            },
            QueryError::Encode(e) => Self::Internal(format!("encoding the result: {e}")),
        }
    }
}

impl From<DatabaseError> for ApiError {
    fn from(e: DatabaseError) -> Self {
        match e {
            DatabaseError::Exists(_) => Self::Conflict {
                code: "database_exists",
                detail: e.to_string(),
            },
            DatabaseError::TemplateNotFound => {
                Self::not_found("template_not_found", "no such template database")
            }
            DatabaseError::ProvisionTimeout => Self::Unavailable {
                code: "provision_timeout",
                detail: "the database is still being created; retry shortly".into(),
            },
            DatabaseError::ProvisionFailed(detail) => Self::Unavailable {
                code: "provision_failed",
                detail,
            },
            DatabaseError::Unfunded(e) => e.into(),
            DatabaseError::Registry(e) => e.into(),
            DatabaseError::Storage(e) => e.into(),
            DatabaseError::Store(e) => e.into(),
        }
    }
}
