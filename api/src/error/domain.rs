//! The one mapping of each domain module's error onto [`ApiError`] (status and problem code).

use persql_metering::{Unfunded, topups::TopupError};

use super::ApiError;
use crate::{
    accounts::AccountError, admission::RateLimited, databases::DatabaseError,
    namespaces::NamespaceError, oauth::GrantError, queries::QueryError,
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

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Exists => Self::Conflict {
                code: "account_exists",
                detail: e.to_string(),
            },
            AccountError::WeakPassword(detail) => Self::bad_request("weak_password", detail),
            AccountError::NotConnected => Self::not_found("app_not_connected", e.to_string()),
            AccountError::NoSuchTable => Self::not_found("not_found", e.to_string()),
            AccountError::Hashing(m) => Self::Internal(format!("password hashing: {m}")),
            AccountError::Lookup(m) => Self::Internal(format!("database lookup: {m}")),
            AccountError::Namespace(e) => e.into(),
            AccountError::Storage(e) => e.into(),
            AccountError::Store(e) => e.into(),
        }
    }
}

impl From<GrantError> for ApiError {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::NotConnected => Self::not_found("app_not_connected", e.to_string()),
            GrantError::Signing(m) => Self::Internal(format!("signing the ID token: {m}")),
            GrantError::Database(e) => e.into(),
            GrantError::Unfunded(e) => e.into(),
            GrantError::Registry(e) => e.into(),
            GrantError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use persql_storage::StorageError;

    use super::*;

    fn mapped(e: impl Into<ApiError>) -> (StatusCode, &'static str) {
        let (status, code, _) = e.into().parts();
        (status, code)
    }

    #[test]
    fn each_domain_error_has_its_status_and_problem_code() {
        let unfunded = || Unfunded {
            namespace_slug: "acme".into(),
        };
        let cases = [
            (
                mapped(NamespaceError::Exists("acme".into())),
                (StatusCode::CONFLICT, "namespace_exists"),
            ),
            (
                mapped(DatabaseError::Exists("t".into())),
                (StatusCode::CONFLICT, "database_exists"),
            ),
            (
                mapped(DatabaseError::TemplateNotFound),
                (StatusCode::NOT_FOUND, "template_not_found"),
            ),
            (
                mapped(DatabaseError::ProvisionTimeout),
                (StatusCode::SERVICE_UNAVAILABLE, "provision_timeout"),
            ),
            (
                mapped(DatabaseError::ProvisionFailed("gone".into())),
                (StatusCode::SERVICE_UNAVAILABLE, "provision_failed"),
            ),
            (
                mapped(DatabaseError::Unfunded(unfunded())),
                (StatusCode::PAYMENT_REQUIRED, "insufficient_funds"),
            ),
            (
                mapped(QueryError::Unfunded(unfunded())),
                (StatusCode::PAYMENT_REQUIRED, "insufficient_funds"),
            ),
            (
                mapped(QueryError::Storage(StorageError::Timeout)),
                (StatusCode::REQUEST_TIMEOUT, "query_timeout"),
            ),
            (
                mapped(QueryError::Batch {
                    index: 2,
                    error: StorageError::DdlNotAllowed("CREATE TABLE".into()),
                }),
                (StatusCode::FORBIDDEN, "ddl_not_allowed"),
            ),
            (
                mapped(TopupError::ReferenceConflict {
                    reference: "r".into(),
                    earlier: persql_metering::Money::from_nanos(1),
                }),
                (StatusCode::CONFLICT, "reference_conflict"),
            ),
            (
                mapped(AccountError::Exists),
                (StatusCode::CONFLICT, "account_exists"),
            ),
            (
                mapped(AccountError::WeakPassword("too easy".into())),
                (StatusCode::BAD_REQUEST, "weak_password"),
            ),
            (
                mapped(AccountError::NotConnected),
                (StatusCode::NOT_FOUND, "app_not_connected"),
            ),
            (
                mapped(AccountError::Hashing("oom".into())),
                (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ),
            (
                mapped(GrantError::NotConnected),
                (StatusCode::NOT_FOUND, "app_not_connected"),
            ),
            (
                mapped(GrantError::Signing("no key".into())),
                (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_failed_batch_statement_keeps_its_index() {
        let e: ApiError = QueryError::Batch {
            index: 3,
            error: StorageError::Sql("no such table: t".into()),
        }
        .into();
        assert!(matches!(e, ApiError::Batch { index: 3, .. }));
        assert_eq!(e.code(), "sql_error");
    }
}
