//! Baselines measured in the same run: a bare axum + one rusqlite connection server, and
//! applying a schema straight into a new file with rusqlite.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use anyhow::Context;
use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use rusqlite::{Connection, types::ValueRef};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The template: 5 tables and 5 indexes. `items` is the table queried.
pub const TEMPLATE_DDL: [&str; 10] = [
    "CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT)",
    "CREATE TABLE projects (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, title TEXT NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE TABLE tasks (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, due_at INTEGER)",
    "CREATE TABLE tags (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, label TEXT NOT NULL)",
    "CREATE INDEX items_body ON items (body)",
    "CREATE UNIQUE INDEX users_email ON users (email)",
    "CREATE INDEX projects_owner ON projects (owner_id)",
    "CREATE INDEX tasks_project ON tasks (project_id, done)",
    "CREATE INDEX tags_task ON tags (task_id)",
];

/// Opens (or creates) `path` the way PerSQL opens tenant files: WAL, synchronous=FULL.
pub fn open_wal_full(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Creates `path`, applies `ddl` one autocommitted statement at a time, closes it.
pub fn create_with_schema(path: &Path, ddl: &[&str]) -> rusqlite::Result<()> {
    let conn = open_wal_full(path)?;
    for stmt in ddl {
        conn.execute_batch(stmt)?;
    }
    conn.close().map_err(|(_, e)| e)
}

/// Creates `path` and applies `ddl` in a single transaction, then closes it.
pub fn create_with_schema_in_one_tx(path: &Path, ddl: &[&str]) -> rusqlite::Result<()> {
    let mut conn = open_wal_full(path)?;
    let tx = conn.transaction()?;
    for stmt in ddl {
        tx.execute_batch(stmt)?;
    }
    tx.commit()?;
    conn.close().map_err(|(_, e)| e)
}

#[derive(Deserialize)]
struct QueryBody {
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
}

type Shared = Arc<Mutex<Connection>>;

/// Serves `POST /query {sql, params}` → `{data, columns, meta}` over one rusqlite
/// connection to `db` (WAL, synchronous=FULL) on `listener`: no auth, no events, no limits.
/// Like PerSQL, the statement runs on the blocking pool (an fsync must not stall a worker).
pub async fn serve(
    listener: TcpListener,
    db: &Path,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let conn = open_wal_full(db).with_context(|| format!("opening {}", db.display()))?;
    let app = Router::new()
        .route("/query", post(run_query))
        .with_state(Arc::new(Mutex::new(conn)));
    Ok(tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }))
}

async fn run_query(
    State(conn): State<Shared>,
    Json(body): Json<QueryBody>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let internal = |e: String| (StatusCode::INTERNAL_SERVER_ERROR, e);
    tokio::task::spawn_blocking(move || {
        let conn = conn.lock().map_err(|e| e.to_string())?;
        execute(&conn, &body).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| internal(e.to_string()))?
    .map(Json)
    .map_err(internal)
}

fn execute(conn: &Connection, body: &QueryBody) -> rusqlite::Result<Value> {
    let mut stmt = conn.prepare_cached(&body.sql)?;
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let params: Vec<rusqlite::types::Value> = body.params.iter().map(to_sql).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut data = Vec::new();
    while let Some(row) = rows.next()? {
        let mut obj = Map::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            obj.insert(name.clone(), to_json(row.get_ref(i)?));
        }
        data.push(Value::Object(obj));
    }
    drop(rows);
    Ok(json!({
        "data": data,
        "columns": columns,
        "meta": { "changes": conn.changes(), "lastInsertRowid": conn.last_insert_rowid() },
    }))
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(V::Integer)
            .unwrap_or_else(|| V::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => V::Text(s.clone()),
        other => V::Text(other.to_string()),
    }
}

fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => json!({ "bytes": b.len() }),
    }
}
