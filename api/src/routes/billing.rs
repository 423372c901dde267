//! Prepaid balances: top-ups (operator), balance and usage (operator or the namespace's
//! own workspace).

use std::time::Duration;

use axum::{Json, extract::State};
use persql_metering::{
    GroupBy, Money, read,
    topups::{self, Topup},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    auth::{Caller, Operator},
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    namespaces,
    principal::Principal,
    state::AppState,
};

/// A namespace's prepaid balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceResponse {
    /// Decimal string in currency units, e.g. `"9.87"`.
    pub balance: String,
    pub currency: String,
    /// `funded` (above zero) or `depleted`.
    pub status: String,
}

/// Body of a top-up.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopupRequest {
    /// Positive decimal string in currency units, at most 9 decimals, e.g. `"10.00"`.
    #[schema(value_type = String)]
    pub amount: serde_json::Value,
    /// The operator's idempotency key: the same reference tops up once.
    pub reference: String,
}

/// Usage query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UsageParams {
    /// First day (`YYYY-MM-DD` or RFC 3339), inclusive; default 30 days ago.
    pub from: Option<String>,
    /// Last day, exclusive; default tomorrow.
    pub to: Option<String>,
    /// `day` (default), `database` or `caller`.
    pub group_by: Option<String>,
}

/// One row of usage.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_id: Option<String>,
    /// Token id of the caller, or `provision` / `storage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    pub queries: i64,
    pub rows_read: i64,
    pub rows_written: i64,
    pub storage_bytes: i64,
    /// Decimal string in currency units.
    pub cost: String,
}

/// Usage rows.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageResponse {
    pub currency: String,
    pub group_by: String,
    pub rows: Vec<UsageRow>,
}

fn namespace_not_found() -> ApiError {
    ApiError::not_found("namespace_not_found", "no such namespace")
}

/// The operator, or the namespace's own workspace; anyone else sees no such namespace.
async fn authorize(state: &AppState, caller: &Principal, slug: &str) -> Result<String, ApiError> {
    if !caller.manages_namespace(slug) {
        return Err(namespace_not_found());
    }
    namespaces::id_of(&state.cp, slug)
        .await?
        .ok_or_else(namespace_not_found)
}

async fn balance_of(state: &AppState, namespace_id: &str) -> Result<BalanceResponse, ApiError> {
    let b = read::balance(&state.cp, namespace_id).await?;
    Ok(BalanceResponse {
        balance: b.amount.to_string(),
        currency: state.config.http.currency.clone(),
        status: b.status().into(),
    })
}

/// A namespace's balance.
#[utoipa::path(get, path = "/v1/namespaces/{ns}/balance", tag = "billing",
    params(("ns" = String, Path)),
    responses((status = 200, body = BalanceResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_balance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<BalanceResponse>, ApiError> {
    let id = authorize(&state, &caller, &ns).await?;
    Ok(Json(balance_of(&state, &id).await?))
}

/// Top up a namespace's balance. Idempotent on `reference`.
#[utoipa::path(post, path = "/v1/admin/namespaces/{ns}/topups", tag = "operator",
    params(("ns" = String, Path)),
    request_body = TopupRequest,
    responses(
        (status = 200, body = BalanceResponse),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
    ))]
pub async fn create_topup(
    State(state): State<AppState>,
    _op: Operator,
    ApiPath(ns): ApiPath<String>,
    ApiJson(req): ApiJson<TopupRequest>,
) -> Result<Json<BalanceResponse>, ApiError> {
    let serde_json::Value::String(amount) = &req.amount else {
        return Err(ApiError::bad_request(
            "invalid_amount",
            "amount must be a decimal string such as \"10.00\"",
        ));
    };
    let amount = Money::parse_positive(amount)
        .map_err(|e| ApiError::bad_request("invalid_amount", format!("amount {e}")))?;
    let reference = req.reference.trim();
    if reference.is_empty() || reference.len() > 200 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "reference must be 1-200 characters",
        ));
    }
    let id = namespaces::id_of(&state.cp, &ns)
        .await?
        .ok_or_else(namespace_not_found)?;
    let topup = Topup {
        namespace_id: &id,
        namespace_slug: &ns,
        amount,
        reference,
    };
    let event_id = topups::record(&state.cp, topup).await?;
    if state.config.metering_enabled()
        && topups::wait_applied(&state.cp, &event_id, Duration::from_secs(10)).await?
    {
        // A top-up that was already credited long ago is not in the view's memory; the
        // view then already has it, so waiting merely times out harmlessly.
        state
            .funding
            .wait_credited(&event_id, Duration::from_secs(2))
            .await;
    }
    Ok(Json(balance_of(&state, &id).await?))
}

/// Usage of a namespace, from the metering projection.
#[utoipa::path(get, path = "/v1/namespaces/{ns}/usage", tag = "billing",
    params(("ns" = String, Path), UsageParams),
    responses((status = 200, body = UsageResponse), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_usage(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(ns): ApiPath<String>,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> Result<Json<UsageResponse>, ApiError> {
    let id = authorize(&state, &caller, &ns).await?;
    let (group_by, name) = match params.group_by.as_deref().unwrap_or("day") {
        "day" => (GroupBy::Day, "day"),
        "database" => (GroupBy::Database, "database"),
        "caller" => (GroupBy::Caller, "caller"),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "groupBy must be day, database or caller",
            ));
        }
    };
    let today = time::OffsetDateTime::now_utc().date();
    let from = parse_day(params.from.as_deref(), today - time::Duration::days(30))?;
    let to = parse_day(params.to.as_deref(), today + time::Duration::days(1))?;
    if from > to {
        return Err(ApiError::bad_request(
            "invalid_request",
            "from must not be after to",
        ));
    }
    let rows = read::usage(&state.cp, &id, &from.to_string(), &to.to_string(), group_by).await?;
    let rows = rows
        .into_iter()
        .map(|r| UsageRow {
            day: (group_by == GroupBy::Day).then(|| r.key.clone()),
            database_id: (group_by == GroupBy::Database).then(|| r.key.clone()),
            caller: (group_by == GroupBy::Caller).then(|| r.key.clone()),
            queries: r.queries,
            rows_read: r.rows_read,
            rows_written: r.rows_written,
            storage_bytes: r.storage_bytes,
            cost: r.cost.to_string(),
        })
        .collect();
    Ok(Json(UsageResponse {
        currency: state.config.http.currency.clone(),
        group_by: name.into(),
        rows,
    }))
}

/// `YYYY-MM-DD`, or an RFC 3339 time (its UTC day).
fn parse_day(s: Option<&str>, default: time::Date) -> Result<time::Date, ApiError> {
    let Some(s) = s else { return Ok(default) };
    let bad = || {
        ApiError::bad_request(
            "invalid_request",
            format!("{s:?} is not a date (YYYY-MM-DD) or RFC 3339 time"),
        )
    };
    let day_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &day_format) {
        return Ok(d);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC).date())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_from_dates_and_times() {
        let d = time::macros::date!(2026 - 01 - 01);
        assert_eq!(parse_day(None, d).unwrap(), d);
        assert_eq!(
            parse_day(Some("2026-03-04"), d).unwrap(),
            time::macros::date!(2026 - 03 - 04)
        );
        assert_eq!(
            parse_day(Some("2026-03-04T23:30:00-02:00"), d).unwrap(),
            time::macros::date!(2026 - 03 - 05)
        );
        assert!(parse_day(Some("yesterday"), d).is_err());
    }
}
