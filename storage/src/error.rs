//! Errors of the storage crate and how SQLite errors map onto them.

use rusqlite::ErrorCode;

/// Everything that can go wrong in a storage operation.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite rejected the tenant's SQL (syntax, missing table, constraint...).
    #[error("{0}")]
    Sql(String),
    /// The role may not change the schema; the detail names the action.
    #[error("schema changes are not allowed for this role: {0}")]
    DdlNotAllowed(String),
    /// A statement kind no tenant may run (ATTACH, VACUUM, PRAGMA writes...).
    #[error("statement not allowed: {0}")]
    StatementNotAllowed(String),
    /// Parameters do not fit the statement.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// The SQL text is longer than `Limits::max_sql_bytes`.
    #[error("SQL text is too long")]
    SqlTooLong,
    /// More parameters than `Limits::max_params`.
    #[error("too many parameters")]
    TooManyParams,
    /// The result exceeds `Limits::max_result_rows` or `max_result_bytes`.
    #[error("result is too large")]
    ResultTooLarge,
    /// The database reached `Limits::max_database_bytes`.
    #[error("database is full")]
    DatabaseFull,
    /// The statement ran longer than `Limits::query_timeout`.
    #[error("query timed out")]
    Timeout,
    /// The database file does not exist.
    #[error("database not found")]
    NotFound,
    /// A namespace or database id is not a valid id.
    #[error("invalid database location")]
    InvalidLocation,
    /// File system error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Anything not caused by the tenant's SQL.
    #[error("internal storage error: {0}")]
    Internal(String),
}

/// The failure of one statement in a batch; the whole batch was rolled back.
#[derive(Debug, thiserror::Error)]
#[error("statement {index} failed: {error}")]
pub struct BatchError {
    /// Zero-based index of the failing statement.
    pub index: usize,
    /// Why it failed.
    pub error: StorageError,
}

impl StorageError {
    /// The stable problem code this failure is answered with (and recorded in usage events).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sql(_) => "sql_error",
            Self::DdlNotAllowed(_) => "ddl_not_allowed",
            Self::StatementNotAllowed(_) => "statement_not_allowed",
            Self::InvalidParams(_) => "invalid_params",
            Self::SqlTooLong => "sql_too_long",
            Self::TooManyParams => "too_many_params",
            Self::ResultTooLarge => "result_too_large",
            Self::DatabaseFull => "database_full",
            Self::Timeout => "query_timeout",
            Self::NotFound | Self::InvalidLocation => "database_not_found",
            Self::Io(_) | Self::Internal(_) => "internal",
        }
    }

    /// A copy of a shared error (moka hands errors out behind an `Arc`).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Sql(m) => Self::Sql(m.clone()),
            Self::DdlNotAllowed(m) => Self::DdlNotAllowed(m.clone()),
            Self::StatementNotAllowed(m) => Self::StatementNotAllowed(m.clone()),
            Self::InvalidParams(m) => Self::InvalidParams(m.clone()),
            Self::SqlTooLong => Self::SqlTooLong,
            Self::TooManyParams => Self::TooManyParams,
            Self::ResultTooLarge => Self::ResultTooLarge,
            Self::DatabaseFull => Self::DatabaseFull,
            Self::Timeout => Self::Timeout,
            Self::NotFound => Self::NotFound,
            Self::InvalidLocation => Self::InvalidLocation,
            Self::Io(e) => Self::Io(std::io::Error::new(e.kind(), e.to_string())),
            Self::Internal(m) => Self::Internal(m.clone()),
        }
    }

    /// Maps a rusqlite error raised while running tenant SQL.
    pub(crate) fn from_tenant(err: rusqlite::Error) -> Self {
        match err {
            rusqlite::Error::SqliteFailure(e, msg) => {
                let text = msg.unwrap_or_else(|| e.to_string());
                match e.code {
                    ErrorCode::DiskFull => Self::DatabaseFull,
                    ErrorCode::OperationInterrupted => Self::Timeout,
                    ErrorCode::AuthorizationForStatementDenied => Self::StatementNotAllowed(text),
                    ErrorCode::Unknown
                    | ErrorCode::ConstraintViolation
                    | ErrorCode::TypeMismatch
                    | ErrorCode::TooBig
                    | ErrorCode::ParameterOutOfRange
                    | ErrorCode::ReadOnly => Self::Sql(text),
                    _ => Self::Internal(text),
                }
            }
            rusqlite::Error::SqlInputError { error, msg, .. } => match error.code {
                ErrorCode::AuthorizationForStatementDenied => Self::StatementNotAllowed(msg),
                ErrorCode::TooBig => Self::SqlTooLong,
                _ => Self::Sql(msg),
            },
            rusqlite::Error::MultipleStatement => {
                Self::Sql("only one statement per query is allowed; use a batch".into())
            }
            rusqlite::Error::InvalidParameterCount(got, want) => {
                Self::InvalidParams(format!("expected {want} parameters, got {got}"))
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StorageError {
    /// Errors of the crate's own statements are internal.
    fn from(err: rusqlite::Error) -> Self {
        match err {
            rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::DiskFull => {
                Self::DatabaseFull
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_maps_to_database_full() {
        let e = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(13), None);
        assert!(matches!(
            StorageError::from_tenant(e),
            StorageError::DatabaseFull
        ));
    }

    #[test]
    fn duplicate_keeps_the_variant() {
        let e = StorageError::Io(std::io::Error::other("x"));
        assert!(matches!(e.duplicate(), StorageError::Io(_)));
        assert!(matches!(
            StorageError::NotFound.duplicate(),
            StorageError::NotFound
        ));
    }
}
