//! The `query` and `describe` tool definitions an assistant gets for one database, in the
//! shapes OpenAI, Anthropic and MCP expect.

use persql_storage::{Params, Role, Statement};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Tool definition layouts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolFormat {
    /// OpenAI function calling: `{"type": "function", "function": {name, description, parameters}}`.
    Openai,
    /// Anthropic tool use: `{name, description, input_schema}`.
    Anthropic,
    /// MCP `tools/list` entries: `{name, description, inputSchema, annotations}`.
    #[default]
    Mcp,
}

/// One tool, independent of layout.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolDef {
    pub name: &'static str,
    pub description: String,
    /// JSON Schema of the arguments.
    pub input_schema: Map<String, Value>,
    /// True when calling it changes nothing (a read token's `query`, `describe`).
    pub read_only: bool,
}

/// The two tools for database `label` (`ns/db`) as the caller's `role` may use them, with
/// the schema text (see `Schema::to_text`) in the `query` description.
pub fn definitions(label: &str, role: Role, schema_text: &str) -> Vec<ToolDef> {
    let allowed = match role {
        Role::Read => {
            "This connection is READ-ONLY: only SELECT statements (and read-only PRAGMAs) \
             are allowed; any other statement is refused."
        }
        Role::Write => {
            "SELECT, INSERT, UPDATE, DELETE and UPSERT are allowed; schema changes (CREATE, \
             ALTER, DROP) are refused."
        }
        Role::Admin => {
            "Any statement on this one database is allowed, schema changes included; ATTACH, \
             VACUUM, transaction control and writable PRAGMAs are refused."
        }
    };
    let sql_doc = if role == Role::Read {
        "One SQLite SELECT statement. Put values in `params` with ? placeholders."
    } else {
        "One SQLite statement. Put values in `params` with ? placeholders."
    };
    let query_schema = json!({
        "type": "object",
        "properties": {
            "sql": { "type": "string", "description": sql_doc },
            "params": {
                "type": "array",
                "description": "Values for the ? placeholders, in order.",
                "items": { "type": ["string", "number", "integer", "boolean", "null"] }
            }
        },
        "required": ["sql"],
        "additionalProperties": false
    });
    let describe_schema = json!({
        "type": "object",
        "properties": {},
        "additionalProperties": false
    });
    vec![
        ToolDef {
            name: "query",
            description: format!(
                "Run one SQL statement on the SQLite database {label} and get the result as JSON \
                 ({{data: rows as objects, columns, meta}}). {allowed} Every statement runs on \
                 its own (no BEGIN/COMMIT). Use LIMIT on large tables.\n\nSchema:\n{schema_text}"
            ),
            input_schema: object(query_schema),
            read_only: role == Role::Read,
        },
        ToolDef {
            name: "describe",
            description: format!(
                "Describe the SQLite database {label}: tables with columns, types, keys, \
                 indexes, foreign keys, row estimates, views and triggers, as compact text. \
                 Call it again after changing the schema."
            ),
            input_schema: object(describe_schema),
            read_only: true,
        },
    ]
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `def` in `format`'s layout.
pub fn render(def: &ToolDef, format: ToolFormat) -> Value {
    match format {
        ToolFormat::Openai => json!({
            "type": "function",
            "function": {
                "name": def.name,
                "description": def.description,
                "parameters": def.input_schema,
            }
        }),
        ToolFormat::Anthropic => json!({
            "name": def.name,
            "description": def.description,
            "input_schema": def.input_schema,
        }),
        ToolFormat::Mcp => json!({
            "name": def.name,
            "description": def.description,
            "inputSchema": def.input_schema,
            "annotations": { "readOnlyHint": def.read_only },
        }),
    }
}

/// Parses the `query` tool's arguments as a model sent them.
pub fn query_arguments(args: Option<&Map<String, Value>>) -> Result<Statement, ApiError> {
    let bad = |detail: &str| ApiError::bad_request("invalid_params", detail.to_owned());
    let args = args.ok_or_else(|| bad("arguments {\"sql\": \"…\"} are required"))?;
    if let Some(k) = args
        .keys()
        .find(|k| !matches!(k.as_str(), "sql" | "params"))
    {
        return Err(bad(&format!("unknown argument {k:?}: only sql and params")));
    }
    let sql = match args.get("sql") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad("sql must be a string")),
    };
    let params = match args.get("params") {
        None | Some(Value::Null) => Params::None,
        Some(Value::Array(v)) => Params::Positional(v.clone()),
        Some(Value::Object(m)) => Params::Named(m.clone()),
        Some(_) => return Err(bad("params must be an array")),
    };
    Ok(Statement { sql, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_role_gets_a_read_only_query_tool() {
        let defs = definitions("acme/u_1", Role::Read, "table t: a");
        assert!(defs[0].read_only);
        assert!(defs[0].description.contains("READ-ONLY"));
        assert!(defs[0].description.ends_with("Schema:\ntable t: a"));
        let write = definitions("acme/u_1", Role::Write, "");
        assert!(!write[0].read_only && !write[0].description.contains("READ-ONLY"));
        assert!(write[1].read_only);
    }

    #[test]
    fn layouts_follow_each_vendor() {
        let defs = definitions("a/b", Role::Admin, "");
        let openai = render(&defs[0], ToolFormat::Openai);
        assert_eq!(openai["type"], "function");
        assert_eq!(openai["function"]["parameters"]["required"], json!(["sql"]));
        let anthropic = render(&defs[1], ToolFormat::Anthropic);
        assert_eq!(anthropic["input_schema"]["type"], "object");
        let mcp = render(&defs[0], ToolFormat::Mcp);
        assert_eq!(mcp["inputSchema"]["properties"]["sql"]["type"], "string");
        assert_eq!(mcp["annotations"]["readOnlyHint"], false);
    }

    #[test]
    fn query_arguments_are_checked() {
        let args = |v: Value| object(v);
        let ok = query_arguments(Some(&args(json!({"sql": "SELECT ?", "params": [1]})))).unwrap();
        assert_eq!(ok.sql, "SELECT ?");
        assert!(matches!(ok.params, Params::Positional(ref p) if p == &vec![json!(1)]));
        for bad in [
            json!({}),
            json!({"sql": 1}),
            json!({"sql": "SELECT 1", "params": "x"}),
            json!({"sql": "SELECT 1", "extra": true}),
        ] {
            let e = query_arguments(Some(&args(bad.clone()))).unwrap_err();
            assert_eq!(e.code(), "invalid_params", "{bad}");
        }
        assert!(query_arguments(None).is_err());
    }
}
