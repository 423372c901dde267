//! Converting SQLite values to JSON, with an estimate of their JSON size.

use base64::Engine as _;
use rusqlite::types::ValueRef;
use serde_json::Value as Json;

/// Largest integer that survives a round trip through a JSON double.
const MAX_SAFE_INT: i64 = 1 << 53;

/// Converts one column value; returns it and its approximate JSON size in bytes.
pub(crate) fn to_json(v: ValueRef<'_>) -> (Json, usize) {
    match v {
        ValueRef::Null => (Json::Null, 4),
        ValueRef::Integer(i) if (-MAX_SAFE_INT..=MAX_SAFE_INT).contains(&i) => (Json::from(i), 20),
        ValueRef::Integer(i) => (Json::String(i.to_string()), 22),
        ValueRef::Real(f) => match serde_json::Number::from_f64(f) {
            Some(n) => (Json::Number(n), 24),
            None => (Json::Null, 4),
        },
        ValueRef::Text(t) => {
            let s = String::from_utf8_lossy(t).into_owned();
            let n = s.len() + 2;
            (Json::String(s), n)
        }
        ValueRef::Blob(b) => {
            let s = base64::engine::general_purpose::STANDARD.encode(b);
            let n = s.len() + 14;
            let mut o = serde_json::Map::with_capacity(1);
            o.insert("base64".into(), Json::String(s));
            (Json::Object(o), n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sqlite_values_convert_to_json() {
        assert_eq!(to_json(ValueRef::Null).0, Json::Null);
        assert_eq!(to_json(ValueRef::Integer(42)).0, json!(42));
        assert_eq!(
            to_json(ValueRef::Integer(i64::MAX)).0,
            json!(i64::MAX.to_string())
        );
        assert_eq!(to_json(ValueRef::Integer(1 << 53)).0, json!(1_i64 << 53));
        assert_eq!(to_json(ValueRef::Real(0.5)).0, json!(0.5));
        assert_eq!(to_json(ValueRef::Real(f64::INFINITY)).0, Json::Null);
        assert_eq!(to_json(ValueRef::Text(b"hi")).0, json!("hi"));
        assert_eq!(
            to_json(ValueRef::Blob(&[0, 1])).0,
            json!({"base64": "AAE="})
        );
    }
}
