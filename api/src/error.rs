//! `ApiError`: every failure the API answers with, as RFC 9457 `application/problem+json`
//! with a stable machine `code`.

use axum::{
    Json,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use persql_events::StoreError;
use persql_provisioner::{RegistryError, template_migrations::MigrationError};
use persql_storage::StorageError;
use serde::Serialize;
use utoipa::ToSchema;

// The domain modules' errors, mapped at this edge (a child module: the domain modules may
// use `ApiError`'s module without an import circle).
mod domain;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI identifying the problem type: `urn:persql:problem:<code>`.
    #[serde(rename = "type")]
    pub ty: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `ddl_not_allowed`.
    pub code: String,
    /// For 402: the namespace whose balance is used up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// For batch failures: index of the statement that failed.
    #[serde(skip_serializing_if = "Option::is_none", rename = "statementIndex")]
    pub statement_index: Option<usize>,
}

/// Every error the API answers with. Each variant names its status; `code` is the
/// problem's stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed request (`invalid_json`, `invalid_request`, `invalid_subject`,
    /// `invalid_slug`, `invalid_params`, `sql_error`, `sql_too_long`, `too_many_params`,
    /// `invalid_redirect_uri`, `invalid_email`, `invalid_password`).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// 401: `missing_token`, `invalid_token` (unknown or revoked), `token_expired`,
    /// `not_signed_in` (account endpoints without a session or personal token).
    #[error("{detail}")]
    Unauthorized { code: &'static str, detail: String },
    /// 403: `forbidden` (wrong kind of token), `ddl_not_allowed`, `statement_not_allowed`.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// 404: `database_not_found`, `namespace_not_found`, `template_not_found`,
    /// `migration_not_found`, `app_not_connected`, `not_found`.
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },
    /// 402: `insufficient_funds`: the billed namespace's balance is used up.
    #[error("namespace {namespace:?} has no funds left")]
    InsufficientFunds { namespace: String },
    /// 408: `query_timeout`.
    #[error("the query ran past its time limit")]
    QueryTimeout,
    /// 409: `namespace_exists`, `database_exists`, `account_exists`, `migration_changed`,
    /// `version_not_increasing`.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// 413: `payload_too_large`, `result_too_large`.
    #[error("{detail}")]
    TooLarge { code: &'static str, detail: String },
    /// 429: `rate_limited`: too much work in flight for the database, namespace or token, or
    /// too many exports; answered with `Retry-After` (seconds).
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after_secs: u64,
    },
    /// 503: `provision_timeout`, `provision_failed`: the database is not ready.
    #[error("{detail}")]
    Unavailable { code: &'static str, detail: String },
    /// 507: `database_full`: the database reached its size limit.
    #[error("the database reached its size limit")]
    DatabaseFull,
    /// A statement of a batch failed; the transaction was rolled back. Status and code are
    /// the inner error's.
    #[error("statement {index} failed: {source}")]
    Batch { index: usize, source: Box<ApiError> },
    /// 500 `internal`: logged in full, answered opaquely.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            detail: detail.into(),
        }
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden {
            code: "forbidden",
            detail: detail.into(),
        }
    }
    pub fn database_not_found() -> Self {
        Self::not_found(
            "database_not_found",
            "no such database, or the token does not reach it",
        )
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::BadRequest { code, detail } => (StatusCode::BAD_REQUEST, code, detail.clone()),
            Self::Unauthorized { code, detail } => (StatusCode::UNAUTHORIZED, code, detail.clone()),
            Self::Forbidden { code, detail } => (StatusCode::FORBIDDEN, code, detail.clone()),
            Self::NotFound { code, detail } => (StatusCode::NOT_FOUND, code, detail.clone()),
            Self::InsufficientFunds { namespace } => (
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_funds",
                format!(
                    "namespace {namespace:?} has no funds left; an operator can top it up with \
                     POST /v1/admin/namespaces/{namespace}/topups"
                ),
            ),
            Self::QueryTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "query_timeout",
                self.to_string(),
            ),
            Self::Conflict { code, detail } => (StatusCode::CONFLICT, code, detail.clone()),
            Self::TooLarge { code, detail } => {
                (StatusCode::PAYLOAD_TOO_LARGE, code, detail.clone())
            }
            Self::RateLimited { detail, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                detail.clone(),
            ),
            Self::Unavailable { code, detail } => {
                (StatusCode::SERVICE_UNAVAILABLE, code, detail.clone())
            }
            Self::DatabaseFull => (
                StatusCode::INSUFFICIENT_STORAGE,
                "database_full",
                self.to_string(),
            ),
            Self::Batch { index, source } => {
                let (status, code, detail) = source.parts();
                (status, code, format!("statement {index}: {detail}"))
            }
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal server error".into(),
            ),
        }
    }

    /// The problem `code`, for usage events.
    pub fn code(&self) -> &'static str {
        self.parts().1
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(msg) = &self {
            tracing::error!(error = %msg, "internal error");
        }
        let (status, code, detail) = self.parts();
        let statement_index = match &self {
            Self::Batch { index, .. } => Some(*index),
            _ => None,
        };
        let namespace = match &self {
            Self::InsufficientFunds { namespace } => Some(namespace.clone()),
            _ => None,
        };
        let body = Problem {
            namespace,
            ty: format!("urn:persql:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            statement_index,
        };
        let mut res = (status, Json(body)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::RateLimited {
            retry_after_secs, ..
        } = self
        {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        res
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        let code = e.code();
        match e {
            StorageError::Sql(m) | StorageError::InvalidParams(m) => Self::bad_request(code, m),
            StorageError::DdlNotAllowed(detail) | StorageError::StatementNotAllowed(detail) => {
                Self::Forbidden { code, detail }
            }
            StorageError::SqlTooLong => {
                Self::bad_request(code, "the SQL text is longer than allowed")
            }
            StorageError::TooManyParams => Self::bad_request(code, "too many bound parameters"),
            StorageError::ResultTooLarge => Self::TooLarge {
                code,
                detail: "the result has more rows or bytes than allowed; page with LIMIT/OFFSET"
                    .into(),
            },
            StorageError::DatabaseFull => Self::DatabaseFull,
            StorageError::Timeout => Self::QueryTimeout,
            StorageError::NotFound | StorageError::InvalidLocation => Self::database_not_found(),
            StorageError::Io(e) => Self::Internal(format!("storage I/O: {e}")),
            StorageError::Internal(m) => Self::Internal(format!("storage: {m}")),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Store(e) => e.into(),
            RegistryError::TemplateNotFound => {
                Self::not_found("template_not_found", "no such template database")
            }
            RegistryError::NotFound => Self::database_not_found(),
        }
    }
}

impl From<MigrationError> for ApiError {
    fn from(e: MigrationError) -> Self {
        match e {
            MigrationError::Store(e) => e.into(),
            MigrationError::Changed(_) => Self::Conflict {
                code: "migration_changed",
                detail: e.to_string(),
            },
            MigrationError::NotIncreasing { .. } => Self::Conflict {
                code: "version_not_increasing",
                detail: e.to_string(),
            },
            // SQLite's message as is (400 `sql_error`), or the authorizer's refusal (403).
            MigrationError::Template(e) => e.into(),
            MigrationError::NotFound => Self::not_found("migration_not_found", "no such migration"),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::TooLarge {
                code: "payload_too_large",
                detail: "the request body is too large".into(),
            };
        }
        Self::bad_request("invalid_json", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        Self::not_found("not_found", "no such resource")
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("invalid_request", r.body_text())
    }
}
