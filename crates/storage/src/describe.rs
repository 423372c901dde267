//! Describing a tenant database's schema (tables, indexes, foreign keys, views, triggers).

use rusqlite::Connection;
use serde::Serialize;
use utoipa::ToSchema;

/// The schema of one database.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// Ordinary and virtual tables, in creation order (shadow tables omitted).
    pub tables: Vec<Table>,
    /// Views.
    pub views: Vec<View>,
    /// Triggers.
    pub triggers: Vec<Trigger>,
    /// `PRAGMA user_version`, the template migration version.
    pub schema_version: i64,
}

/// One table.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    /// Table name.
    pub name: String,
    /// The `CREATE` statement.
    pub ddl: String,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Explicit indexes.
    pub indexes: Vec<Index>,
    /// Foreign keys.
    pub foreign_keys: Vec<ForeignKey>,
}

/// One column.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Declared type (may be empty).
    #[serde(rename = "type")]
    pub r#type: String,
    /// `NOT NULL` constraint.
    pub not_null: bool,
    /// Default value expression, as written.
    pub default: Option<String>,
    /// Position in the primary key (1-based), 0 if not part of it.
    pub primary_key: i64,
}

/// One index.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Index name.
    pub name: String,
    /// Unique index.
    pub unique: bool,
    /// Indexed columns (`<expr>` for expressions).
    pub columns: Vec<String>,
    /// The `CREATE INDEX` statement.
    pub ddl: String,
}

/// One foreign key.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForeignKey {
    /// Child columns.
    pub columns: Vec<String>,
    /// Parent table.
    pub table: String,
    /// Parent columns (the parent's primary key when not written).
    pub to: Vec<String>,
    /// `ON UPDATE` action.
    pub on_update: String,
    /// `ON DELETE` action.
    pub on_delete: String,
}

/// One view.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct View {
    /// View name.
    pub name: String,
    /// The `CREATE VIEW` statement.
    pub ddl: String,
}

/// One trigger.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Trigger {
    /// Trigger name.
    pub name: String,
    /// The table it fires on.
    pub table: String,
    /// The `CREATE TRIGGER` statement.
    pub ddl: String,
}

/// Reads the whole schema (run as trusted SQL).
pub(crate) fn describe(db: &Connection) -> rusqlite::Result<Schema> {
    let mut schema = Schema {
        tables: Vec::new(),
        views: Vec::new(),
        triggers: Vec::new(),
        schema_version: db.query_row("PRAGMA user_version", [], |r| r.get(0))?,
    };
    let mut stmt = db.prepare(
        "SELECT m.type, m.name, m.tbl_name, m.sql FROM sqlite_master m \
         LEFT JOIN pragma_table_list l ON l.schema = 'main' AND l.name = m.name \
         WHERE m.sql IS NOT NULL AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
           AND m.type IN ('table', 'view', 'trigger') AND coalesce(l.type, '') <> 'shadow' \
         ORDER BY m.rowid",
    )?;
    let objects = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<Vec<(String, String, String, String)>>>()?;
    for (kind, name, table, ddl) in objects {
        match kind.as_str() {
            "table" => schema.tables.push(table_of(db, name, ddl)?),
            "view" => schema.views.push(View { name, ddl }),
            _ => schema.triggers.push(Trigger { name, table, ddl }),
        }
    }
    Ok(schema)
}

fn table_of(db: &Connection, name: String, ddl: String) -> rusqlite::Result<Table> {
    let columns = db
        .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")?
        .query_map([&name], |r| {
            Ok(Column {
                name: r.get(0)?,
                r#type: r.get(1)?,
                not_null: r.get(2)?,
                default: r.get(3)?,
                primary_key: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let indexes = db
        .prepare(
            "SELECT l.name, l.\"unique\", m.sql FROM pragma_index_list(?1) l \
             JOIN sqlite_master m ON m.name = l.name AND m.type = 'index' \
             WHERE m.sql IS NOT NULL ORDER BY m.rowid",
        )?
        .query_map([&name], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<Vec<(String, bool, String)>>>()?
        .into_iter()
        .map(|(name, unique, ddl)| {
            let columns = db
                .prepare(
                    "SELECT coalesce(name, '<expr>') FROM pragma_index_info(?1) ORDER BY seqno",
                )?
                .query_map([&name], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(Index {
                name,
                unique,
                columns,
                ddl,
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let foreign_keys = foreign_keys(db, &name)?;
    Ok(Table {
        name,
        ddl,
        columns,
        indexes,
        foreign_keys,
    })
}

fn foreign_keys(db: &Connection, table: &str) -> rusqlite::Result<Vec<ForeignKey>> {
    let rows = db
        .prepare(
            "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete \
             FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        )?
        .query_map([table], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<(i64, String, String, Option<String>, String, String)>>>(
        )?;
    let mut out: Vec<(i64, ForeignKey)> = Vec::new();
    for (id, parent, from, to, on_update, on_delete) in rows {
        if out.last().is_none_or(|(last, _)| *last != id) {
            let fk = ForeignKey {
                columns: Vec::new(),
                table: parent,
                to: Vec::new(),
                on_update,
                on_delete,
            };
            out.push((id, fk));
        }
        if let Some((_, fk)) = out.last_mut() {
            fk.columns.push(from);
            if let Some(to) = to {
                fk.to.push(to);
            }
        }
    }
    for (_, fk) in &mut out {
        if fk.to.is_empty() {
            fk.to = db
                .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?
                .query_map([&fk.table], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
        }
    }
    Ok(out.into_iter().map(|(_, fk)| fk).collect())
}
