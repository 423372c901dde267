//! Describing a tenant database's schema (tables, indexes, foreign keys, views, triggers,
//! row-count estimates), as data and as compact text for an LLM prompt.

mod read;
mod text;

pub use text::TEXT_BUDGET;

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

/// How many rows a table holds, found cheaply (never a full count of a large table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowEstimate {
    /// The number of rows (a lower bound when `method` is `atLeast`).
    pub count: u64,
    /// How `count` was obtained.
    pub method: EstimateMethod,
}

/// Where a row estimate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum EstimateMethod {
    /// Counted: the table holds exactly `count` rows.
    Exact,
    /// Counting stopped at the bound: the table holds at least `count` rows.
    AtLeast,
    /// `sqlite_stat1`, as of the last `ANALYZE`.
    Statistics,
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
    /// Row count estimate (none for virtual tables, which are not counted).
    pub row_estimate: Option<RowEstimate>,
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
