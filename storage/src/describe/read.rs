//! Reads a schema from `sqlite_master` and the table-valued pragmas (as trusted SQL).

use std::time::Instant;

use rusqlite::{Connection, OptionalExtension};

use super::{Column, EstimateMethod, ForeignKey, Index, RowEstimate, Schema, Table, Trigger, View};
use crate::StorageError;
use crate::authorizer::Mode;
use crate::conn::Conn;

/// Tables are counted up to this many rows; past it the estimate is a lower bound.
const COUNT_BOUND: u64 = 10_000;

impl Conn {
    /// Reads the whole schema as trusted SQL, by `deadline` (`Timeout` past it, the
    /// progress handler stopping long statements) and at most `cap` bytes of names, types
    /// and DDL (`ResultTooLarge` past it).
    pub(crate) fn describe(&self, deadline: Instant, cap: usize) -> Result<Schema, StorageError> {
        {
            let mut g = self.gate.lock();
            g.enter(Mode::Trusted);
            g.deadline = Some(deadline);
        }
        let out = describe(
            &self.db,
            &mut Weight {
                left: cap,
                deadline,
            },
        );
        let mut g = self.gate.lock();
        let timed_out = g.timed_out;
        g.deadline = None;
        g.enter(Mode::Locked);
        match out {
            Err(_) if timed_out => Err(StorageError::Timeout),
            other => other,
        }
    }
}

/// What a description may still weigh, and when it must be done.
struct Weight {
    left: usize,
    deadline: Instant,
}

impl Weight {
    /// Takes `n` bytes; `ResultTooLarge` when they are not left, `Timeout` past the deadline.
    fn take(&mut self, n: usize) -> Result<(), StorageError> {
        if Instant::now() >= self.deadline {
            return Err(StorageError::Timeout);
        }
        self.left = self
            .left
            .checked_sub(n)
            .ok_or(StorageError::ResultTooLarge)?;
        Ok(())
    }
}

/// Reads the whole schema (run as trusted SQL).
fn describe(db: &Connection, weight: &mut Weight) -> Result<Schema, StorageError> {
    weight.take(0)?;
    let mut schema = Schema {
        tables: Vec::new(),
        views: Vec::new(),
        triggers: Vec::new(),
        schema_version: db.query_row("PRAGMA user_version", [], |r| r.get(0))?,
    };
    let mut stmt = db.prepare(
        "SELECT m.type, m.name, m.tbl_name, m.sql, coalesce(l.type, '') FROM sqlite_master m \
         LEFT JOIN pragma_table_list l ON l.schema = 'main' AND l.name = m.name \
         WHERE m.sql IS NOT NULL AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
           AND m.type IN ('table', 'view', 'trigger') AND coalesce(l.type, '') <> 'shadow' \
         ORDER BY m.rowid",
    )?;
    let mut objects: Vec<(String, String, String, String, bool)> = Vec::new();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let object = (
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)? == "virtual",
        );
        weight.take(object.1.len() + object.2.len() + object.3.len() + 16)?;
        objects.push(object);
    }
    drop(rows);
    let stats = has_stat1(db)?;
    for (kind, name, table, ddl, is_virtual) in objects {
        match kind.as_str() {
            "table" => {
                let mut table = table_of(db, name, ddl)?;
                weight.take(table_weight(&table))?;
                if !is_virtual {
                    table.row_estimate = Some(estimate_rows(db, &table.name, stats)?);
                }
                schema.tables.push(table);
            }
            "view" => schema.views.push(View { name, ddl }),
            _ => schema.triggers.push(Trigger { name, table, ddl }),
        }
    }
    Ok(schema)
}

/// About what a table's columns, indexes and foreign keys add to the description.
fn table_weight(t: &Table) -> usize {
    let columns: usize = t
        .columns
        .iter()
        .map(|c| c.name.len() + c.r#type.len() + c.default.as_ref().map_or(0, String::len) + 48)
        .sum();
    let indexes: usize = t
        .indexes
        .iter()
        .map(|i| i.name.len() + i.ddl.len() + i.columns.iter().map(|c| c.len() + 3).sum::<usize>())
        .sum();
    let keys: usize = t
        .foreign_keys
        .iter()
        .map(|k| {
            k.table.len()
                + k.columns
                    .iter()
                    .chain(&k.to)
                    .map(|c| c.len() + 3)
                    .sum::<usize>()
                + 64
        })
        .sum();
    columns + indexes + keys
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
        row_estimate: None,
    })
}

fn has_stat1(db: &Connection) -> rusqlite::Result<bool> {
    db.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// `sqlite_stat1`'s figure when `ANALYZE` left one for the table, else a count bounded by
/// [`COUNT_BOUND`] (a few milliseconds at most).
fn estimate_rows(db: &Connection, table: &str, stats: bool) -> rusqlite::Result<RowEstimate> {
    if stats {
        // The first integer of `stat` is the table's row count, for every index of it.
        let stat: Option<String> = db
            .query_row(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = ?1 ORDER BY idx IS NOT NULL LIMIT 1",
                [table],
                |r| r.get(0),
            )
            .optional()?;
        let count = stat.and_then(|s| s.split(' ').next().and_then(|n| n.parse().ok()));
        if let Some(count) = count {
            return Ok(RowEstimate {
                count,
                method: EstimateMethod::Statistics,
            });
        }
    }
    let quoted = format!("\"{}\"", table.replace('"', "\"\""));
    let count: i64 = db.query_row(
        &format!(
            "SELECT count(*) FROM (SELECT 1 FROM main.{quoted} LIMIT {})",
            COUNT_BOUND + 1
        ),
        [],
        |r| r.get(0),
    )?;
    let count = u64::try_from(count).unwrap_or(0);
    Ok(if count > COUNT_BOUND {
        RowEstimate {
            count: COUNT_BOUND,
            method: EstimateMethod::AtLeast,
        }
    } else {
        RowEstimate {
            count,
            method: EstimateMethod::Exact,
        }
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
