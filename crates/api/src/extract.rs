//! Request extractors whose rejections are our problem+json.

use axum::extract::FromRequest;

use crate::error::ApiError;

/// `axum::Json` with malformed or oversized bodies answered as problem+json.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);
