//! Statements with JSON parameters, and binding JSON values to SQLite.

use base64::Engine as _;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use serde_json::Value as Json;

use crate::{Limits, StorageError};

/// Parameters of one statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Params {
    /// No parameters.
    #[default]
    None,
    /// `?`, `?NNN` or named parameters bound by position.
    Positional(Vec<Json>),
    /// Named parameters; keys with or without the `:`/`@`/`$` prefix.
    Named(serde_json::Map<String, Json>),
}

impl Params {
    fn len(&self) -> usize {
        match self {
            Self::None => 0,
            Self::Positional(v) => v.len(),
            Self::Named(m) => m.len(),
        }
    }
}

/// One SQL statement and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// The SQL text: exactly one statement.
    pub sql: String,
    /// Its parameters.
    pub params: Params,
}

impl Statement {
    /// A statement without parameters.
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Params::None,
        }
    }

    /// A statement with parameters.
    pub fn with_params(sql: impl Into<String>, params: Params) -> Self {
        Self {
            sql: sql.into(),
            params,
        }
    }

    /// Size checks done before preparing, so the error names the limit.
    pub(crate) fn check_limits(&self, limits: &Limits) -> Result<(), StorageError> {
        if self.sql.len() > limits.max_sql_bytes {
            return Err(StorageError::SqlTooLong);
        }
        if self.params.len() > limits.max_params {
            return Err(StorageError::TooManyParams);
        }
        Ok(())
    }
}

/// Converts one JSON value to an SQLite value.
fn to_sql(v: &Json) -> Result<ToSqlOutput<'_>, StorageError> {
    Ok(match v {
        Json::Null => ToSqlOutput::Owned(Value::Null),
        Json::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                ToSqlOutput::Owned(Value::Integer(i))
            } else if n.is_u64() {
                return Err(StorageError::InvalidParams(format!(
                    "integer {n} is out of range"
                )));
            } else {
                // A JSON number that is neither i64 nor u64 is always an f64.
                ToSqlOutput::Owned(Value::Real(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Json::Object(o) => match (o.len(), o.get("base64")) {
            (1, Some(Json::String(b64))) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| StorageError::InvalidParams(format!("invalid base64: {e}")))?;
                ToSqlOutput::Owned(Value::Blob(bytes))
            }
            _ => return Err(unsupported()),
        },
        Json::Array(_) => return Err(unsupported()),
    })
}

fn unsupported() -> StorageError {
    StorageError::InvalidParams(
        "values must be null, boolean, number, string or {\"base64\": \"...\"}".into(),
    )
}

/// Binds `params` to a freshly prepared statement.
pub(crate) fn bind(
    stmt: &mut rusqlite::Statement<'_>,
    params: &Params,
) -> Result<(), StorageError> {
    let count = stmt.parameter_count();
    match params {
        Params::None if count == 0 => Ok(()),
        Params::None => Err(StorageError::InvalidParams(format!(
            "statement expects {count} parameters, none given"
        ))),
        Params::Positional(values) => {
            if values.len() != count {
                return Err(StorageError::InvalidParams(format!(
                    "statement expects {count} parameters, got {}",
                    values.len()
                )));
            }
            for (i, v) in values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, to_sql(v)?)
                    .map_err(StorageError::from_tenant)?;
            }
            Ok(())
        }
        Params::Named(map) => bind_named(stmt, count, map),
    }
}

fn bind_named(
    stmt: &mut rusqlite::Statement<'_>,
    count: usize,
    map: &serde_json::Map<String, Json>,
) -> Result<(), StorageError> {
    let strip = |k: &str| {
        k.strip_prefix([':', '@', '$'])
            .map(str::to_owned)
            .unwrap_or(k.to_owned())
    };
    let mut used = 0;
    for i in 1..=count {
        let name = match stmt.parameter_name(i) {
            Some(n) if !n.starts_with('?') => strip(n),
            _ => {
                return Err(StorageError::InvalidParams(
                    "statement has positional parameters; pass an array".into(),
                ));
            }
        };
        let value = map
            .get(&name)
            .or_else(|| {
                [":", "@", "$"]
                    .iter()
                    .find_map(|p| map.get(&format!("{p}{name}")))
            })
            .ok_or_else(|| StorageError::InvalidParams(format!("missing parameter {name}")))?;
        stmt.raw_bind_parameter(i, to_sql(value)?)
            .map_err(StorageError::from_tenant)?;
        used += 1;
    }
    let known: Vec<String> = (1..=count)
        .filter_map(|i| stmt.parameter_name(i))
        .map(strip)
        .collect();
    if let Some(unknown) = map.keys().find(|k| !known.contains(&strip(k))) {
        return Err(StorageError::InvalidParams(format!(
            "unknown parameter {unknown}"
        )));
    }
    debug_assert_eq!(used, count);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_scalars_convert_to_sqlite_values() {
        assert!(matches!(
            to_sql(&json!(true)).unwrap(),
            ToSqlOutput::Owned(Value::Integer(1))
        ));
        assert!(matches!(
            to_sql(&json!(7)).unwrap(),
            ToSqlOutput::Owned(Value::Integer(7))
        ));
        assert!(matches!(
            to_sql(&json!(1.5)).unwrap(),
            ToSqlOutput::Owned(Value::Real(_))
        ));
        let v = json!({"base64": "AAE="});
        let blob = to_sql(&v).unwrap();
        assert!(matches!(blob, ToSqlOutput::Owned(Value::Blob(b)) if b == vec![0, 1]));
    }

    #[test]
    fn unsupported_json_values_are_invalid_params() {
        for v in [
            json!([1]),
            json!({"a": 1}),
            json!({"base64": "!!"}),
            json!(u64::MAX),
        ] {
            assert!(
                matches!(to_sql(&v), Err(StorageError::InvalidParams(_))),
                "{v}"
            );
        }
    }

    #[test]
    fn limits_are_checked_before_preparing() {
        let limits = Limits {
            max_sql_bytes: 5,
            max_params: 1,
            ..Limits::default()
        };
        assert!(matches!(
            Statement::new("SELECT 1").check_limits(&limits),
            Err(StorageError::SqlTooLong)
        ));
        let many = Statement::with_params("?", Params::Positional(vec![json!(1), json!(2)]));
        assert!(matches!(
            many.check_limits(&limits),
            Err(StorageError::TooManyParams)
        ));
    }
}
