//! Converting SQLite values to JSON, with an estimate of their JSON size.

use base64::Engine as _;
use rusqlite::types::ValueRef;
use serde_json::Value as Json;

/// Largest integer that survives a round trip through a JSON double.
const MAX_SAFE_INT: i64 = 1 << 53;

/// The approximate JSON size of one column value in bytes, known before converting it.
pub(crate) fn json_size(v: ValueRef<'_>) -> usize {
    match v {
        ValueRef::Null => 4,
        ValueRef::Integer(i) if (-MAX_SAFE_INT..=MAX_SAFE_INT).contains(&i) => 20,
        ValueRef::Integer(_) => 22,
        ValueRef::Real(_) => 24,
        ValueRef::Text(t) => t.len() + 2,
        ValueRef::Blob(b) => b.len().div_ceil(3) * 4 + 14,
    }
}

/// Converts one column value.
pub(crate) fn to_json(v: ValueRef<'_>) -> Json {
    match v {
        ValueRef::Null => Json::Null,
        ValueRef::Integer(i) if (-MAX_SAFE_INT..=MAX_SAFE_INT).contains(&i) => Json::from(i),
        ValueRef::Integer(i) => Json::String(i.to_string()),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        ValueRef::Text(t) => Json::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => {
            let s = base64::engine::general_purpose::STANDARD.encode(b);
            let mut o = serde_json::Map::with_capacity(1);
            o.insert("base64".into(), Json::String(s));
            Json::Object(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sqlite_values_convert_to_json() {
        assert_eq!(to_json(ValueRef::Null), Json::Null);
        assert_eq!(to_json(ValueRef::Integer(42)), json!(42));
        assert_eq!(
            to_json(ValueRef::Integer(i64::MAX)),
            json!(i64::MAX.to_string())
        );
        assert_eq!(to_json(ValueRef::Integer(1 << 53)), json!(1_i64 << 53));
        assert_eq!(to_json(ValueRef::Real(0.5)), json!(0.5));
        assert_eq!(to_json(ValueRef::Real(f64::INFINITY)), Json::Null);
        assert_eq!(to_json(ValueRef::Text(b"hi")), json!("hi"));
        assert_eq!(to_json(ValueRef::Blob(&[0, 1])), json!({"base64": "AAE="}));
    }

    #[test]
    fn sizes_are_known_before_converting() {
        for v in [
            ValueRef::Text(b"hello"),
            ValueRef::Blob(&[0, 1, 2, 3]),
            ValueRef::Integer(1 << 60),
        ] {
            assert!(json_size(v) >= serde_json::to_string(&to_json(v)).unwrap().len());
        }
    }
}
